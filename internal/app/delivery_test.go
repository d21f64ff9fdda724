package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/workers/notify"
)

// Every event reaches every projection and worker twice (Watermill's
// Duplicator), and one handling in twenty fails and is redelivered
// (RandomFail, after the Duplicator, so an event applied once also comes
// again after a failure): the read models, the mails and the payment
// provider's refunds end exactly as after one clean delivery of each event.
// "Clean" is a second engine started on a copy of the data dir without the
// middleware (fresh read models and a fresh mail outbox, folded once from
// the same log), and, for the payments, what the scenario asked for.
func TestDuplicatedAndFailingDeliveries(t *testing.T) {
	t.Parallel()
	var handled, failed atomic.Int64
	count := func(h message.HandlerFunc) message.HandlerFunc {
		return func(m *message.Message) ([]*message.Message, error) {
			handled.Add(1)
			out, err := h(m)
			if err != nil {
				failed.Add(1)
			}
			return out, err
		}
	}
	chaos := []message.HandlerMiddleware{middleware.Duplicator, count, middleware.RandomFail(0.05)}
	dir := t.TempDir()
	chaosMail := &mailbox{}
	r := newPayRig(t, testenv.Options{DataDir: dir, Mailer: chaosMail, RunnerMiddleware: chaos})
	refunded := deliveryScenario(t, r)
	for _, a := range refunded {
		r.await(t, a.token, a.id, "refund", func(a testenv.Appointment) bool { return a.Payment.Status == "refunded" })
	}
	r.CaughtUp(t)
	awaitMailsSent(t, r.Env)
	want := readModelAnswers(t, r)
	head := r.Head(t)
	if handled.Load() < 2*int64(head) || failed.Load() == 0 {
		t.Fatalf("the middleware ran %d handlings (%d failed) for %d events: it is not in the path", handled.Load(), failed.Load(), head)
	}
	refunds := r.Razorpay.RefundCount()
	if refunds != len(refunded) {
		t.Errorf("the payment provider made %d refunds; the scenario asked for %d", refunds, len(refunded))
	}
	chaosMails := chaosMail.all()
	if ids := duplicateIDs(chaosMails); len(ids) > 0 {
		t.Errorf("mails sent more than once: %v", ids)
	}

	// The same log, folded once, without the middleware.
	r.Stop()
	clean := t.TempDir()
	copyDataDir(t, dir, clean)
	o := r.Options()
	o.DataDir, o.RunnerMiddleware = clean, nil
	cleanMail := &mailbox{}
	o.Mailer = cleanMail
	e2 := testenv.Start(t, o)
	e2.CaughtUp(t)
	awaitMailsSent(t, e2)
	got := readModelAnswers(t, &payRig{Env: e2, required: r.required, optional: r.optional, patient: r.patient})
	for _, k := range sortedKeys(want) {
		if !bytes.Equal(want[k], got[k]) {
			t.Errorf("%s differs from a clean fold of the log:\nunder faults: %s\nclean:        %s", k, want[k], got[k])
		}
	}
	if n := r.Razorpay.RefundCount(); n != refunds {
		t.Errorf("the clean engine made %d more refunds", n-refunds)
	}
	a, b := mailKeys(chaosMails), mailKeys(cleanMail.all())
	if !slices.Equal(a, b) {
		t.Errorf("mails under faults differ from a clean run's:\nunder faults (%d): %v\nclean (%d):        %v", len(a), a, len(b), b)
	}
	if len(a) == 0 {
		t.Error("no mail was sent: the comparison proves nothing")
	}
	t.Logf("%d events, %d handlings (%d failed): %d read-model answers, %d mails, %d refunds identical to a clean run",
		head, handled.Load(), failed.Load(), len(want), len(a), refunds)
}

// On the production wiring (read models in MongoDB, applied in batches;
// Redis Streams between the forwarder and the handlers), under the same
// faults, the read models equal a rebuild of each from the log (a rebuild
// reads the log itself, outside the router and its middleware), and the
// payment provider made exactly the refunds asked for. (Mails: see the
// test above; this wiring's emulated event store stamps the wall clock,
// older than the mail worker's horizon on the test clock.)
func TestDuplicatedAndFailingDeliveriesProduction(t *testing.T) {
	t.Parallel()
	chaos := []message.HandlerMiddleware{middleware.Duplicator, middleware.RandomFail(0.05)}
	r := newPayRig(t, testenv.Options{Production: true, RunnerMiddleware: chaos})
	refunded := deliveryScenario(t, r)
	for _, a := range refunded {
		r.await(t, a.token, a.id, "refund", func(a testenv.Appointment) bool { return a.Payment.Status == "refunded" })
	}
	r.CaughtUp(t)
	want := readModelAnswers(t, r)
	if n := r.Razorpay.RefundCount(); n != len(refunded) {
		t.Errorf("the payment provider made %d refunds; the scenario asked for %d", n, len(refunded))
	}
	var st struct{ Projections []struct{ Name string } }
	r.Get(t, "/admin/projections", r.AdminToken).Must(t, http.StatusOK).Decode(t, &st)
	rebuilt := 0
	for _, p := range st.Projections {
		if p.Name == "doctors" || p.Name == "free_slots" || p.Name == "appointments" {
			r.Post(t, "/admin/projections/"+p.Name+"/rebuild", r.AdminToken, nil).Must(t, http.StatusAccepted)
			waitProjectionsRunning(t, r.Env)
			rebuilt++
		}
	}
	if rebuilt != 3 {
		t.Fatalf("rebuilt %d of the 3 read models (%+v)", rebuilt, st.Projections)
	}
	got := readModelAnswers(t, r)
	for _, k := range sortedKeys(want) {
		if !bytes.Equal(want[k], got[k]) {
			t.Errorf("%s differs from a rebuild from the log:\nunder faults: %s\nrebuilt:      %s", k, want[k], got[k])
		}
	}
}

// deliveryScenario books, pays, reschedules and cancels through the API
// (bookings with a required payment, paid and refunded; optional ones paid
// or not; a doctor's time off cancelling bookings), and returns the
// appointments whose payment must end refunded.
func deliveryScenario(t *testing.T, r *payRig) (refunded []patientAppointment) {
	t.Helper()
	patients := []testenv.AuthResult{r.patient, r.Register(t, "Dev Duplicate"), r.Register(t, "Fay Failing")}
	pay := func(token, id string) {
		_, o := r.order(t, token, id)
		c, err := r.Razorpay.Pay(o.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		r.verify(t, token, c).Must(t, http.StatusOK)
	}
	cancel := func(token, id string) {
		r.Post(t, "/appointments/"+id+"/cancel", token, map[string]string{"reason": "plans changed"}).Must(t, http.StatusOK)
	}
	for i, p := range patients {
		day := 2 + i
		// Required payment: paid, then one cancelled (refund), one rescheduled.
		a := r.MustBook(t, p.Token, r.required.ID, testenv.At(day, 10, 0))
		pay(p.Token, a.ID)
		b := r.MustBook(t, p.Token, r.required.ID, testenv.At(day, 11, 0))
		pay(p.Token, b.ID)
		cancel(p.Token, a.ID)
		refunded = append(refunded, patientAppointment{p.Token, a.ID})
		r.Post(t, "/appointments/"+b.ID+"/reschedule", p.Token, map[string]string{"start": testenv.RFC3339(testenv.At(day, 12, 0))}).Must(t, http.StatusOK)
		// Optional payment: one paid, one not, one cancelled by the doctor.
		c := r.MustBook(t, p.Token, r.optional.ID, testenv.At(day, 10, 0))
		pay(p.Token, c.ID)
		r.MustBook(t, p.Token, r.optional.ID, testenv.At(day, 11, 0))
		d := r.MustBook(t, p.Token, r.optional.ID, testenv.At(day, 13, 0))
		cancel(r.optional.Token, d.ID)
		// A paid booking on the day the required doctor takes off.
		f := r.MustBook(t, p.Token, r.required.ID, testenv.At(9, 10+i, 0))
		pay(p.Token, f.ID)
		refunded = append(refunded, patientAppointment{p.Token, f.ID})
	}
	r.Post(t, "/doctors/"+r.required.ID+"/time-off", r.required.Token, map[string]any{
		"from": testenv.RFC3339(testenv.At(9, 0, 0)), "to": testenv.RFC3339(testenv.At(10, 0, 0)),
		"reason": "conference", "cancelBookings": true,
	}).Must(t, http.StatusCreated)
	return refunded
}

// patientAppointment is an appointment and its patient's token.
type patientAppointment struct{ token, id string }

// readModelAnswers are the API's answers from every read model, as the
// admin, the doctors and a patient read them at the log's head.
func readModelAnswers(t *testing.T, r *payRig) map[string][]byte {
	t.Helper()
	head := r.Head(t)
	out := map[string][]byte{}
	get := func(who, path, token string) {
		res := r.Do(t, testenv.Req{Method: http.MethodGet, Path: path, Token: token, MinPosition: head}).Must(t, http.StatusOK)
		out[who+" GET "+path] = normalJSON(t, res.Body)
	}
	get("anyone", "/doctors", "")
	get("anyone", "/specialities", "")
	for _, d := range []testenv.DoctorLogin{r.required, r.optional} {
		get("anyone", "/doctors/"+d.ID, "")
		get("anyone", "/doctors/"+d.ID+"/slots?from="+testenv.Date(0)+"&days=14", "")
		get("doctor "+d.ID, "/appointments?limit=200", d.Token)
		get("doctor "+d.ID, "/doctor/dashboard", d.Token)
	}
	get("admin", "/appointments?limit=200", r.AdminToken)
	get("patient", "/appointments?limit=200", r.patient.Token)
	get("admin", "/admin/dashboard", r.AdminToken)
	get("admin", "/admin/payments", r.AdminToken)
	return out
}

// normalJSON re-encodes a JSON answer (indentation aside, it is compared
// byte for byte).
func normalJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// awaitMailsSent waits until the notifications worker has caught up and no
// mail is pending in its outbox.
func awaitMailsSent(t *testing.T, e *testenv.Env) {
	t.Helper()
	e.CaughtUp(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var l struct {
			Notifications []struct{ ID, Status string } `json:"notifications"`
		}
		e.Get(t, "/admin/notifications?status=pending&limit=200", e.AdminToken).Must(t, http.StatusOK).Decode(t, &l)
		if len(l.Notifications) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails still pending", len(l.Notifications))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func duplicateIDs(ms []notify.Message) []string {
	seen := map[string]int{}
	for _, m := range ms {
		seen[m.ID]++
	}
	var dup []string
	for id, n := range seen {
		if n > 1 {
			dup = append(dup, fmt.Sprintf("%s x%d", id, n))
		}
	}
	sort.Strings(dup)
	return dup
}

// mailKeys describe each mail by everything a recipient sees, sorted.
func mailKeys(ms []notify.Message) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, strings.Join([]string{m.ID, m.To, m.ToName, m.Subject, m.Date.UTC().Format(time.RFC3339Nano),
			m.Body, m.HTML, string(m.Calendar), m.CalendarMethod}, "\x00"))
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// copyDataDir copies a stopped engine's data dir without its mail state
// (the outbox and its checkpoint), so that a second engine folds the whole
// log into fresh read models and mails every fact once.
func copyDataDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if rel == "mail" || strings.HasSuffix(d.Name(), ".sock") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}
