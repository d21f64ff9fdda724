package memory_test

import (
	"testing"

	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/projections/readmodeltest"
)

func TestReadModels(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, func(*testing.T) readmodeltest.Models {
		dir, slots, apps := memory.NewDirectory(), memory.NewSlots(), memory.NewAppointments()
		return readmodeltest.Models{
			Directory: dir, Slots: slots, Appointments: apps, Dashboards: apps, Payments: apps,
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
			Directory: projections.LiveDirectory[*memory.Directory]{L: dir}, Slots: projections.LiveSlots[*memory.Slots]{L: slots}, Appointments: projections.LiveAppointments[*memory.Appointments]{L: apps}, Dashboards: projections.LiveAppointments[*memory.Appointments]{L: apps}, Payments: projections.LiveAppointments[*memory.Appointments]{L: apps},
			Projections: []projections.Projection{dir, slots, apps},
		}
	})
}
