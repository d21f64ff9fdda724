package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/workers/notify"
)

// reminders ticks the worker at t and returns the reminder mails queued.
func (r *rig) remindersAt(t time.Time) []notify.Mail {
	r.t.Helper()
	r.clock.Set(t)
	if _, err := r.w.Tick(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	all, err := r.box.List(context.Background(), "", 1000)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []notify.Mail
	for _, m := range all {
		if m.Kind == notify.KindReminder {
			out = append(out, m)
		}
	}
	return out
}

// Reminders go out at the instant 24 h and 1 h before the start, in the
// doctor's zone's words: Asia/Kolkata, and Europe/London across the start
// of summer time (the day before has one hour fewer in local time).
func TestRemindersAtTheRightInstant(t *testing.T) {
	t.Parallel()
	cases := []struct {
		zone  string
		start time.Time
		local string
	}{
		{"Asia/Kolkata", time.Date(2026, 12, 3, 4, 30, 0, 0, time.UTC), "Thu 3 Dec 2026, 10:00 IST (Asia/Kolkata)"},
		// Summer time starts at 01:00 UTC on 29 March 2026.
		{"Europe/London", time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC), "Sun 29 Mar 2026, 10:00 BST (Europe/London)"},
	}
	for _, c := range cases {
		t.Run(c.zone, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, notify.DeliveryConfig{})
			r.clock.Set(c.start.Add(-72 * time.Hour))
			l := &log{at: r.clock.Now}
			l.add(people(c.zone)...)
			l.add(reserve("a1", c.start, doctor.StatusConfirmed))
			r.apply(l.events)
			if got := r.remindersAt(c.start.Add(-24*time.Hour - time.Second)); len(got) != 0 {
				t.Fatalf("a reminder a second early: %+v", got)
			}
			got := r.remindersAt(c.start.Add(-24 * time.Hour))
			if len(got) != 1 || !strings.Contains(got[0].Body, c.local) || !strings.Contains(got[0].Subject, "24 hours") {
				t.Fatalf("24 h reminder: %+v", got)
			}
			if got := r.remindersAt(c.start.Add(-time.Hour - time.Second)); len(got) != 1 {
				t.Fatalf("the 1 h reminder early: %d", len(got))
			}
			got = r.remindersAt(c.start.Add(-time.Hour))
			if len(got) != 2 {
				t.Fatalf("%d reminders; want 2", len(got))
			}
			r.drain()
			if n := len(r.smtp.WaitFor(t, 4, 5*time.Second)); n != 4 { // confirmed, doctor's new booking, 2 reminders
				t.Fatalf("%d mails", n)
			}
		})
	}
}

// A cancel withdraws the reminders, a reschedule moves them, and a held or
// expired appointment has none.
func TestRemindersFollowTheAppointment(t *testing.T) {
	t.Parallel()
	r := newRig(t, notify.DeliveryConfig{})
	start := time.Date(2026, 12, 10, 4, 30, 0, 0, time.UTC)
	l := &log{at: r.clock.Now}
	l.add(people("Asia/Kolkata")...)
	l.add(
		reserve("cancelled", start, doctor.StatusConfirmed),
		doctor.AppointmentCancelled{DoctorID: "d1", AppointmentID: "cancelled", Start: start, End: start.Add(30 * time.Minute), CancelledBy: domain.RolePatient},
		reserve("moved", start, doctor.StatusConfirmed),
		doctor.AppointmentRescheduled{DoctorID: "d1", AppointmentID: "moved", PreviousStart: start, PreviousEnd: start.Add(30 * time.Minute),
			Start: start.Add(48 * time.Hour), End: start.Add(48*time.Hour + 30*time.Minute)},
		reserve("held", start, doctor.StatusHeld),
		reserve("expired", start.Add(time.Hour), doctor.StatusHeld),
		doctor.HoldExpired{DoctorID: "d1", AppointmentID: "expired", Start: start.Add(time.Hour), End: start.Add(90 * time.Minute)},
	)
	r.apply(l.events)
	if got := r.remindersAt(start.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("reminders for cancelled, moved, held or expired appointments: %+v", got)
	}
	got := r.remindersAt(start.Add(24 * time.Hour))
	if len(got) != 1 || !strings.Contains(got[0].Body, "Sat 12 Dec 2026, 10:00 IST") {
		t.Fatalf("moved reminders: %+v", got)
	}
	if got := r.remindersAt(start.Add(47 * time.Hour)); len(got) != 2 {
		t.Fatalf("%d moved reminders; want 2", len(got))
	}
}

// A reminder whose time passed while the worker was down goes out late if
// the appointment has not started (only the latest lead), and is dropped
// (counted) if it has; the reminders come back from the checkpoint after a
// restart and none goes out twice.
func TestLateRemindersAfterARestart(t *testing.T) {
	t.Parallel()
	r := newRig(t, notify.DeliveryConfig{})
	start := time.Date(2026, 12, 10, 4, 30, 0, 0, time.UTC)
	l := &log{at: r.clock.Now}
	l.add(people("Asia/Kolkata")...)
	l.add(reserve("a1", start, doctor.StatusConfirmed), reserve("a2", start.Add(3*time.Hour), doctor.StatusConfirmed),
		reserve("a3", start.Add(-10*time.Hour), doctor.StatusConfirmed))
	r.apply(l.events)
	if err := r.w.Save(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.close()
	// Down until 30 minutes before a1: a1's 24 h reminder is overtaken by
	// its 1 h one; a2's 24 h one goes out late; a3 has started.
	r.open()
	if n := r.w.Reminders(); n != 6 {
		t.Fatalf("%d reminders after the restart; want 6", n)
	}
	got := r.remindersAt(start.Add(-30 * time.Minute))
	leads := map[string]bool{}
	for _, m := range got {
		leads[m.Subject[:strings.Index(m.Subject, ",")]] = true
	}
	if len(got) != 2 || !leads["Reminder: Dr. Sarah Patel in 1 hour"] || !leads["Reminder: Dr. Sarah Patel in 24 hours"] {
		t.Fatalf("late reminders %v", leads)
	}
	r.close()
	r.open()
	if got := r.remindersAt(start.Add(-29 * time.Minute)); len(got) != 2 {
		t.Fatalf("%d reminders after a second restart; want the same 2", len(got))
	}
}
