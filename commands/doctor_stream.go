package commands

import (
	"context"
	"strings"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// newDoctorStreams is the handler's cache of doctor streams.
// Doctors seal the personal fields they record with the registry's cipher
// (when it has one), so that no doctor's state (nor a snapshot of it)
// holds them in the clear.
func newDoctorStreams(reg *domain.Registry) *streams[*doctor.Doctor] {
	s := newStreams(func(stream string) *doctor.Doctor {
		_, id, _ := strings.Cut(stream, "-")
		d := doctor.New(id)
		if c := reg.Cipher(); c != nil {
			d.SealWith(c.Seal)
		}
		return d
	})
	s.codec = doctorCodec(reg)
	return s
}

// decideFunc decides a command on the doctor aggregate at now, recording
// events (or none) or returning a domain error.
type decideFunc func(d *doctor.Doctor, now time.Time) error

// viewFunc reads the result off the aggregate, under the stream's lock.
type viewFunc func(d *doctor.Doctor)

// execDoctor runs one command on a doctor stream through the command loop
// (run).
func (h *Handler) execDoctor(ctx context.Context, command, doctorID string, m Meta, req request, decide decideFunc, view viewFunc) (uint64, error) {
	if doctorID == "" {
		return 0, doctor.ErrDoctorNotFound
	}
	return run(ctx, h, h.doctors, step[*doctor.Doctor]{
		command: command, stream: doctor.StreamID(doctorID), meta: m, req: req, decide: decide, view: view,
	})
}

// Doctor calls see with a doctor's decided state, caught up with its
// stream, under the stream's lock (for callers that must read the write
// model).
func (h *Handler) Doctor(ctx context.Context, doctorID string, see viewFunc) error {
	ok, err := view(ctx, h, h.doctors, doctor.StreamID(doctorID), func(d *doctor.Doctor, _ uint64) { see(d) })
	if err == nil && !ok {
		err = doctor.ErrDoctorNotFound
	}
	return err
}
