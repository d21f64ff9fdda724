package mongo

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// The Live* types serve the read-model ports from whichever instance a
// projections.Live holds, as memory's do. The projections.Live of a MongoDB
// model should be made with a factory returning the one instance of the
// database (projections.NewLive starts it at the stored checkpoint): a
// Rebuild then replays the log over the same collections, where every
// event is a no-op; a real rebuild empties them first (Models.Reset) and
// replays. Rebuilding into shadow collections and swapping is not done.

// LiveDirectory implements projections.Directory.
type LiveDirectory struct{ L *projections.Live[*Directory] }

func (d LiveDirectory) Doctors(ctx context.Context, f projections.DoctorFilter) ([]projections.Doctor, error) {
	return d.L.Current().Doctors(ctx, f)
}

func (d LiveDirectory) Doctor(ctx context.Context, id string) (projections.Doctor, error) {
	return d.L.Current().Doctor(ctx, id)
}

func (d LiveDirectory) Specialities(ctx context.Context) ([]projections.Speciality, error) {
	return d.L.Current().Specialities(ctx)
}

// LiveSlots implements projections.Slots and projections.SlotsJSON.
type LiveSlots struct{ L *projections.Live[*Slots] }

func (s LiveSlots) FreeSlots(ctx context.Context, id string, from doctor.Date, days int, now time.Time) (projections.FreeSlots, error) {
	return s.L.Current().FreeSlots(ctx, id, from, days, now)
}

func (s LiveSlots) FreeSlotsJSON(ctx context.Context, id string, from doctor.Date, days int, now time.Time) ([]byte, error) {
	return s.L.Current().FreeSlotsJSON(ctx, id, from, days, now)
}

// LiveAppointments implements projections.Appointments and Dashboards.
type LiveAppointments struct {
	L *projections.Live[*Appointments]
}

func (a LiveAppointments) Appointment(ctx context.Context, id string) (projections.Appointment, error) {
	return a.L.Current().Appointment(ctx, id)
}

func (a LiveAppointments) Appointments(ctx context.Context, q projections.AppointmentQuery) (projections.AppointmentPage, error) {
	return a.L.Current().Appointments(ctx, q)
}

func (a LiveAppointments) DoctorDashboard(ctx context.Context, id string) (projections.DoctorDashboard, error) {
	return a.L.Current().DoctorDashboard(ctx, id)
}

func (a LiveAppointments) AdminDashboard(ctx context.Context) (projections.AdminDashboard, error) {
	return a.L.Current().AdminDashboard(ctx)
}
