package app_test

import (
	"net/http"
	"net/http/httptest"
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
