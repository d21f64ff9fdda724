package projections

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
)

// The Live* views serve the read-model ports from whichever copy of a
// projection its Live holds, so that a rebuild swapping in a new copy is
// seen by the next read. They work for every read-model implementation.

// LiveDirectory implements Directory.
type LiveDirectory[T interface {
	Projection
	Directory
}] struct{ L *Live[T] }

func (d LiveDirectory[T]) Doctors(ctx context.Context, f DoctorFilter) ([]Doctor, error) {
	return d.L.Current().Doctors(ctx, f)
}

func (d LiveDirectory[T]) Doctor(ctx context.Context, id string) (Doctor, error) {
	return d.L.Current().Doctor(ctx, id)
}

func (d LiveDirectory[T]) Specialities(ctx context.Context) ([]Speciality, error) {
	return d.L.Current().Specialities(ctx)
}

// LiveSlots implements Slots, SlotsJSON and SlotsAnswers.
type LiveSlots[T interface {
	Projection
	Slots
	SlotsJSON
	SlotsAnswers
}] struct{ L *Live[T] }

func (s LiveSlots[T]) FreeSlots(ctx context.Context, id string, from doctor.Date, days int, now time.Time) (FreeSlots, error) {
	return s.L.Current().FreeSlots(ctx, id, from, days, now)
}

func (s LiveSlots[T]) FreeSlotsJSON(ctx context.Context, id string, from doctor.Date, days int, now time.Time) ([]byte, error) {
	return s.L.Current().FreeSlotsJSON(ctx, id, from, days, now)
}

// FreeSlotsAnswer implements SlotsAnswers.
func (s LiveSlots[T]) FreeSlotsAnswer(ctx context.Context, id string, from doctor.Date, days int, now time.Time) (SlotsAnswer, error) {
	return s.L.Current().FreeSlotsAnswer(ctx, id, from, days, now)
}

// LiveAppointments implements Appointments, Dashboards and Payments.
type LiveAppointments[T interface {
	Projection
	Appointments
	Dashboards
	Payments
}] struct{ L *Live[T] }

func (a LiveAppointments[T]) Appointment(ctx context.Context, id string) (Appointment, error) {
	return a.L.Current().Appointment(ctx, id)
}

func (a LiveAppointments[T]) Appointments(ctx context.Context, q AppointmentQuery) (AppointmentPage, error) {
	return a.L.Current().Appointments(ctx, q)
}

func (a LiveAppointments[T]) DoctorDashboard(ctx context.Context, id string) (DoctorDashboard, error) {
	return a.L.Current().DoctorDashboard(ctx, id)
}

func (a LiveAppointments[T]) AdminDashboard(ctx context.Context) (AdminDashboard, error) {
	return a.L.Current().AdminDashboard(ctx)
}

// Payments implements Payments.
func (a LiveAppointments[T]) Payments(ctx context.Context, q PaymentQuery) (PaymentPage, error) {
	return a.L.Current().Payments(ctx, q)
}
