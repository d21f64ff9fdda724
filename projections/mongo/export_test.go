package mongo

import "time"

// Fail is fail, for the error classification tests.
var Fail = fail

// SetGenerationTTL makes m's readers look the live generation up again
// after d instead of generationTTL.
func SetGenerationTTL(m *Models, d time.Duration) {
	m.Directory.gen.setTTL(d)
	m.Slots.gen.setTTL(d)
	m.Appointments.gen.setTTL(d)
}

// StopSlotsAfter makes s's batches fail after their writes of step
// ("days", "heads") while stop says so.
func StopSlotsAfter(s *Slots, stop func(step string) error) { s.stop = stop }
