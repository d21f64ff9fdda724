package commands_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
)

// AddTimeOff answers the appointments it cancelled: its own, once, also
// when its first append conflicted (another replica wrote the stream) and
// it decided again.
func TestAddTimeOffAnswersItsCancellationsOnceAfterAConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.doctor(t, "timeoff-retry")
	ss := slots(t, d, 4)
	a, b := e.h, e.handler(t)
	ctx := context.Background()
	in, err := a.ReserveSlot(ctx, patient(1), commands.ReserveSlot{PatientName: "P One", DoctorID: d.ID, Start: ss[0]})
	if err != nil {
		t.Fatal(err)
	}
	// The other replica writes the stream: A's cached revision is stale,
	// so A's first append of the time off conflicts.
	if _, err := b.ReserveSlot(ctx, patient(2), commands.ReserveSlot{PatientName: "P Two", DoctorID: d.ID, Start: ss[3]}); err != nil {
		t.Fatal(err)
	}
	doc := commands.Meta{Actor: domain.Actor{UserID: d.ID, Role: domain.RoleDoctor}}
	res, err := a.AddTimeOff(ctx, doc, commands.AddTimeOff{DoctorID: d.ID, From: ss[0], To: ss[0].Add(30 * time.Minute), CancelBookings: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{in.Appointment.ID}; !slices.Equal(res.Cancelled, want) {
		t.Fatalf("AddTimeOff answered cancelled %v; want %v", res.Cancelled, want)
	}
	if a, _ := e.fold(t, d.ID).Appointment(in.Appointment.ID); a.Status != doctor.StatusCancelled {
		t.Fatalf("the log has %s %s; want cancelled", a.ID, a.Status)
	}
}
