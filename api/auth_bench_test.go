package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/internal/testenv"
)

// BenchmarkAuthenticatedRead is the server-side cost of a read with a
// bearer token, through the real router and the whole middleware chain,
// the session check (token revocation, sessions.go) included:
//
//   - slots:        GET /doctors/{id}/slots?days=7 with a patient's token
//     (a public read: authentication is most of the difference);
//   - appointments: GET /appointments?limit=10 as that patient.
//
// Each runs with the default session TTL (the check is a cache hit but
// once a second) and with a TTL of 1 ns ("uncached": every request reads
// the account's stream, the cost a cache miss adds). One goroutine;
// cpu-ns/op as in BenchmarkReadPath:
//
//	go test -run '^$' -bench AuthenticatedRead -benchmem -count 5 ./api/
func BenchmarkAuthenticatedRead(b *testing.B) {
	for _, ttl := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", 0}, {"uncached", time.Nanosecond}} {
		b.Run(ttl.name, func(b *testing.B) {
			log := zerolog.New(io.Discard).Level(zerolog.InfoLevel)
			e := testenv.Start(b, testenv.Options{Logger: &log, SessionTTL: ttl.ttl})
			doc := e.NewDoctor(b, "Dr. Bench", "Dermatologist")
			p := e.Register(b, "Bench Patient")
			e.MustBook(b, p.Token, doc.ID, testenv.At(2, 10, 0))
			e.CaughtUp(b)
			for _, bc := range []struct{ name, path string }{
				{"slots", "/api/v1/doctors/" + doc.ID + "/slots?days=7"},
				{"appointments", "/api/v1/appointments?limit=10"},
			} {
				b.Run(bc.name, func(b *testing.B) {
					req := httptest.NewRequest(http.MethodGet, bc.path, nil)
					req.RemoteAddr = "127.0.0.1:40000"
					req.Header.Set("Authorization", "Bearer "+p.Token)
					serveLoop(b, e.App.Handler, req)
				})
			}
		})
	}
}
