package app_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prescripto/prescripto/internal/testenv"
)

// BenchmarkWebhook measures verified webhooks through the whole handler
// chain (signature over the raw body, parsing, one append to the event's
// own stream), a quarter of them redeliveries of an event already
// recorded: go test -run '^$' -bench Webhook ./internal/app/
func BenchmarkWebhook(b *testing.B) {
	e := testenv.Start(b, testenv.Options{})
	body := []byte(`{"entity":"event","account_id":"acc_1","event":"payment.captured","contains":["payment"],` +
		`"payload":{"payment":{"entity":{"id":"pay_Bench0000000001","entity":"payment","amount":50000,"currency":"INR",` +
		`"status":"captured","order_id":"order_Bench000000001","captured":true,"created_at":1900000000}}},"created_at":1900000000}`)
	sig := e.Razorpay.SignWebhook(body)
	var next atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			id := fmt.Sprintf("evt_bench%d", n)
			if n%4 == 0 {
				id = fmt.Sprintf("evt_bench%d", n-1) // a redelivery
			}
			req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/razorpay", strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Razorpay-Signature", sig)
			req.Header.Set("X-Razorpay-Event-Id", id)
			rec := httptest.NewRecorder()
			e.App.Handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "webhooks/s")
}

// BenchmarkBookToConfirmed measures what a patient waits for, over HTTP
// to the engine and from it to the Razorpay emulator: book (held), ask for
// the order, pay it at the emulator, verify. It reports the p50 and p99 of
// the whole sequence: go test -run '^$' -bench BookToConfirmed ./internal/app/
func BenchmarkBookToConfirmed(b *testing.B) {
	e := testenv.Start(b, testenv.Options{})
	e.Razorpay.SetWebhooksEnabled(false) // the browser's verify confirms
	r := &payRig{Env: e}
	var targets []struct {
		doctor string
		start  time.Time
	}
	for len(targets) < b.N {
		d := e.NewDoctor(b, "Dr. Bench", "Cardiology")
		r.setPolicy(b, d.ID, "required")
		for _, s := range e.FreeSlots(b, d.ID, testenv.Date(1), 28, e.Head(b)).All() {
			targets = append(targets, struct {
				doctor string
				start  time.Time
			}{d.ID, s})
		}
	}
	p := e.Register(b, "Bench Patient")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		a := e.MustBook(b, p.Token, targets[i].doctor, targets[i].start)
		_, o := r.order(b, p.Token, a.ID)
		c, err := e.Razorpay.Pay(o.OrderID)
		if err != nil {
			b.Fatal(err)
		}
		r.verify(b, p.Token, c).Must(b, http.StatusOK)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkReconcileSweep measures the payments worker settling 10,000
// open holds that run out at once: each hold's order is asked about at
// the emulator (none was paid) and the hold expired through its command:
// go test -run '^$' -bench ReconcileSweep -benchtime 1x ./internal/app/
func BenchmarkReconcileSweep(b *testing.B) {
	const holds = 10_000
	for range b.N {
		b.StopTimer()
		e := testenv.Start(b, testenv.Options{PaymentWorker: paymentsWorkerFast()})
		r := &payRig{Env: e}
		p := e.Register(b, "Sweep Patient")
		var ids []string
		for len(ids) < holds {
			d := e.NewDoctor(b, "Dr. Sweep", "Cardiology")
			r.setPolicy(b, d.ID, "required")
			for _, s := range e.FreeSlots(b, d.ID, testenv.Date(1), 28, e.Head(b)).All() {
				if len(ids) == holds {
					break
				}
				a := e.MustBook(b, p.Token, d.ID, s)
				r.order(b, p.Token, a.ID)
				ids = append(ids, a.ID)
			}
		}
		e.CaughtUp(b)
		b.StartTimer()
		e.Clock.Advance(16 * time.Minute)
		deadline := time.Now().Add(10 * time.Minute)
		for {
			page := e.Do(b, testenv.Req{Method: http.MethodGet, Path: "/appointments?status=held&limit=1", Token: e.AdminToken, MinPosition: e.Head(b)}).Must(b, http.StatusOK)
			var left testenv.AppointmentList
			page.Decode(b, &left)
			if len(left.Appointments) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the sweep did not finish in 10 minutes")
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.StopTimer()
		e.Stop()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/sweep")
}
