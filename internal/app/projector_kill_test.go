package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/app"
	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/projections"
	"github.com/prescripto/prescripto/projections/memory"
	"github.com/prescripto/prescripto/projections/mongo"
	"github.com/prescripto/prescripto/projections/readmodeltest"
	"github.com/prescripto/prescripto/projections/rediscache"
)

// childRoleEnv, set in the environment of this test binary, makes it run
// one role of the engine (like `prescripto projector`) instead of the
// tests: a process the tests can kill.
const childRoleEnv = "PRESCRIPTO_TEST_CHILD_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(runChildRole(app.Role(role)))
	}
	os.Exit(m.Run())
}

// runChildRole runs role on the servers named by ESDB_URL, MONGODB_URI
// and REDIS_URL until it is signalled (or killed).
func runChildRole(role app.Role) int {
	log := zerolog.New(os.Stderr).Level(zerolog.WarnLevel).With().Timestamp().Str("role", string(role)).Logger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "prescripto-child-")
	if err != nil {
		log.Error().Err(err).Msg("data dir")
		return 1
	}
	defer os.RemoveAll(dir)
	opts := app.Options{
		Role: role, DataDir: dir, Logger: log,
		ESDBURL: os.Getenv("ESDB_URL"), MongoURI: os.Getenv("MONGODB_URI"), RedisURL: os.Getenv("REDIS_URL"),
	}
	soakChild(ctx, &opts) // the soak's children: payments, the test clock, stats
	a, err := app.New(ctx, opts)
	if err != nil {
		log.Error().Err(err).Msg("start-up failed")
		return 1
	}
	defer a.Close()
	if err := a.Run(ctx); err != nil {
		log.Error().Err(err).Msg("run failed")
		return 1
	}
	return 0
}

// childProcess is a role running in a child process.
type childProcess struct {
	cmd     *exec.Cmd
	stderr  *testenv.ProcessLog
	done    chan struct{} // closed when the process has exited
	started time.Time
}

func startChild(t *testing.T, role app.Role, o testenv.Options, env ...string) *childProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+string(role),
		"ESDB_URL="+o.ESDBURL, "MONGODB_URI="+o.MongoURI, "REDIS_URL="+o.RedisURL)
	cmd.Env = append(cmd.Env, env...)
	stderr := &testenv.ProcessLog{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", role, err)
	}
	c := &childProcess{cmd: cmd, stderr: stderr, done: make(chan struct{}), started: time.Now()}
	go func() { _ = cmd.Wait(); close(c.done) }()
	return c
}

// kill SIGKILLs the child: no shutdown, no flush, whatever it was doing.
func (c *childProcess) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Kill()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("a killed child did not exit")
	}
}

// TestProjectorKilledDuringLoad: the projector process is SIGKILLed at
// random points 20 times while patients book, cancel and reschedule
// through an api process; once a projector runs again and has caught up,
// the MongoDB read models equal a fresh rebuild of the log, and the Redis
// cache in front of them serves the same free slots.
func TestProjectorKilledDuringLoad(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t, testenv.Options{Production: true, Roles: true, ExternalProjector: true, MaxWait: 2 * time.Second})
	o := e.Options()
	proj := startChild(t, app.RoleProjector, o)
	t.Cleanup(func() { proj.kill(t) })

	const nDoctors, nPatients = 5, 10
	var doctors []string
	for i := range nDoctors {
		doctors = append(doctors, e.NewDoctor(t, fmt.Sprintf("Dr. Kill %d", i), []string{"Dermatologist", "Neurologist"}[i%2]).ID)
	}
	type patient struct{ id, token string }
	var patients []patient
	for i := range nPatients {
		p := e.Register(t, fmt.Sprintf("Kim Patient %d", i))
		patients = append(patients, patient{p.User.ID, p.Token})
	}

	// The load: book, and now and then cancel or reschedule, until stopped.
	var (
		mu      sync.Mutex
		apptIDs []string
		booked  atomic.Int64
		// notCaughtUp counts 503 answers to cancel/reschedule.
		notCaughtUp atomic.Int64
		conflicts   atomic.Int64
		loadErr     = make(chan error, 16)
		stopLoad    = make(chan struct{})
		loadGroup   sync.WaitGroup
	)
	slot := func(r *rand.Rand) time.Time {
		return testenv.At(1+r.IntN(4), 10+r.IntN(10), 30*r.IntN(2))
	}
	type booking struct{ id, token string }
	var active []booking // booked, neither cancelled nor rescheduled by the load
	for w := range 6 {   // patients booking
		loadGroup.Add(1)
		go func() {
			defer loadGroup.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				p := patients[r.IntN(len(patients))]
				res := e.Book(t, p.token, doctors[r.IntN(len(doctors))], slot(r))
				switch res.Status {
				case http.StatusCreated:
				case http.StatusConflict:
					conflicts.Add(1)
					continue
				default:
					loadErr <- fmt.Errorf("book: %s", res)
					return
				}
				// Not res.Decode: its t.Fatalf may only run on the test's
				// goroutine; the error goes to the test through loadErr.
				var a testenv.Appointment
				if err := json.Unmarshal(res.Body, &a); err != nil || a.ID == "" {
					loadErr <- fmt.Errorf("book: answer %s does not decode: %v", res, err)
					return
				}
				booked.Add(1)
				mu.Lock()
				apptIDs = append(apptIDs, a.ID)
				active = append(active, booking{a.ID, p.token})
				mu.Unlock()
			}
		}()
	}
	for w := range 2 { // patients cancelling or rescheduling a booking of theirs
		loadGroup.Add(1)
		go func() {
			defer loadGroup.Done()
			r := rand.New(rand.NewPCG(uint64(w), 4242))
			for {
				select {
				case <-stopLoad:
					return
				case <-time.After(time.Duration(r.IntN(40)) * time.Millisecond):
				}
				mu.Lock()
				if len(active) == 0 {
					mu.Unlock()
					continue
				}
				i := r.IntN(len(active))
				b := active[i]
				active = append(active[:i], active[i+1:]...)
				mu.Unlock()
				// Cancel and reschedule find the appointment's doctor in the
				// read model: while the projector is down and the booking is
				// not projected yet, the honest answer is 503 not_caught_up
				// (retry), never 404.
				var c *testenv.Res
				if r.IntN(2) == 0 {
					c = e.Post(t, "/appointments/"+b.id+"/cancel", b.token, nil)
				} else {
					c = e.Post(t, "/appointments/"+b.id+"/reschedule", b.token, map[string]string{"start": testenv.RFC3339(slot(r))})
				}
				switch c.Status {
				case http.StatusOK, http.StatusConflict: // rescheduled, cancelled, or the new slot taken
				case http.StatusServiceUnavailable:
					notCaughtUp.Add(1)
				default:
					loadErr <- fmt.Errorf("cancel or reschedule: %s", c)
					return
				}
			}
		}()
	}

	// The kills: 20 times, let the projector run for a random while, then
	// SIGKILL it wherever it is (forwarding, applying, checkpointing).
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 20 {
		time.Sleep(time.Duration(100+r.IntN(600)) * time.Millisecond)
		proj.kill(t)
		select {
		case err := <-loadErr:
			t.Fatalf("load failed after %d kills: %v", i, err)
		default:
		}
		proj = startChild(t, app.RoleProjector, o)
	}
	close(stopLoad)
	loadGroup.Wait()
	select {
	case err := <-loadErr:
		t.Fatalf("load failed: %v", err)
	default:
	}
	t.Logf("load during the kills: %d bookings, %d taken (409), %d cancels/reschedules not caught up (503)", booked.Load(), conflicts.Load(), notCaughtUp.Load())
	if booked.Load() < 50 {
		t.Fatalf("only %d bookings during the kills: the load did not run", booked.Load())
	}

	// The last projector catches up.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.App.CaughtUp(ctx); err != nil {
		t.Fatalf("the projector did not catch up after the kills: %v\nprojector log:\n%s", err, proj.stderr)
	}

	// Every booking answered 201 is in the log, once, and the log holds
	// no booking nobody was told about.
	mu.Lock()
	acked := slices.Clone(apptIDs)
	mu.Unlock()
	checkAckedEqualsLog(t, "after 20 projector kills", e, acked)

	// A fresh rebuild: the whole log replayed into empty in-memory models.
	fresh := readmodeltest.Models{}
	dir, slots, appts := memory.NewDirectory(), memory.NewSlots(), memory.NewAppointments()
	fresh.Directory, fresh.Slots, fresh.Appointments, fresh.Dashboards = dir, slots, appts, appts
	replay(t, e, dir, slots, appts)

	db := mongoDatabase(t, o.MongoURI)
	models, err := mongo.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	got := readmodeltest.Models{Directory: models.Directory, Slots: models.Slots, Appointments: models.Appointments, Dashboards: models.Appointments}
	var ids []string
	for _, p := range patients {
		ids = append(ids, p.id)
	}
	mu.Lock()
	probe := readmodeltest.Probe{
		DoctorIDs: doctors, PatientIDs: ids, AppointmentIDs: apptIDs,
		From: doctor.DateOf(testenv.At(0, 12, 0).In(testenv.IST)), Days: 6, Now: e.Clock.Now(), PageSize: 25,
	}
	mu.Unlock()
	readmodeltest.SameSnapshot(t, fmt.Sprintf("MongoDB read models after 20 projector kills (%d bookings)", booked.Load()),
		readmodeltest.Snapshot(ctx, t, got, probe), readmodeltest.Snapshot(ctx, t, fresh, probe))

	// The cache the api serves through was invalidated across the kills.
	rc := testenv.RedisClient(t, o.RedisURL)
	cache, err := rediscache.New(rediscache.Config{Client: rc, Directory: models.Directory, Slots: models.Slots, SlotsPosition: models.Slots.Checkpoint})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range doctors {
		c, err := cache.FreeSlotsJSON(ctx, id, probe.From, probe.Days, probe.Now)
		if err != nil {
			t.Fatal(err)
		}
		want, err := slots.FreeSlotsJSON(ctx, id, probe.From, probe.Days, probe.Now)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c, want) {
			t.Errorf("cached free slots of %s differ from a fresh rebuild:\n got %s\nwant %s", id, c, want)
		}
	}
	t.Logf("%d bookings (%d cancels/reschedules answered 503 while the projector was down), 20 projector kills, read models equal a fresh rebuild", booked.Load(), notCaughtUp.Load())
}

// replay applies the whole log to ps, as a rebuild does.
func replay(t *testing.T, e *testenv.Env, ps ...projections.Projection) {
	t.Helper()
	ctx := context.Background()
	for _, ev := range logEvents(t, e) {
		for _, p := range ps {
			if err := p.Apply(ctx, ev); err != nil {
				t.Fatalf("replay %s at %d: %v", p.Name(), ev.Position, err)
			}
		}
	}
}

func mongoDatabase(t *testing.T, uri string) *mongodriver.Database {
	t.Helper()
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		t.Fatal(err)
	}
	client, err := mongodriver.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client.Database(cs.Database)
}
