package projections

import (
	"encoding/json"
	"fmt"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/eventstore"
)

// Decode turns a stored event into a projection Event.
func Decode(reg *domain.Registry, r eventstore.RecordedEvent) (Event, error) {
	data, err := reg.Decode(r.Type, r.Data)
	if err != nil {
		return Event{}, err
	}
	var md domain.Metadata
	if len(r.Metadata) > 0 {
		if err := json.Unmarshal(r.Metadata, &md); err != nil {
			return Event{}, fmt.Errorf("projections: metadata of %s@%d: %w", r.StreamID, r.Revision, err)
		}
	}
	return Event{ID: r.ID, Position: r.Position, StreamID: r.StreamID, Revision: r.Revision, Type: r.Type, Data: data, Metadata: md, RecordedAt: r.RecordedAt, reg: reg}, nil
}
