package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/internal/testenv"
)

// BenchmarkReadPath is the server-side cost of an anonymous read through the
// real router and the whole middleware chain (request id, logger, access
// log to a JSON encoder, recoverer, security headers, metrics,
// authentication) wired to the in-memory read models, without the network:
//
//   - bare:    a handler writing {"status":"ok"} with no middleware, the floor;
//   - healthz: GET /healthz, a trivial handler behind the chain (the load
//     generator's healthz scenario);
//   - slots:   GET /api/v1/doctors/{id}/slots?days=7, the hottest read
//     (the slots scenario), answered from the model's cached JSON.
//
// One goroutine; cpu-ns/op is the process's CPU time (user and system,
// every thread, the GC's included) per request, which a busy machine
// inflates less than ns/op (wall time):
//
//	go test -run '^$' -bench ReadPath -benchmem -count 5 ./api/
func BenchmarkReadPath(b *testing.B) {
	log := zerolog.New(io.Discard).Level(zerolog.InfoLevel)
	e := testenv.Start(b, testenv.Options{Logger: &log})
	doc := e.NewDoctor(b, "Dr. Bench", "Dermatologist")
	e.CaughtUp(b)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
		path string
	}{
		{"bare", bare, "/healthz"},
		{"healthz", e.App.Handler, "/healthz"},
		{"slots", e.App.Handler, "/api/v1/doctors/" + doc.ID + "/slots?days=7"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, bc.path, nil)
			req.RemoteAddr = "127.0.0.1:40000"
			serveLoop(b, bc.h, req)
		})
	}
}

// serveLoop serves req with h for the benchmark's loop, each answer 200,
// and reports cpu-ns/op.
func serveLoop(b *testing.B, h http.Handler, req *http.Request) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time this process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discardWriter is a ResponseWriter that keeps the status and drops the
// body, so the benchmark measures the server, not a recorder's buffer.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
