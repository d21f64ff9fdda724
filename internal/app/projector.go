package app

import "github.com/prescripto/prescripto/projections"

// newProjector builds the projector part: a runner that projects the log
// into the read models (and keeps the Redis cache in step with them).
func newProjector(sh *shared) (*projections.Runner, error) {
	return sh.runner(projections.EventsTopic, sh.models.all()...)
}
