package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/prescripto/prescripto/internal/testenv"
	"github.com/prescripto/prescripto/workers/notify"
)

// mailbox keeps the mails the engine sends (they leave the system: what a
// recipient's mailbox holds is beyond erasure).
type mailbox struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (m *mailbox) Send(_ context.Context, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

// all is every mail sent so far.
func (m *mailbox) all() []notify.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.msgs)
}

func (m *mailbox) to(addr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, msg := range m.msgs {
		if msg.To == addr {
			n++
		}
	}
	return n
}

// TestErasure: a patient's personal data is sealed with their own key; an
// admin's erasure shreds the key. Afterwards every read model (also
// rebuilt from the start of the log), the export and the whole data dir
// (and, on the production wiring, the whole MongoDB database) hold nothing
// readable of the patient, while ids, times, amounts and the log stay.
func TestErasure(t *testing.T) {
	t.Parallel()
	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		erasure(t, testenv.Options{})
	})
	t.Run("production", func(t *testing.T) {
		t.Parallel()
		erasure(t, testenv.Options{Production: true})
	})
}

func erasure(t *testing.T, o testenv.Options) {
	box := &mailbox{}
	o.Mailer = box
	e := testenv.Start(t, o)
	d := e.NewDoctor(t, "Dr. Erasure Witness", "Dermatologist")
	// Values unlikely to appear anywhere by chance.
	name := "Zephyrine Quillfeather"
	email := e.Unique("zephyrine") + "@example.test"
	address := "17 Marigold Quayside Lane"
	phone := "+91 80 7711 2299"
	reason := "my knee feels better, xylophone"
	secrets := []string{name, email, address, phone, reason}

	r := e.Post(t, "/auth/register", "", map[string]string{"name": name, "email": email, "password": testenv.Password}).Must(t, http.StatusCreated)
	var p testenv.AuthResult
	r.Decode(t, &p)
	e.Patch(t, "/me", p.Token, map[string]string{"address": address, "phone": phone}).Must(t, http.StatusOK)
	a1 := e.MustBook(t, p.Token, d.ID, testenv.At(1, 10, 0))
	a2 := e.MustBook(t, p.Token, d.ID, testenv.At(1, 10, 30))
	e.Post(t, "/appointments/"+a2.ID+"/cancel", p.Token, map[string]string{"reason": reason}).Must(t, http.StatusOK)
	other := e.Register(t, "Ordinary Patient") // someone else's data stays
	e.MustBook(t, other.Token, d.ID, testenv.At(1, 11, 0))
	e.CaughtUp(t)

	// The export: everything held about the caller, secrets left out.
	var ex struct {
		Profile struct {
			Name, Email, Address, Phone string
		}
		Appointments []struct {
			ID, PatientName, CancelReason, Status string
		}
		Payments       []json.RawMessage
		Mails          []struct{ To, Subject string }
		AccountHistory []struct {
			Type string
			Data json.RawMessage
		}
	}
	r = e.Get(t, "/me/export", p.Token).Must(t, http.StatusOK)
	r.Decode(t, &ex)
	if ex.Profile.Name != name || ex.Profile.Email != email || ex.Profile.Address != address || ex.Profile.Phone != phone {
		t.Errorf("export profile = %+v", ex.Profile)
	}
	if len(ex.Appointments) != 2 {
		t.Fatalf("export has %d appointments, want 2: %s", len(ex.Appointments), r.Body)
	}
	reasons := 0
	for _, ap := range ex.Appointments {
		if ap.PatientName != name {
			t.Errorf("exported appointment %s names %q", ap.ID, ap.PatientName)
		}
		if ap.CancelReason == reason {
			reasons++
		}
	}
	if reasons != 1 || len(ex.AccountHistory) < 2 || ex.AccountHistory[0].Type != "account.Registered.v1" {
		t.Errorf("export: %d reasons, history %+v", reasons, ex.AccountHistory)
	}
	if bytes.Contains(r.Body, []byte("$2a$")) || !bytes.Contains(r.Body, []byte(`"passwordHash":"[secret]"`)) {
		t.Errorf("the export hands out the password hash: %s", r.Body)
	}
	e.CaughtUp(t)
	// (Embedded only: the emulated EventStoreDB stamps events with the real
	// clock while the engine's runs years ahead, so the worker takes every
	// fact for old news and mails none.)
	for wait := time.Now().Add(10 * time.Second); !o.Production && len(ex.Mails) == 0 && time.Now().Before(wait); {
		// the mails may still be on their way: ask again once delivered
		time.Sleep(100 * time.Millisecond)
		e.Get(t, "/me/export", p.Token).Must(t, http.StatusOK).Decode(t, &ex)
	}
	if !o.Production && (len(ex.Mails) == 0 || ex.Mails[0].To != email) {
		t.Errorf("the export lists no mail sent to the patient: %+v (the mailer got %d)", ex.Mails, box.to(email))
	}
	e.Get(t, "/me/export", d.Token).CheckProblem(t, http.StatusForbidden, "forbidden")
	e.Get(t, "/me/export", "").CheckProblem(t, http.StatusUnauthorized, "")

	// Only admins erase, only patients are erased.
	e.Post(t, "/admin/patients/"+p.User.ID+"/erase", p.Token, nil).CheckProblem(t, http.StatusForbidden, "forbidden")
	e.Post(t, "/admin/patients/"+d.ID+"/erase", e.AdminToken, nil).CheckProblem(t, http.StatusNotFound, "account_not_found")
	e.Post(t, "/admin/patients/no-such-patient/erase", e.AdminToken, nil).CheckProblem(t, http.StatusNotFound, "account_not_found")
	mailsBefore := box.to(email)

	head := e.Head(t)
	var erased struct {
		ID, Name, Email string
		Active, Erased  bool
	}
	e.Post(t, "/admin/patients/"+p.User.ID+"/erase", e.AdminToken, nil).Must(t, http.StatusOK).Decode(t, &erased)
	if erased.ID != p.User.ID || erased.Name != "[erased]" || erased.Email != "[erased]" || erased.Active || !erased.Erased {
		t.Errorf("erase answered %+v", erased)
	}
	if e.Head(t) <= head {
		t.Error("the erasure appended nothing")
	}
	// Again: nothing more to do, the same answer.
	head = e.Head(t)
	e.Post(t, "/admin/patients/"+p.User.ID+"/erase", e.AdminToken, nil).Must(t, http.StatusOK)
	if e.Head(t) != head {
		t.Error("a second erasure appended events")
	}
	// The account is closed for good: its token stops, it cannot log in
	// or be activated again.
	e.Get(t, "/me", p.Token).CheckProblem(t, http.StatusUnauthorized, "")
	e.Post(t, "/auth/login", "", map[string]string{"email": email, "password": testenv.Password}).CheckProblem(t, http.StatusUnauthorized, "invalid_credentials")
	e.Post(t, "/admin/users/"+p.User.ID+"/activate", e.AdminToken, nil).CheckProblem(t, http.StatusConflict, "account_erased")

	// Bookings stay in the history, as "[erased]"; others' data stays.
	checkModels := func(when string) {
		t.Helper()
		var page struct {
			Appointments []struct {
				ID, PatientID, PatientName, CancelReason, Status string
				Start                                            time.Time
				Fees                                             int64
			}
		}
		e.Get(t, "/appointments?doctorId="+d.ID, e.AdminToken).Must(t, http.StatusOK).Decode(t, &page)
		seen := 0
		for _, ap := range page.Appointments {
			switch ap.PatientID {
			case p.User.ID:
				seen++
				if ap.PatientName != "[erased]" || (ap.CancelReason != "" && ap.CancelReason != "[erased]") {
					t.Errorf("%s: appointment %s shows %q / %q", when, ap.ID, ap.PatientName, ap.CancelReason)
				}
				if ap.Start.IsZero() || ap.Fees == 0 || ap.Status == "" {
					t.Errorf("%s: appointment %s lost its facts: %+v", when, ap.ID, ap)
				}
			case other.User.ID:
				if ap.PatientName != "Ordinary Patient" {
					t.Errorf("%s: another patient's name reads %q", when, ap.PatientName)
				}
			}
		}
		if seen != 2 {
			t.Errorf("%s: %d of the erased patient's appointments listed, want 2", when, seen)
		}
		var one struct{ PatientName string }
		e.Get(t, "/appointments/"+a1.ID, e.AdminToken).Must(t, http.StatusOK).Decode(t, &one)
		if one.PatientName != "[erased]" {
			t.Errorf("%s: GET /appointments/%s names %q", when, a1.ID, one.PatientName)
		}
	}
	e.CaughtUp(t)
	checkModels("after the erasure")

	// Rebuilt from the start of the log, every read model still shows
	// nothing: the log holds only ciphertext whose key is gone.
	var st struct {
		Projections []struct{ Name, Status string }
	}
	e.Get(t, "/admin/projections", e.AdminToken).Must(t, http.StatusOK).Decode(t, &st)
	for _, pr := range st.Projections {
		if pr.Name == "notifications" || pr.Name == "payments" {
			continue // workers: rebuilding them would replay their effects' bookkeeping only
		}
		e.Post(t, "/admin/projections/"+pr.Name+"/rebuild", e.AdminToken, nil).Must(t, http.StatusAccepted)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.Get(t, "/admin/projections", e.AdminToken).Must(t, http.StatusOK).Decode(t, &st)
		busy := false
		for _, pr := range st.Projections {
			busy = busy || pr.Status == "rebuilding"
		}
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rebuilds did not finish within 30 s: %+v", st.Projections)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.CaughtUp(t)
	checkModels("after rebuilding every projection")

	// A booking made by someone else later mails nobody at the old address.
	e.MustBook(t, other.Token, d.ID, testenv.At(2, 11, 0))
	e.CaughtUp(t)
	if n := box.to(email); n != mailsBefore {
		t.Errorf("%d mails sent to the erased address after the erasure", n-mailsBefore)
	}

	// Nothing readable in the data dir (the event store, the keys, every
	// file the engine keeps) ...
	for _, s := range secrets {
		for _, hit := range grepDir(t, e.DataDir, s) {
			t.Errorf("%q is readable in %s", s, hit)
		}
	}
	// ... nor in the MongoDB database.
	if o.Production {
		db := mongoDatabase(t, e.Options().MongoURI)
		names, err := db.ListCollectionNames(context.Background(), bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range names {
			cur, err := db.Collection(c).Find(context.Background(), bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			var docs []bson.Raw
			if err := cur.All(context.Background(), &docs); err != nil {
				t.Fatal(err)
			}
			for _, doc := range docs {
				for _, s := range secrets {
					if bytes.Contains(doc, []byte(s)) {
						t.Errorf("%q is readable in MongoDB collection %s: %s", s, c, doc)
					}
				}
			}
		}
	}
}

// grepDir returns the files under dir whose bytes contain s (also
// lower-cased, as emails are stored).
func grepDir(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) || bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(s))) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}
