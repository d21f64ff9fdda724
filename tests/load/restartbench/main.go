// Command restartbench measures how long the embedded default takes to
// restart on a long log (docs/performance.md, "Restart").
//
//	restartbench gen -data DIR -events 1000000
//
// builds a log of at least -events events in DIR through the real command
// handler (the same wiring as `prescripto serve`: SQLite store, sealed
// personal data, ledger streams): -doctors doctors with a year of
// 15-minute slots, -patients patients, bookings spread over the doctors and
// the calendar, a third of them paid (order + capture), one in ten
// cancelled with a reason, one in twenty rescheduled, and a few patients
// erased at the end.
//
//	restartbench measure -bin PRESCRIPTO -data DIR -runs 3 [-fresh]
//
// starts `PRESCRIPTO serve` on DIR -runs times and reports, per run, the
// time from the process's start to the first /readyz 200, its VmRSS then,
// and the time a SIGTERM takes to stop it (the read models save their
// state then). With -fresh the saved states (DIR/readmodels) are deleted
// before each start, so every start replays the whole log (the "before").
// Between the runs the log does not change, so after the first run the
// saved states are current: the tail is empty. -tail N appends N booking
// events with the server stopped (through gen's code) before each start,
// to measure the cost of a tail.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/internal/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: restartbench gen|measure [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "measure":
		err = measure(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "restartbench:", err)
		os.Exit(1)
	}
}

type genConfig struct {
	data              string
	events            uint64
	doctors, patients int
	workers           int
	seed              uint64
	density           float64
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	var c genConfig
	fs.StringVar(&c.data, "data", "", "data dir (created)")
	fs.Uint64Var(&c.events, "events", 1_000_000, "events to reach at least")
	fs.IntVar(&c.doctors, "doctors", 200, "doctors")
	fs.IntVar(&c.patients, "patients", 20_000, "patients")
	fs.IntVar(&c.workers, "workers", 32, "concurrent command goroutines")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed")
	fs.Float64Var(&c.density, "density", 0.2, "share of the slots booked")
	_ = fs.Parse(args)
	if c.data == "" {
		return errors.New("-data is required")
	}
	ctx := context.Background()
	// The history runs in the past, a booking day by booking day (see
	// clock), and ends a few days ago, as a real log's would: the
	// notifications worker takes its facts for old news (notify.MaxAge)
	// and mails none, as it would on a restart.
	perDay := float64(c.doctors*32) * c.density
	days := int(float64(c.events)/2.9/perDay) + 3
	g := &generator{cfg: c, start: time.Now(), base: doctor.DateOf(time.Now().UTC()).AddDays(-days - 5), day: make([]atomic.Int64, c.workers)}
	a, err := app.New(ctx, app.Options{
		DataDir: c.data, JWTSecret: []byte("restartbench-restartbench-restartbench"), BcryptCost: 4,
		Logger: zerolog.Nop(), MaxLiveBookings: -1, Payments: app.PaymentOptions{Sandbox: true}, Now: g.clock,
	})
	if err != nil {
		return err
	}
	defer a.Close()
	g.h, g.app = a.Commands, a
	return g.run(ctx)
}

type generator struct {
	cfg     genConfig
	h       *commands.Handler
	app     *app.App
	start   time.Time
	doctors []string
	pats    []string
	names   []string
	failed  atomic.Int64
	// base is the first booking day's eve; day[w] the day worker w books.
	base    doctor.Date
	day     []atomic.Int64
	lastDay atomic.Int64
}

// clock is the engine's time: noon of the eve of the day the slowest
// worker books, so every booking is a day or more ahead.
func (g *generator) clock() time.Time {
	low := int64(1 << 40)
	for i := range g.day {
		low = min(low, g.day[i].Load())
	}
	if low == 1<<40 { // every worker is done
		low = g.lastDay.Load()
	}
	g.lastDay.Store(low)
	return g.base.AddDays(int(low)).StartIn(time.UTC).Add(12 * time.Hour)
}

var sys = commands.Meta{Actor: domain.System, CorrelationID: "restartbench"}

func (g *generator) run(ctx context.Context) error {
	head, err := g.app.Store.HeadPosition(ctx)
	if err != nil {
		return err
	}
	if head > 0 {
		return fmt.Errorf("%s holds a log already (head %d): use a new dir", g.cfg.data, head)
	}
	first := g.base.AddDays(1)
	if err := g.setup(ctx); err != nil {
		return err
	}
	// Each worker books the doctors d with d % workers == its number, day
	// by day over the calendar, so workers never contend for a stream.
	var wg sync.WaitGroup
	var done atomic.Bool
	errs := make(chan error, g.cfg.workers)
	for w := range g.cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.work(ctx, w, first, &done); err != nil {
				errs <- err
				done.Store(true)
			}
		}()
	}
	go func() {
		for !done.Load() {
			time.Sleep(2 * time.Second)
			h, err := g.app.Store.HeadPosition(ctx)
			if err != nil {
				continue
			}
			fmt.Fprintf(os.Stderr, "%s: %d events (%.0f/s), %d refused\n", time.Since(g.start).Round(time.Second), h, float64(h)/time.Since(g.start).Seconds(), g.failed.Load())
			if h >= g.cfg.events {
				done.Store(true)
			}
		}
	}()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	// A few erasures at the end: their names must read "[erased]" after a
	// restart from any saved state.
	for i := 0; i < len(g.pats); i += 1000 {
		if _, err := g.h.ErasePatient(ctx, commands.Meta{Actor: domain.Actor{UserID: "restartbench-admin", Role: domain.RoleAdmin}}, g.pats[i]); err != nil {
			return fmt.Errorf("erase: %w", err)
		}
	}
	head, _ = g.app.Store.HeadPosition(ctx)
	fmt.Printf("log: %d events in %s (%d refused commands)\n", head, time.Since(g.start).Round(time.Second), g.failed.Load())
	return nil
}

func (g *generator) setup(ctx context.Context) error {
	specs := []string{"General physician", "Gynecologist", "Dermatologist", "Pediatricians", "Neurologist", "Gastroenterologist"}
	for i := range g.cfg.doctors {
		s := doctor.Schedule{Timezone: "Asia/Kolkata", SlotMinutes: 15, BookingWindowDays: doctor.MaxBookingWindowDays, MinNoticeMinutes: 0,
			PaymentPolicy: doctor.PaymentOptional, RefundCutoffHours: doctor.DefaultRefundCutoffHours}
		for wd := 1; wd <= 7; wd++ {
			s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "09:00", End: "17:00"})
		}
		r, err := g.h.RegisterDoctor(ctx, sys, commands.RegisterDoctor{
			Profile: doctor.Profile{Name: fmt.Sprintf("Dr. Bench %03d", i), Speciality: specs[i%len(specs)], Degree: "MBBS", ExperienceYears: 1 + i%30,
				About: "Generated by restartbench.", Fees: int64(30000 + 1000*(i%20)), Currency: "INR", Address: "Richmond Circle, Bengaluru", Available: true},
			Email: fmt.Sprintf("bench-doctor-%03d@restartbench.test", i), Password: "bench-doctor-password", Schedule: &s,
		})
		if err != nil {
			return fmt.Errorf("doctor %d: %w", i, err)
		}
		g.doctors = append(g.doctors, r.ID)
	}
	g.pats = make([]string, g.cfg.patients)
	g.names = make([]string, g.cfg.patients)
	var next atomic.Int64
	var wg sync.WaitGroup
	var first error
	var mu sync.Mutex
	for range g.cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < g.cfg.patients; i = int(next.Add(1) - 1) {
				name := fmt.Sprintf("Patient %05d Benchmark", i)
				r, err := g.h.RegisterPatient(ctx, sys, name, fmt.Sprintf("bench-patient-%05d@restartbench.test", i), "bench-patient-password")
				if err != nil {
					mu.Lock()
					first = cmpOr(first, err)
					mu.Unlock()
					return
				}
				g.pats[i], g.names[i] = r.ID, name
			}
		}()
	}
	wg.Wait()
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// work books the worker's doctors, slot after slot.
func (g *generator) work(ctx context.Context, w int, first doctor.Date, done *atomic.Bool) error {
	rng := rand.New(rand.NewPCG(g.cfg.seed, uint64(w)))
	var mine []string
	for i, id := range g.doctors {
		if i%g.cfg.workers == w {
			mine = append(mine, id)
		}
	}
	if len(mine) == 0 {
		g.day[w].Store(1 << 40)
		return nil
	}
	loc, _ := time.LoadLocation("Asia/Kolkata")
	const perDay = 32 // 09:00-17:00 in 15-minute slots
	for day := 0; ; day++ {
		g.day[w].Store(int64(day))
		for slot := range perDay {
			for _, doc := range mine {
				if done.Load() {
					g.day[w].Store(1 << 40) // out of the clock's way
					return nil
				}
				if rng.Float64() >= g.cfg.density {
					continue
				}
				if err := g.book(ctx, rng, doc, first.AddDays(day).StartIn(loc).Add(time.Duration(9*60+15*slot)*time.Minute), day); err != nil {
					return err
				}
			}
		}
	}
}

// book books one slot and follows it with what happens to a booking: a
// payment, a cancellation, a reschedule.
func (g *generator) book(ctx context.Context, rng *rand.Rand, doc string, start time.Time, day int) error {
	p := rng.IntN(len(g.pats))
	m := commands.Meta{Actor: domain.Actor{UserID: g.pats[p], Role: domain.RolePatient}, CorrelationID: "restartbench"}
	r, err := g.h.ReserveSlot(ctx, m, commands.ReserveSlot{DoctorID: doc, Start: start, PatientName: g.names[p]})
	if err != nil {
		return g.refused(err)
	}
	id := r.Appointment.ID
	if rng.IntN(3) == 0 {
		order := "order_" + strings.ReplaceAll(id, "-", "")[:14]
		amount := r.Appointment.Fees
		if _, err := g.h.CreatePaymentOrder(ctx, sys, commands.CreatePaymentOrder{DoctorID: doc, AppointmentID: id, Order: doctor.Order{ID: order, Amount: amount, Currency: "INR"}}); err != nil {
			return g.refused(err)
		}
		if _, err := g.h.CapturePayment(ctx, sys, commands.CapturePayment{DoctorID: doc, AppointmentID: id, PaymentID: "pay_" + order[6:], OrderID: order, Amount: amount, Currency: "INR"}); err != nil {
			return g.refused(err)
		}
	}
	switch n := rng.IntN(20); {
	case n < 2:
		if _, err := g.h.CancelAppointment(ctx, m, commands.CancelAppointment{DoctorID: doc, AppointmentID: id, Reason: "cannot come, sorry " + strconv.Itoa(rng.IntN(100))}); err != nil {
			return g.refused(err)
		}
	case n == 2 && day > 0: // to the same time a day later if free
		if _, err := g.h.RescheduleAppointment(ctx, m, commands.RescheduleAppointment{DoctorID: doc, AppointmentID: id, Start: start.AddDate(0, 0, -1)}); err != nil {
			return g.refused(err)
		}
	}
	return nil
}

// refused counts a command the domain refused (a slot taken by a
// reschedule, say); anything else stops the generator.
func (g *generator) refused(err error) error {
	var de *domain.Error
	if errors.As(err, &de) && !errors.Is(err, domain.ErrUnavailable) {
		g.failed.Add(1)
		return nil
	}
	return err
}

func measure(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	bin := fs.String("bin", "", "the prescripto binary")
	data := fs.String("data", "", "the data dir (from gen)")
	runs := fs.Int("runs", 3, "starts")
	fresh := fs.Bool("fresh", false, "delete the saved read-model states before each start (full replay)")
	out := fs.String("out", "", "append the results as JSON lines to this file")
	heap := fs.String("heap", "", "write a heap profile taken when ready to this file (the last run's)")
	cpu := fs.String("cpuprofile", "", "write a CPU profile of the start's first -cpuseconds to this file (the last run's)")
	cpuSeconds := fs.Int("cpuseconds", 5, "how long -cpuprofile profiles, from the pprof listener's start")
	_ = fs.Parse(args)
	if *bin == "" || *data == "" {
		return errors.New("-bin and -data are required")
	}
	var ready []time.Duration
	for i := range *runs {
		if *fresh {
			if err := os.RemoveAll(filepath.Join(*data, app.ReadModelsDir)); err != nil {
				return err
			}
		}
		r, err := startOnce(*bin, *data, *heap, *cpu, *cpuSeconds)
		if err != nil {
			return err
		}
		ready = append(ready, r.Ready)
		line, _ := json.Marshal(r)
		fmt.Printf("run %d: %s\n", i+1, line)
		if *out != "" {
			f, err := os.OpenFile(*out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err == nil {
				fmt.Fprintf(f, "%s\n", line)
				f.Close()
			}
		}
	}
	slices.Sort(ready)
	fmt.Printf("median ready: %s (fresh=%v, %d runs)\n", ready[len(ready)/2].Round(time.Millisecond), *fresh, *runs)
	return nil
}

type result struct {
	Fresh  bool          `json:"fresh"`
	Ready  time.Duration `json:"readyNs"`
	ReadyS float64       `json:"readySeconds"`
	RSSKiB int64         `json:"rssKiB"`
	// CPUS is the CPU time (user + system) the server spent until ready:
	// on a shared machine, steadier than the wall time.
	CPUS float64 `json:"cpuSeconds"`
	// RSSAfterGCKiB: after the heap profile's forced collection.
	RSSAfterGCKiB int64   `json:"rssAfterGCKiB,omitempty"`
	StopS         float64 `json:"stopSeconds"`
	StateSize     int64   `json:"stateBytes"`
	// StateFiles: each saved state's size after the stop, by model.
	StateFiles map[string]int64 `json:"stateFiles,omitempty"`
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startOnce(bin, data, heap, cpu string, cpuFor int) (result, error) {
	var r result
	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return r, err
	}
	_, statErr := os.Stat(filepath.Join(data, app.ReadModelsDir, "appointments.state"))
	r.Fresh = statErr != nil
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "PRESCRIPTO_ADDR="+addr, "PRESCRIPTO_DATA="+data, "LOG_LEVEL=info", "JWT_SECRET=restartbench-restartbench-restartbench", "PRESCRIPTO_PPROF_ADDR="+pprofAddr)
	logf, err := os.Create(filepath.Join(data, "..", "restartbench-server.log"))
	if err != nil {
		return r, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()
	client := &http.Client{Timeout: 2 * time.Second}
	cpuDone := make(chan error, 1)
	if cpu == "" {
		cpuDone <- nil
	} else {
		// The server's pprof listener comes up before it loads its read
		// models: profile from then on.
		go func() {
			for time.Since(start) < time.Minute {
				if res, err := client.Get("http://" + pprofAddr + "/debug/pprof/"); err == nil {
					res.Body.Close()
					cpuDone <- fetch(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, cpuFor), cpu)
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
			cpuDone <- errors.New("the pprof listener did not come up")
		}()
	}
	for {
		if time.Since(start) > 10*time.Minute {
			return r, errors.New("not ready within 10 minutes")
		}
		res, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Ready = time.Since(start)
	r.ReadyS = r.Ready.Seconds()
	r.RSSKiB = vmRSS(cmd.Process.Pid)
	r.CPUS = cpuSeconds(cmd.Process.Pid)
	if heap != "" {
		if err := fetch("http://"+pprofAddr+"/debug/pprof/heap?gc=1", heap); err != nil {
			return r, err
		}
		r.RSSAfterGCKiB = vmRSS(cmd.Process.Pid)
	}
	if err := <-cpuDone; err != nil {
		return r, fmt.Errorf("cpu profile: %w", err)
	}
	stop := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_, _ = cmd.Process.Wait()
	r.StopS = time.Since(stop).Seconds()
	if st, err := os.Stat(filepath.Join(data, app.ReadModelsDir, "appointments.state")); err == nil {
		r.StateSize = st.Size()
	}
	files, _ := filepath.Glob(filepath.Join(data, app.ReadModelsDir, "*.state"))
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			if r.StateFiles == nil {
				r.StateFiles = map[string]int64{}
			}
			r.StateFiles[strings.TrimSuffix(filepath.Base(f), ".state")] = st.Size()
		}
	}
	return r, nil
}

func fetch(url, file string) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, res.Body)
	return err
}

// cpuSeconds is utime + stime of pid (clock ticks of 1/100 s).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
