package mongo

import (
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

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

// LiveArray is a day's stored live appointments (packed, or not) as the
// array of subdocuments the layout before packing wrote.
func LiveArray(v any) (bson.A, error) {
	typ, data, err := bson.MarshalValue(v)
	if err != nil {
		return nil, err
	}
	var l liveList
	if err := l.UnmarshalBSONValue(byte(typ), data); err != nil {
		return nil, err
	}
	out := bson.A{}
	for _, d := range l {
		out = append(out, d)
	}
	return out, nil
}
