package app_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/testenv"
)

// The production wiring: the event store on EventStoreDB (the esdbtest
// emulator), the read models in MongoDB (FerretDB), Redis Streams as the
// projections' transport, the Redis cache in front of the directory and
// the free slots, and the Redis rate-limit counter.

func TestProductionWalkthrough(t *testing.T) {
	t.Parallel()
	walkthrough(t, testenv.Options{Production: true})
}

func TestProductionDoubleBookingRace(t *testing.T) {
	t.Parallel()
	doubleBookingRace(t, testenv.Options{Production: true})
}

// TestProductionOperations: /readyz checks every configured dependency, and
// a rebuild of a MongoDB read model is refused with a clear problem rather
// than accepted and done as a no-op.
func TestProductionOperations(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Production: true})
	e.CaughtUp(t)
	r := e.Get(t, "//readyz", "").Must(t, http.StatusOK)
	for _, dep := range []string{"eventstore", "mongodb", "redis", "projections"} {
		if !strings.Contains(string(r.Body), `"`+dep+`"`) {
			t.Errorf("/readyz does not check %s: %s", dep, r.Body)
		}
	}
	for _, name := range []string{"doctors", "free_slots", "appointments"} {
		r := e.Post(t, "/admin/projections/"+name+"/rebuild", e.AdminToken, nil)
		if r.Status != http.StatusNotImplemented || !strings.Contains(string(r.Body), "rebuild_unsupported") {
			t.Errorf("rebuild %s: %s, want 501 rebuild_unsupported", name, r)
		}
	}
	// The cache invalidation and the workers are not MongoDB models: their
	// rebuild replays the log idempotently.
	e.Post(t, "/admin/projections/notifications/rebuild", e.AdminToken, nil).Must(t, http.StatusAccepted)
}

// TestProductionServerDownAtStart: a configured server that does not answer
// is a start-up error naming its variable, never a fall-back.
func TestProductionServerDownAtStart(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	for name, o := range map[string]app.Options{
		"ESDB_URL":    {ESDBURL: "esdb://" + dead + "?tls=false"},
		"MONGODB_URI": {MongoURI: "mongodb://" + dead + "/prescripto"},
		"REDIS_URL":   {RedisURL: "redis://" + dead + "/0"},
	} {
		t.Run(name, func(t *testing.T) {
			o.DataDir, o.JWTSecret, o.Logger, o.ConnectTimeout = t.TempDir(), testenv.Secret, zerolog.Nop(), 2*time.Second
			a, err := app.New(context.Background(), o)
			if err == nil {
				a.Close()
				t.Fatalf("app.New with %s on a dead port succeeded", name)
			}
			if !strings.HasPrefix(err.Error(), name+":") {
				t.Fatalf("error %q does not name %s", err, name)
			}
		})
	}
}

// TestProductionRedisDown: Redis stopped mid-run. Reads of the directory
// and the free slots still answer (the cache falls back to the read
// models) and bookings keep working (commands never touch Redis).
func TestProductionRedisDown(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	e := testenv.Start(t, testenv.Options{Production: true, RedisURL: rs.URL()})
	d := e.NewDoctor(t, "Dr. Redis Down", "General physician")
	alice := e.Register(t, "Alice")
	first := e.MustBook(t, alice.Token, d.ID, testenv.At(1, 10, 0))
	e.CaughtUp(t)
	// Warm the cache.
	e.Get(t, "/doctors/"+d.ID, "").Must(t, http.StatusOK)
	if e.FreeSlots(t, d.ID, testenv.Date(1), 1, first.Position).Has(testenv.At(1, 10, 0)) {
		t.Fatal("booked slot listed free")
	}

	rs.Stop()
	r := e.Get(t, "/doctors/"+d.ID, "").Must(t, http.StatusOK)
	var doc struct {
		ID string `json:"id"`
	}
	r.Decode(t, &doc)
	if doc.ID != d.ID {
		t.Fatalf("doctor read with Redis down: %s", r)
	}
	free := e.FreeSlots(t, d.ID, testenv.Date(1), 1, 0)
	if free.Has(testenv.At(1, 10, 0)) || !free.Has(testenv.At(1, 10, 30)) {
		t.Fatalf("free slots with Redis down: %+v", free)
	}
	second := e.MustBook(t, alice.Token, d.ID, testenv.At(1, 10, 30))
	if second.Position <= first.Position {
		t.Fatalf("booking with Redis down at %d, after %d", second.Position, first.Position)
	}
	// The same slot is still refused: the event store decides, not Redis.
	e.Book(t, alice.Token, d.ID, testenv.At(1, 10, 30)).Expect(t, http.StatusConflict)
	r = e.Get(t, "//readyz", "")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "redis") {
		t.Errorf("/readyz with Redis down: %s, want 503 naming redis", r)
	}

	// Redis comes back empty (no persistence): the consumer groups are
	// recreated, the forwarder republishes, and the read models catch up
	// with the booking made while it was down.
	rs.Start()
	third := e.MustBook(t, alice.Token, d.ID, testenv.At(1, 11, 0))
	e.CaughtUp(t)
	e.Get(t, "/doctors/"+d.ID, "").Must(t, http.StatusOK)
	free = e.FreeSlots(t, d.ID, testenv.Date(1), 1, third.Position)
	for _, s := range []time.Time{testenv.At(1, 10, 0), testenv.At(1, 10, 30), testenv.At(1, 11, 0)} {
		if free.Has(s) {
			t.Errorf("booked slot %v listed free after Redis came back", s)
		}
	}
	list := e.Appointments(t, alice.Token, "", third.Position)
	if len(list.Appointments) != 3 {
		t.Errorf("alice has %d appointments after Redis came back, want 3", len(list.Appointments))
	}
	e.Get(t, "//readyz", "").Must(t, http.StatusOK)
}

// TestProductionRestart: the engine restarts on the same servers. The
// MongoDB read models keep their data and resume at their checkpoints, the
// event store keeps the log, and everything booked before the restart reads
// the same after it and stays taken.
func TestProductionRestart(t *testing.T) {
	t.Parallel()
	_, esdbURL := esdbtest.StartServer(t)
	o := testenv.Options{Production: true, ESDBURL: esdbURL}
	e1 := testenv.Start(t, o)
	o.MongoURI, o.RedisURL = e1.Options().MongoURI, e1.Options().RedisURL
	d := e1.NewDoctor(t, "Dr. Restart", "Dermatologist")
	alice := e1.Register(t, "Alice")
	a1 := e1.MustBook(t, alice.Token, d.ID, testenv.At(2, 10, 0))
	e1.CaughtUp(t)
	before := e1.FreeSlots(t, d.ID, testenv.Date(2), 1, a1.Position)
	e1.Stop()

	e2 := testenv.Start(t, o)
	e2.CaughtUp(t)
	after := e2.FreeSlots(t, d.ID, testenv.Date(2), 1, a1.Position)
	if len(after.Days) != 1 || len(before.Days) != 1 || len(after.Days[0].Slots) != len(before.Days[0].Slots) || after.Has(testenv.At(2, 10, 0)) {
		t.Fatalf("free slots after restart %+v, before %+v", after, before)
	}
	list := e2.Appointments(t, alice.Token, "", a1.Position)
	if len(list.Appointments) != 1 || list.Appointments[0].ID != a1.ID {
		t.Fatalf("alice's appointments after restart: %+v", list)
	}
	e2.Book(t, alice.Token, d.ID, testenv.At(2, 10, 0)).Expect(t, http.StatusConflict)
	a2 := e2.MustBook(t, alice.Token, d.ID, testenv.At(2, 10, 30))
	if e2.FreeSlots(t, d.ID, testenv.Date(2), 1, a2.Position).Has(testenv.At(2, 10, 30)) {
		t.Fatal("slot booked after restart listed free")
	}
}
