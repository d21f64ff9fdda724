package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/projections/readmodeltest"
)

func TestReadModels(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, func(*testing.T) readmodeltest.Models {
		dir, slots, apps := memory.NewDirectory(), memory.NewSlots(), memory.NewAppointments()
		return readmodeltest.Models{
			Directory: dir, Slots: slots, Appointments: apps, Dashboards: apps,
			Projections: []projections.Projection{dir, slots, apps},
		}
	})
}

// The same suite through projections.Live, as the runner uses them.
func TestReadModelsLive(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, func(*testing.T) readmodeltest.Models {
		dir := projections.NewLive(memory.NewDirectory)
		slots := projections.NewLive(memory.NewSlots)
		apps := projections.NewLive(memory.NewAppointments)
		return readmodeltest.Models{
			Directory: liveDirectory{dir}, Slots: liveSlots{slots}, Appointments: liveAppointments{apps}, Dashboards: liveAppointments{apps},
			Projections: []projections.Projection{dir, slots, apps},
		}
	})
}

type liveDirectory struct {
	l *projections.Live[*memory.Directory]
}

func (d liveDirectory) Doctors(ctx context.Context, f projections.DoctorFilter) ([]projections.Doctor, error) {
	return d.l.Current().Doctors(ctx, f)
}

func (d liveDirectory) Doctor(ctx context.Context, id string) (projections.Doctor, error) {
	return d.l.Current().Doctor(ctx, id)
}

func (d liveDirectory) Specialities(ctx context.Context) ([]projections.Speciality, error) {
	return d.l.Current().Specialities(ctx)
}

type liveSlots struct {
	l *projections.Live[*memory.Slots]
}

func (s liveSlots) FreeSlots(ctx context.Context, id string, from doctor.Date, days int, now time.Time) (projections.FreeSlots, error) {
	return s.l.Current().FreeSlots(ctx, id, from, days, now)
}

type liveAppointments struct {
	l *projections.Live[*memory.Appointments]
}

func (a liveAppointments) Appointment(ctx context.Context, id string) (projections.Appointment, error) {
	return a.l.Current().Appointment(ctx, id)
}

func (a liveAppointments) Appointments(ctx context.Context, q projections.AppointmentQuery) (projections.AppointmentPage, error) {
	return a.l.Current().Appointments(ctx, q)
}

func (a liveAppointments) DoctorDashboard(ctx context.Context, id string) (projections.DoctorDashboard, error) {
	return a.l.Current().DoctorDashboard(ctx, id)
}

func (a liveAppointments) AdminDashboard(ctx context.Context) (projections.AdminDashboard, error) {
	return a.l.Current().AdminDashboard(ctx)
}
