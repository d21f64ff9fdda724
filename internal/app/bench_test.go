package app_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prescripto/prescripto/internal/testenv"
)

// BenchmarkFreeSlotsRead measures the server-side cost of the hottest read
// through the whole handler chain (middleware, auth, read model, JSON),
// without the network: go test -run '^$' -bench FreeSlots ./internal/app/
func BenchmarkFreeSlotsRead(b *testing.B) {
	e := testenv.Start(b, testenv.Options{})
	doc := e.NewDoctor(b, "Dr. Bench", "Dermatologist")
	e.CaughtUp(b)
	path := "/api/v1/doctors/" + doc.ID + "/slots?days=7"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			e.App.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}

// BenchmarkBook measures the server-side cost of a booking through the
// whole engine in one process: handler chain, command, store, projections
// and the notifications worker (the CPU profile sees them all):
// go test -run '^$' -bench Book -cpuprofile cpu.out ./internal/app/
func BenchmarkBook(b *testing.B) {
	e := testenv.Start(b, testenv.Options{})
	// Many patients, as in a clinic (one patient's bookings are bounded and
	// never overlap); a prime count, so no patient gets one time twice.
	var pats []testenv.AuthResult
	for i := range 97 {
		pats = append(pats, e.Register(b, fmt.Sprintf("Bench Patient %d", i)))
	}
	type target struct {
		doctor string
		start  string
	}
	var targets []target
	for len(targets) < b.N {
		doc := e.NewDoctor(b, "Dr. Bench", "Dermatologist")
		for _, s := range e.FreeSlots(b, doc.ID, testenv.Date(1), 28, doc.Position).All() {
			targets = append(targets, target{doc.ID, testenv.RFC3339(s)})
		}
	}
	var next atomic.Int64
	b.SetParallelism(32) // bookings wait for their commit: keep the CPU busy
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := next.Add(1) - 1
			t, p := targets[k], pats[k%int64(len(pats))]
			req := httptest.NewRequest(http.MethodPost, "/api/v1/appointments", strings.NewReader(`{"doctorId":"`+t.doctor+`","start":"`+t.start+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+p.Token)
			rec := httptest.NewRecorder()
			e.App.Handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
	b.StopTimer()
	e.CaughtUp(b)
}
