package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections/readmodeltest"
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

// TestProductionOperations: /readyz checks every configured dependency.
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
}

// The operator's rebuild of every projection, reads unchanged before,
// during and after, on MongoDB read models (shadow generation, switched
// when caught up), in one process and through an api process.

func TestProductionProjectionsAdmin(t *testing.T) {
	t.Parallel()
	projectionsAdmin(t, testenv.Options{Production: true})
}

func TestRolesProjectionsAdmin(t *testing.T) {
	t.Parallel()
	projectionsAdmin(t, testenv.Options{Production: true, Roles: true})
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
	acked := []string{first.ID, second.ID, third.ID}
	checkAckedEqualsLog(t, "after the Redis outage", e, acked)
	checkMongoEqualsReplay(t, "MongoDB read models after the Redis outage", e, e.Options().MongoURI, readmodeltest.Probe{
		DoctorIDs: []string{d.ID}, PatientIDs: []string{alice.User.ID}, AppointmentIDs: acked,
		From: doctor.DateOf(testenv.At(0, 12, 0).In(testenv.IST)), Days: 2, Now: e.Clock.Now(),
	})
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
	acked := []string{a1.ID, a2.ID}
	checkAckedEqualsLog(t, "across the restart", e2, acked)
	e2.CaughtUp(t)
	checkMongoEqualsReplay(t, "MongoDB read models after the restart", e2, e2.Options().MongoURI, readmodeltest.Probe{
		DoctorIDs: []string{d.ID}, PatientIDs: []string{alice.User.ID}, AppointmentIDs: acked,
		From: doctor.DateOf(testenv.At(0, 12, 0).In(testenv.IST)), Days: 3, Now: e2.Clock.Now(),
	})
}

// The same suites on separate roles: an api process serving the requests,
// a projector and a worker process running the projections and the
// notifications, sharing only the servers.

func TestRolesWalkthrough(t *testing.T) {
	t.Parallel()
	walkthrough(t, testenv.Options{Production: true, Roles: true})
}

func TestRolesDoubleBookingRace(t *testing.T) {
	t.Parallel()
	doubleBookingRace(t, testenv.Options{Production: true, Roles: true})
}

// TestRolesOperations: with separate roles, the api reports the statuses
// the projector and worker processes store, forwards rebuild requests to
// them, and the projector and worker serve only their health, readiness
// and metrics.
func TestRolesOperations(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Production: true, Roles: true})
	d := e.NewDoctor(t, "Dr. Ops Roles", "Neurologist")
	p := e.Register(t, "Opal Patient")
	e.MustBook(t, p.Token, d.ID, testenv.At(2, 10, 0))
	e.CaughtUp(t)

	r := e.Get(t, "//readyz", "").Must(t, http.StatusOK)
	for _, dep := range []string{"eventstore", "mongodb", "redis"} {
		if !strings.Contains(string(r.Body), `"`+dep+`"`) {
			t.Errorf("api /readyz does not check %s: %s", dep, r.Body)
		}
	}
	statuses := func() map[string]string {
		var st struct {
			Projections []struct {
				Name, Status string
				Lag          uint64
			}
		}
		e.Get(t, "/admin/projections", e.AdminToken).Must(t, http.StatusOK).Decode(t, &st)
		out := map[string]string{}
		for _, p := range st.Projections {
			out[p.Name] = fmt.Sprintf("%s lag=%d", p.Status, p.Lag)
		}
		return out
	}
	want := map[string]string{}
	for _, n := range []string{"doctors", "free_slots", "appointments", "analytics", "cache_invalidation", "notifications", "payments"} {
		want[n] = "running lag=0"
	}
	waitFor(t, 10*time.Second, "every projection reported running and caught up", func() bool {
		return reflect.DeepEqual(statuses(), want)
	})

	// A rebuild asked of the api is taken by the worker process.
	e.Post(t, "/admin/projections/notifications/rebuild", e.AdminToken, nil).Must(t, http.StatusAccepted)
	e.Post(t, "/admin/projections/no_such_projection/rebuild", e.AdminToken, nil).CheckProblem(t, http.StatusNotFound, "unknown_projection")
	waitFor(t, 10*time.Second, "the worker took the rebuild request", func() bool {
		pending, err := e.App.PendingRebuild(context.Background(), "notifications")
		return err == nil && !pending
	})
	waitFor(t, 10*time.Second, "the rebuilt worker reported running again", func() bool {
		return reflect.DeepEqual(statuses(), want)
	})

	// The projector and the worker serve operations only.
	for role, a := range e.Roles {
		srv := httptest.NewServer(a.Handler)
		t.Cleanup(srv.Close)
		res, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"projections":"ok"`) || !strings.Contains(string(body), `"mongodb":"ok"`) {
			t.Errorf("%s /readyz: %d %s", role, res.StatusCode, body)
		}
		for path, code := range map[string]int{"/healthz": 200, "/metrics": 200, "/api/v1/doctors": 404, "/api/v1/auth/login": 404} {
			res, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != code {
				t.Errorf("%s %s: %d, want %d", role, path, res.StatusCode, code)
			}
		}
	}
}

// TestRolesNeedSharedServers: a role on its own needs the servers it
// shares with the others.
func TestRolesNeedSharedServers(t *testing.T) {
	t.Parallel()
	for _, r := range []app.Role{app.RoleAPI, app.RoleProjector, app.RoleWorker} {
		_, err := app.New(context.Background(), app.Options{Role: r, DataDir: t.TempDir(), JWTSecret: []byte(testenv.Secret)})
		if err == nil || !strings.Contains(err.Error(), "ESDB_URL and MONGODB_URI") {
			t.Errorf("%s without servers: %v", r, err)
		}
	}
	if _, err := app.New(context.Background(), app.Options{Role: "cron", DataDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "unknown role") {
		t.Errorf("unknown role: %v", err)
	}
}

// waitFor polls cond (an asynchronous outcome observed from outside) until
// it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRolesMissWhenTheHeadNeedsNoInvalidation: a read that misses waits
// for the read models to reach the log's head; when the head is an event
// the cache invalidation has nothing to do with (an account's), the api
// must still see it reached (the projector's reported position), not
// wait until its deadline and answer 503.
func TestRolesMissWhenTheHeadNeedsNoInvalidation(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Production: true, Roles: true})
	e.NewDoctor(t, "Dr. Before", "Cardiology")
	e.Register(t, "Last Event Patient") // the head: account events
	start := time.Now()
	e.Get(t, "/doctors/no-such-doctor", "").CheckProblem(t, http.StatusNotFound, "doctor_not_found")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the miss took %v", d)
	}
}
