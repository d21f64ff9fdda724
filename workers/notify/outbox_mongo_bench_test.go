package notify_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/workers/notify"
)

// BenchmarkMongoOutboxDeliver: the delivery cycle of the production
// wiring on the test server (FerretDB on SQLite, or MONGODB_URI): 16
// bookings' mails (a patient's and a doctor's each, 100 doctors) are added,
// then delivered by a Deliverer (default senders, daily cap and metrics on,
// a mailer that only counts) until none is due. Each sub-benchmark starts
// with that many done mails (sent, parked or dropped within the
// retention) already in the outbox; the cost per mail should not grow with
// them. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench MongoOutboxDeliver -benchtime 40x ./workers/notify/
func BenchmarkMongoOutboxDeliver(b *testing.B) {
	uri := testenv.MongoURI(b)
	parent := b
	for _, history := range []int{0, 20_000} {
		var once sync.Once
		var box *notify.MongoOutbox
		var runs atomic.Int64
		b.Run(fmt.Sprintf("history=%d", history), func(b *testing.B) {
			once.Do(func() { box = benchOutbox(parent, uri, history) }) // kept across the runs of b
			run := runs.Add(1)
			mailer := &countingMailer{sent: map[string]int{}}
			metrics, err := notify.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			d := notify.NewDeliverer(notify.DeliveryConfig{Outbox: box, Mailer: mailer, Metrics: metrics, DailyCap: 20})
			ctx := context.Background()
			const bookings = 16
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				at := time.Now()
				mails := make([]notify.Mail, 0, 2*bookings)
				for j := range bookings {
					k := i*bookings + j
					mails = append(mails,
						benchMail(fmt.Sprintf("r%d-%06d-patient", run, k), fmt.Sprintf("r%d-p%06d@example.com", run, k), at),
						benchMail(fmt.Sprintf("r%d-%06d-doctor", run, k), fmt.Sprintf("d%03d@clinic.example", k%100), at))
				}
				if err := box.Add(ctx, mails...); err != nil {
					b.Fatal(err)
				}
				for {
					n, err := d.Deliver(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						break
					}
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			mails := 2 * bookings * b.N
			b.ReportMetric(float64(elapsed.Microseconds())/1000/float64(mails), "ms/mail")
			if len(mailer.sent) == 0 {
				b.Fatal("nothing sent")
			}
			if n, _, err := box.Pending(ctx); err != nil || n != 0 {
				b.Fatalf("%d still pending (%v)", n, err)
			}
		})
	}
}

// benchOutbox opens a MongoOutbox in a database of its own at uri that
// holds history done mails (done over the last week, within the
// retention).
func benchOutbox(b *testing.B, uri string, history int) *notify.MongoOutbox {
	b.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	ctx := context.Background()
	box, err := notify.NewMongoOutbox(ctx, client.Database(testenv.MongoDatabase(b)))
	if err != nil {
		b.Fatal(err)
	}
	statuses := []notify.Status{notify.StatusSent, notify.StatusSent, notify.StatusSent, notify.StatusDropped, notify.StatusFailed}
	base := time.Now().Add(-7 * 24 * time.Hour)
	step := 7 * 24 * time.Hour / time.Duration(max(history, 1))
	var batch []notify.Mail
	for i := range history {
		at := base.Add(time.Duration(i) * step)
		m := benchMail(fmt.Sprintf("h%06d", i), fmt.Sprintf("h%05d@example.com", i%5000), at)
		m.Status, m.Attempts, m.DoneAt = statuses[i%len(statuses)], 1, at.Add(time.Second)
		batch = append(batch, m)
		if len(batch) == 500 || i == history-1 {
			if err := box.Add(ctx, batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return box
}

// benchMail is a booking confirmation as the worker makes it (text, HTML
// and an invitation).
func benchMail(id, to string, at time.Time) notify.Mail {
	body := "Dear Asha Rao,\n\nYour appointment with Dr. Sarah Patel on Thu 3 Dec 2026, 10:00 IST (Asia/Kolkata) is confirmed.\n" +
		"Clinic: 12 MG Road, Bengaluru\nAppointment id: a0190c1a4-7b2e-7c3d-8e4f-000000000001\n"
	return notify.Mail{Message: notify.Message{ID: id, To: to, ToName: "Asha Rao", Subject: "Appointment confirmed", Body: body,
		HTML: "<p>" + body + "</p>", Date: at, Calendar: []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n" +
			"UID:a0190c1a4-7b2e-7c3d-8e4f-000000000001@prescripto\r\nDTSTART:20261203T043000Z\r\nDTEND:20261203T050000Z\r\n" +
			"SUMMARY:Appointment with Dr. Sarah Patel\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"), CalendarMethod: "REQUEST"},
		Kind: "booking_confirmed", About: "p1", Status: notify.StatusPending, NextAt: at, CreatedAt: at}
}
