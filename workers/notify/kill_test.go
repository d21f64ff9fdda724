package notify_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/notify"
)

// TestMain runs the worker process of TestWorkerKilled when the test
// binary is started as one.
func TestMain(m *testing.M) {
	if os.Getenv("NOTIFY_KILL_CHILD") != "" {
		if err := killChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// killFacts: bookings and cancels in the flowing log (every third
// booking is cancelled later).
const killFacts = 1000

// killLog is the deterministic log of the kill test: a doctor with a
// login, then per fact a patient's registration and booking, or the
// cancel of an earlier booking. Event i of the log is the same in every
// process.
func killLog(base time.Time) []projections.Event {
	var data []domain.Event
	data = append(data,
		doctor.DoctorRegistered{DoctorID: "d1", Profile: doctor.Profile{Name: "Dr. Kill"}},
		account.Registered{AccountID: "u-d1", Name: "Dr. Kill", Email: "doctor@clinic.example", Role: domain.RoleDoctor, DoctorID: "d1"},
		doctor.ScheduleSet{DoctorID: "d1", Schedule: doctor.Schedule{Timezone: "Asia/Kolkata"}})
	booked := 0
	for i := range killFacts {
		if i%4 == 3 { // cancel booking booked-2
			id := fmt.Sprintf("a%04d", booked-2)
			data = append(data, doctor.AppointmentCancelled{DoctorID: "d1", AppointmentID: id, CancelledBy: domain.RolePatient})
			continue
		}
		pid := fmt.Sprintf("p%04d", booked)
		start := base.Add(48*time.Hour + time.Duration(booked)*30*time.Minute)
		data = append(data,
			account.Registered{AccountID: pid, Name: "Patient " + pid, Email: pid + "@example.com", Role: domain.RolePatient},
			doctor.SlotReserved{DoctorID: "d1", AppointmentID: fmt.Sprintf("a%04d", booked), PatientID: pid, Start: start, End: start.Add(30 * time.Minute), Status: doctor.StatusConfirmed})
		booked++
	}
	out := make([]projections.Event, len(data))
	for i, d := range data {
		pos := uint64(i + 1)
		out[i] = projections.Event{ID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(strconv.Itoa(i))), Position: pos, Data: d, RecordedAt: base}
	}
	return out
}

// killChild is the worker process: it resumes from the outbox's
// checkpoint, applies the log as far as the parent has written its length
// (NOTIFY_KILL_DIR/head), saves checkpoints and delivers; it exits once
// the whole log is applied and nothing is pending.
func killChild() error {
	dir := os.Getenv("NOTIFY_KILL_DIR")
	base, err := time.Parse(time.RFC3339Nano, os.Getenv("NOTIFY_KILL_BASE"))
	if err != nil {
		return err
	}
	log := killLog(base)
	box, err := notify.OpenFileOutbox(filepath.Join(dir, "outbox"), 0, time.Now())
	if err != nil {
		return err
	}
	mailer, err := notify.NewSMTP(notify.SMTPConfig{URL: os.Getenv("NOTIFY_KILL_SMTP"), Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	d := notify.NewDeliverer(notify.DeliveryConfig{Outbox: box, Mailer: mailer, DailyCap: -1, Backoff: 10 * time.Millisecond, Poll: 10 * time.Millisecond})
	w, err := notify.New(notify.Config{Outbox: box, Reminders: []time.Duration{}, Wake: d.Wake})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = d.Run(ctx) }()
	for {
		raw, _ := os.ReadFile(filepath.Join(dir, "head"))
		head, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		for _, e := range log[w.Position():head] {
			if err := w.Apply(ctx, e); err != nil {
				return err
			}
		}
		if err := w.Save(ctx); err != nil {
			return err
		}
		if head == len(log) && int(w.Position()) == len(log) {
			if n, _, _ := box.Pending(ctx); n == 0 {
				return box.Close()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The worker process SIGKILLed 20 times while 1,000 bookings and cancels
// flow into the log: no mail is lost, and a mail goes out twice only when
// the kill fell between the server's acceptance and the fsync of its sent
// marker (the window SMTP cannot close; both copies carry one Message-ID).
func TestWorkerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes for a while")
	}
	t.Parallel()
	r := newRig(t, notify.DeliveryConfig{})
	r.close() // the children use the directory
	dir := filepath.Dir(r.dir)
	base := time.Now().UTC().Truncate(time.Second)
	log := killLog(base)
	want := 0
	for _, e := range log {
		switch e.Data.(type) {
		case doctor.SlotReserved, doctor.AppointmentCancelled:
			want += 2 // the patient's and the doctor's
		}
	}
	writeHead := func(n int) {
		tmp := filepath.Join(dir, "head.tmp")
		if err := os.WriteFile(tmp, []byte(strconv.Itoa(n)), 0o600); err != nil {
			t.Error(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "head")); err != nil {
			t.Error(err)
		}
	}
	writeHead(0)
	// The log grows over about 3 s (some 330 facts a second).
	var flowing atomic.Bool
	flowing.Store(true)
	go func() {
		defer flowing.Store(false)
		for n := 0; n < len(log); n += 25 {
			writeHead(n)
			time.Sleep(50 * time.Millisecond)
		}
		writeHead(len(log))
	}()
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "NOTIFY_KILL_CHILD=1", "NOTIFY_KILL_DIR="+dir,
			"NOTIFY_KILL_BASE="+base.Format(time.RFC3339Nano), "NOTIFY_KILL_SMTP="+r.smtp.URL())
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	for range 20 {
		cmd := start()
		time.Sleep(time.Duration(100+rand.IntN(200)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	cmd := start()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the last worker: %v", err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the last worker did not finish in 60 s")
	}
	got := received(r)
	dupes := 0
	for _, n := range got {
		dupes += n - 1
	}
	if len(got) != want {
		t.Fatalf("%d distinct mails; want %d (one per fact and recipient)", len(got), want)
	}
	// At most the sends in flight at each kill (Parallel 4) can repeat.
	if dupes > 20*4 {
		t.Fatalf("%d duplicates after 20 kills", dupes)
	}
	t.Logf("%d mails, %d sent twice after 20 SIGKILLs (killed between acceptance and marker)", want, dupes)
}
