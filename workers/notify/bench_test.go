package notify_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/smtptest"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/workers/notify"
)

// BenchmarkDeliverSMTP: mails a second from the outbox (in the data dir,
// each sent marker fsynced) to an SMTP server on loopback, over real
// connections (go-mail to go-smtp), with the default 4 senders.
func BenchmarkDeliverSMTP(b *testing.B) {
	srv := smtptest.Start(b)
	m, err := notify.NewSMTP(notify.SMTPConfig{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	box, err := notify.OpenFileOutbox(b.TempDir(), 0, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer box.Close()
	d := notify.NewDeliverer(notify.DeliveryConfig{Outbox: box, Mailer: m, DailyCap: -1})
	body := "Dear Asha Rao,\n\nYour appointment with Dr. Sarah Patel on Thu 3 Dec 2026, 10:00 IST (Asia/Kolkata) is confirmed.\n"
	for i := range b.N {
		if err := box.Add(context.Background(), notify.Mail{Message: notify.Message{ID: fmt.Sprintf("b%08d", i), To: fmt.Sprintf("p%d@example.com", i),
			Subject: "Appointment confirmed", Body: body, HTML: "<p>" + body + "</p>", Date: time.Now()}, CreatedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for {
		n, err := d.Deliver(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "mails/s")
	if got := len(srv.Messages()); got != b.N {
		b.Fatalf("%d received; want %d", got, b.N)
	}
}

// BenchmarkFactToMail: bookings arrive at 200 a second (b.N of them); each
// makes two mails (patient, doctor); the latency is from the worker seeing
// the fact to the SMTP server accepting the mail. Reports p50 and p99.
func BenchmarkFactToMail(b *testing.B) {
	srv := smtptest.Start(b)
	m, err := notify.NewSMTP(notify.SMTPConfig{URL: srv.URL()})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	box, err := notify.OpenFileOutbox(b.TempDir(), 0, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer box.Close()
	d := notify.NewDeliverer(notify.DeliveryConfig{Outbox: box, Mailer: m, DailyCap: -1, Poll: 100 * time.Millisecond})
	w, err := notify.New(notify.Config{Outbox: box, Wake: d.Wake})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = d.Run(ctx) }()
	go func() { // checkpoints every second, as the app does
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = w.Save(ctx)
			}
		}
	}()
	pos := uint64(0)
	apply := func(ev domain.Event) {
		pos++
		if err := w.Apply(ctx, projections.Event{ID: uuidFor(pos), Position: pos, Data: ev, RecordedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	apply(doctor.DoctorRegistered{DoctorID: "d1", Profile: doctor.Profile{Name: "Dr. Bench"}})
	apply(account.Registered{AccountID: "u-d1", Name: "Dr. Bench", Email: "doctor@clinic.example", Role: domain.RoleDoctor, DoctorID: "d1"})
	apply(doctor.ScheduleSet{DoctorID: "d1", Schedule: doctor.Schedule{Timezone: "Asia/Kolkata"}})
	seen := map[int]time.Time{}
	b.ResetTimer()
	tick := time.NewTicker(5 * time.Millisecond) // 200 a second
	defer tick.Stop()
	for i := range b.N {
		<-tick.C
		pid := fmt.Sprintf("p%06d", i)
		apply(account.Registered{AccountID: pid, Name: "Patient", Email: pid + "@example.com", Role: domain.RolePatient})
		start := time.Now().Add(48 * time.Hour)
		seen[i] = time.Now()
		apply(doctor.SlotReserved{DoctorID: "d1", AppointmentID: fmt.Sprintf("a%06d", i), PatientID: pid, Start: start, End: start.Add(30 * time.Minute), Status: doctor.StatusConfirmed})
	}
	msgs := srv.WaitFor(b, 2*b.N, time.Minute)
	b.StopTimer()
	var lat []time.Duration
	for _, msg := range msgs {
		p, err := msg.Parse()
		if err != nil {
			b.Fatal(err)
		}
		body, err := notify.TextBody(p)
		if err != nil {
			b.Fatal(err)
		}
		_, id, _ := strings.Cut(body, "Appointment id: a")
		var i int
		if _, err := fmt.Sscanf(id, "%06d", &i); err != nil {
			b.Fatalf("no appointment id in %q", body)
		}
		lat = append(lat, msg.At.Sub(seen[i]))
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("no latencies")
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkReminders1M: the reminder scheduler with 1,000,000 future
// reminders (500,000 confirmed appointments, 24h and 1h each): the heap
// and state's memory, the CPU of a tick with nothing due and of a
// checkpoint. Run it with -benchtime 1x (its setup takes seconds).
func BenchmarkReminders1M(b *testing.B) {
	box := notify.NewMemoryOutbox()
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	w, err := notify.New(notify.Config{Outbox: box, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx := context.Background()
	pos := uint64(0)
	apply := func(ev domain.Event) {
		pos++
		// Old facts (beyond MaxAge): folded, not mailed.
		if err := w.Apply(ctx, projections.Event{ID: uuidFor(pos), Position: pos, Data: ev, RecordedAt: clk.Now().Add(-48 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	apply(doctor.ScheduleSet{DoctorID: "d1", Schedule: doctor.Schedule{Timezone: "Asia/Kolkata"}})
	for i := range 5000 {
		apply(account.Registered{AccountID: fmt.Sprintf("p%d", i), Name: "Patient", Email: fmt.Sprintf("p%d@example.com", i), Role: domain.RolePatient})
	}
	foldStart := time.Now()
	const appts = 500_000
	for i := range appts {
		start := clk.Now().Add(72*time.Hour + time.Duration(i)*time.Minute)
		apply(doctor.SlotReserved{DoctorID: "d1", AppointmentID: fmt.Sprintf("0190c1a4-7b2e-7c3d-8e4f-%012d", i), PatientID: fmt.Sprintf("p%d", i%5000),
			Start: start, End: start.Add(30 * time.Minute), Status: doctor.StatusConfirmed})
	}
	fold := time.Since(foldStart)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := w.Reminders(); n != 2*appts {
		b.Fatalf("%d reminders", n)
	}
	b.ResetTimer()
	idleStart := time.Now()
	for range 1000 {
		if _, err := w.Tick(ctx); err != nil {
			b.Fatal(err)
		}
	}
	idle := time.Since(idleStart) / 1000
	b.StopTimer()
	saveStart := time.Now()
	pos++
	_ = w.Apply(ctx, projections.Event{ID: uuidFor(pos), Position: pos, Data: doctor.ScheduleSet{DoctorID: "d2"}, RecordedAt: clk.Now()})
	if err := w.Save(ctx); err != nil {
		b.Fatal(err)
	}
	save := time.Since(saveStart)
	// Due now: 1,000 appointments' 24 h reminders.
	clk.Set(clk.Now().Add(48*time.Hour + 1000*time.Minute - time.Second))
	dueStart := time.Now()
	n, err := w.Tick(ctx)
	if err != nil || n != 1000 {
		b.Fatalf("%d due, %v", n, err)
	}
	due := time.Since(dueStart)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB")
	b.ReportMetric(float64(fold.Milliseconds()), "fold-ms")
	b.ReportMetric(float64(idle.Nanoseconds()), "idle-tick-ns")
	b.ReportMetric(float64(save.Milliseconds()), "checkpoint-ms")
	b.ReportMetric(float64(due.Microseconds())/1000, "tick-1000-due-ms")
}
