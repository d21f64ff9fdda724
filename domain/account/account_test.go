package account_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
)

const accID = "acc-1"

var (
	now0 = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	ist  = time.FixedZone("IST", 5*3600+1800)
)

func registration() account.NewRegistration {
	return account.NewRegistration{Name: "Asha Rao", Email: "asha@example.com", PasswordHash: "$2a$10$hash", Role: domain.RolePatient}
}

func registered() account.Registered {
	return account.Registered{AccountID: accID, Name: "Asha Rao", Email: "asha@example.com", PasswordHash: "$2a$10$hash", Role: domain.RolePatient, RegisteredAt: now0}
}

func given(events ...domain.Event) *account.Account {
	a := account.New(accID)
	a.Load(events...)
	return a
}

type scenario struct {
	name  string
	given []domain.Event
	when  func(a *account.Account) error
	then  []domain.Event
	err   *domain.Error
	kind  error
	after func(t *testing.T, a *account.Account)
}

func run(t *testing.T, scenarios []scenario) {
	t.Helper()
	seen := map[string]bool{}
	for _, sc := range scenarios {
		if seen[sc.name] {
			t.Fatalf("duplicate scenario %q", sc.name)
		}
		seen[sc.name] = true
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			a := given(sc.given...)
			err := sc.when(a)
			got := a.Changes()
			if sc.err != nil {
				switch {
				case err == nil:
					t.Fatalf("want %s, got no error", sc.err.Code)
				case !errors.Is(err, sc.err):
					t.Errorf("error %v (code %q), want %s", err, domain.CodeOf(err), sc.err.Code)
				case sc.kind == nil || !errors.Is(err, sc.kind):
					t.Errorf("error %v: want kind %v", err, sc.kind)
				}
				if len(got) != 0 {
					t.Errorf("a refused command recorded %+v", got)
				}
			} else {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if !(len(got) == 0 && len(sc.then) == 0) && !reflect.DeepEqual(got, sc.then) {
					t.Errorf("events\n got %+v\nwant %+v", got, sc.then)
				}
			}
			// folding given + recorded rebuilds the same account
			f := given(append(append([]domain.Event(nil), sc.given...), got...)...)
			if f.Registered() != a.Registered() || f.Email() != a.Email() || f.Role() != a.Role() || f.DoctorID() != a.DoctorID() ||
				f.PasswordHash() != a.PasswordHash() || f.Profile() != a.Profile() || !f.CreatedAt().Equal(a.CreatedAt()) ||
				f.Active() != a.Active() || f.EmailVerified() != a.EmailVerified() || f.TokenVersion() != a.TokenVersion() ||
				!reflect.DeepEqual(f.RevokedTokens(), a.RevokedTokens()) {
				t.Errorf("refolded account differs")
			}
			if sc.after != nil {
				sc.after(t, a)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	t.Parallel()
	reg := func(mut func(*account.NewRegistration)) func(*account.Account) error {
		return func(a *account.Account) error {
			r := registration()
			mut(&r)
			return a.Register(r, now0.In(ist))
		}
	}
	scenarios := []scenario{
		{
			name: "a patient, normalized",
			when: reg(func(r *account.NewRegistration) { r.Name, r.Email = "  Asha Rao\t", "  Asha@Example.COM " }),
			then: []domain.Event{registered()},
			after: func(t *testing.T, a *account.Account) {
				if !a.Registered() || a.ID() != accID || a.Email() != "asha@example.com" || a.Role() != domain.RolePatient ||
					a.PasswordHash() != "$2a$10$hash" || a.Profile() != (account.Profile{Name: "Asha Rao"}) || !a.CreatedAt().Equal(now0) || a.DoctorID() != "" {
					t.Errorf("account = %+v", a)
				}
				if a.CreatedAt().Location() != time.UTC {
					t.Errorf("created at %v, want UTC", a.CreatedAt())
				}
				a.ClearChanges()
				if a.Changes() != nil {
					t.Error("ClearChanges left changes")
				}
			},
		},
		{
			name: "a doctor with its doctor id",
			when: reg(func(r *account.NewRegistration) { r.Role, r.DoctorID = domain.RoleDoctor, "doc-1" }),
			then: []domain.Event{func() domain.Event { e := registered(); e.Role, e.DoctorID = domain.RoleDoctor, "doc-1"; return e }()},
			after: func(t *testing.T, a *account.Account) {
				if a.DoctorID() != "doc-1" || a.Role() != domain.RoleDoctor {
					t.Errorf("account = %+v", a)
				}
			},
		},
		{name: "twice", given: []domain.Event{registered()}, when: reg(func(*account.NewRegistration) {}), err: account.ErrAccountExists, kind: domain.ErrConflict},
		{name: "name of 100", when: reg(func(r *account.NewRegistration) { r.Name = strings.Repeat("ä", 100) }),
			then: []domain.Event{func() domain.Event { e := registered(); e.Name = strings.Repeat("ä", 100); return e }()}},
	}
	for _, role := range []domain.Role{domain.RoleAdmin, domain.RoleAuditor, domain.RoleAnalyst} {
		scenarios = append(scenarios, scenario{
			name: "role " + string(role), when: reg(func(r *account.NewRegistration) { r.Role = role }),
			then: []domain.Event{func() domain.Event { e := registered(); e.Role = role; return e }()},
		})
	}
	for _, email := range []string{"a@b.co", "first.last+tag@sub.example.org", "x_y-z@example.co.in", "1@2.io"} {
		scenarios = append(scenarios, scenario{
			name: "email " + email, when: reg(func(r *account.NewRegistration) { r.Email = email }),
			then: []domain.Event{func() domain.Event { e := registered(); e.Email = email; return e }()},
		})
	}
	invalid := []struct {
		name string
		mut  func(*account.NewRegistration)
	}{
		{"empty name", func(r *account.NewRegistration) { r.Name = "" }},
		{"blank name", func(r *account.NewRegistration) { r.Name = " \t " }},
		{"name of 101", func(r *account.NewRegistration) { r.Name = strings.Repeat("n", 101) }},
		{"name not UTF-8", func(r *account.NewRegistration) { r.Name = "\xffAsha" }},
		{"empty email", func(r *account.NewRegistration) { r.Email = "" }},
		{"blank email", func(r *account.NewRegistration) { r.Email = "   " }},
		{"email of 2", func(r *account.NewRegistration) { r.Email = "a@" }},
		{"email without @", func(r *account.NewRegistration) { r.Email = "asha.example.com" }},
		{"email without local part", func(r *account.NewRegistration) { r.Email = "@example.com" }},
		{"email without domain", func(r *account.NewRegistration) { r.Email = "asha@" }},
		{"email with a dotless domain", func(r *account.NewRegistration) { r.Email = "asha@localhost" }},
		{"email with two @", func(r *account.NewRegistration) { r.Email = "a@b@example.com" }},
		{"email with a display name", func(r *account.NewRegistration) { r.Email = "Asha <asha@example.com>" }},
		{"email in angle brackets", func(r *account.NewRegistration) { r.Email = "<asha@example.com>" }},
		{"email with a space", func(r *account.NewRegistration) { r.Email = "asha rao@example.com" }},
		{"quoted local part", func(r *account.NewRegistration) { r.Email = `"asha rao"@example.com` }},
		{"two emails", func(r *account.NewRegistration) { r.Email = "a@example.com, b@example.com" }},
		{"email with a comment", func(r *account.NewRegistration) { r.Email = "asha@example.com (Asha)" }},
		{"email of 255", func(r *account.NewRegistration) { r.Email = strings.Repeat("a", 243) + "@example.com" }},
		{"no password hash", func(r *account.NewRegistration) { r.PasswordHash = "" }},
		{"empty role", func(r *account.NewRegistration) { r.Role = "" }},
		{"unknown role", func(r *account.NewRegistration) { r.Role = "superuser" }},
		{"system role", func(r *account.NewRegistration) { r.Role = domain.RoleSystem }},
		{"doctor without doctor id", func(r *account.NewRegistration) { r.Role = domain.RoleDoctor }},
	}
	for _, c := range invalid {
		scenarios = append(scenarios, scenario{name: "invalid: " + c.name, when: reg(c.mut), err: account.ErrInvalidAccount, kind: domain.ErrInvalid})
	}
	run(t, scenarios)
}

func TestUpdateProfile(t *testing.T) {
	t.Parallel()
	full := account.Profile{Name: "Asha R.", Phone: "+91 (80) 1234-5678", Address: "12 MG Road", Gender: "female", DOB: "1990-05-17"}
	upd := func(p account.Profile) func(*account.Account) error {
		return func(a *account.Account) error { return a.UpdateProfile(p) }
	}
	reg := []domain.Event{registered()}
	scenarios := []scenario{
		{name: "not registered", when: upd(full), err: account.ErrAccountNotFound, kind: domain.ErrNotFound},
		{
			name: "records the whole profile, trimmed", given: reg,
			when: upd(account.Profile{Name: " Asha R. ", Phone: " +91 (80) 1234-5678 ", Address: "\t12 MG Road", Gender: "female ", DOB: " 1990-05-17"}),
			then: []domain.Event{account.ProfileUpdated{AccountID: accID, Profile: full}},
			after: func(t *testing.T, a *account.Account) {
				if a.Profile() != full {
					t.Errorf("profile = %+v", a.Profile())
				}
			},
		},
		{name: "the registered name alone is a no-op", given: reg, when: upd(account.Profile{Name: "  Asha Rao "})},
		{name: "the same profile again is a no-op", given: []domain.Event{registered(), account.ProfileUpdated{AccountID: accID, Profile: full}}, when: upd(full)},
		{name: "clearing optional fields", given: []domain.Event{registered(), account.ProfileUpdated{AccountID: accID, Profile: full}},
			when: upd(account.Profile{Name: "Asha R."}), then: []domain.Event{account.ProfileUpdated{AccountID: accID, Profile: account.Profile{Name: "Asha R."}}}},
		{name: "an email claim does not change the account", given: []domain.Event{registered(), account.EmailClaimed{Email: "other@example.com", AccountID: "x", Role: domain.RoleAdmin}},
			when: upd(account.Profile{Name: "Asha Rao"})},
		{name: "phone of 32", given: reg, when: upd(account.Profile{Name: "A", Phone: strings.Repeat("9", 32)}),
			then: []domain.Event{account.ProfileUpdated{AccountID: accID, Profile: account.Profile{Name: "A", Phone: strings.Repeat("9", 32)}}}},
	}
	invalid := []struct {
		name string
		p    account.Profile
	}{
		{"empty name", account.Profile{Name: ""}},
		{"name of 101", account.Profile{Name: strings.Repeat("n", 101)}},
		{"phone of 33", account.Profile{Name: "A", Phone: strings.Repeat("9", 33)}},
		{"phone with letters", account.Profile{Name: "A", Phone: "call 555"}},
		{"phone with a dot", account.Profile{Name: "A", Phone: "555.1234"}},
		{"address of 301", account.Profile{Name: "A", Address: strings.Repeat("a", 301)}},
		{"gender of 33", account.Profile{Name: "A", Gender: strings.Repeat("g", 33)}},
		{"dob not a date", account.Profile{Name: "A", DOB: "17/05/1990"}},
		{"dob month 13", account.Profile{Name: "A", DOB: "1990-13-01"}},
		{"dob with time", account.Profile{Name: "A", DOB: "1990-05-17T00:00:00Z"}},
	}
	for _, c := range invalid {
		scenarios = append(scenarios, scenario{name: "invalid: " + c.name, given: reg, when: upd(c.p), err: account.ErrInvalidAccount, kind: domain.ErrInvalid})
	}
	run(t, scenarios)
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		pw   string
		ok   bool
	}{
		{"empty", "", false},
		{"7 bytes", "1234567", false},
		{"8 bytes", "12345678", true},
		{"72 bytes", strings.Repeat("p", 72), true},
		{"73 bytes", strings.Repeat("p", 73), false},
		{"4 runes, 8 bytes", "éééé", true},
		{"36 runes, 72 bytes", strings.Repeat("é", 36), true},
		{"37 runes, 74 bytes", strings.Repeat("é", 37), false},
		{"7 runes, 14 bytes counts bytes", "ééééééé", true},
		{"invalid UTF-8", "password\xff", false},
	} {
		err := account.ValidatePassword(c.pw)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && (!errors.Is(err, account.ErrWeakPassword) || !errors.Is(err, domain.ErrInvalid)) {
			t.Errorf("%s: %v, want weak_password", c.name, err)
		}
	}
}

func TestStreamIDs(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^email-[0-9a-f]{64}$`)
	id := account.LegacyEmailStreamID("asha@example.com")
	if !shape.MatchString(id) {
		t.Errorf("LegacyEmailStreamID = %q", id)
	}
	sum := sha256.Sum256([]byte("asha@example.com"))
	if want := "email-" + hex.EncodeToString(sum[:]); id != want {
		t.Errorf("LegacyEmailStreamID = %q, want %q", id, want)
	}
	if got := account.EmailStreamID(nil, "asha@example.com"); got != id {
		t.Errorf("EmailStreamID without a key = %q, want the legacy %q", got, id)
	}
	// Keyed: an HMAC under the server's key, not a bare hash anyone can
	// recompute from a guessed address.
	key1, key2 := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	keyed := account.EmailStreamID(key1, "asha@example.com")
	mac := hmac.New(sha256.New, key1)
	mac.Write([]byte("asha@example.com"))
	if want := "email-k" + hex.EncodeToString(mac.Sum(nil)); keyed != want {
		t.Errorf("EmailStreamID(key) = %q, want %q", keyed, want)
	}
	if keyed == id || keyed == account.EmailStreamID(key2, "asha@example.com") {
		t.Error("the keyed name does not depend on the key")
	}
	for _, variant := range []string{"ASHA@EXAMPLE.COM", "  Asha@Example.com\t", "\nasha@example.COM "} {
		if got := account.LegacyEmailStreamID(variant); got != id {
			t.Errorf("LegacyEmailStreamID(%q) = %q, want %q", variant, got, id)
		}
		if got := account.EmailStreamID(key1, variant); got != keyed {
			t.Errorf("EmailStreamID(key, %q) = %q, want %q", variant, got, keyed)
		}
	}
	if account.EmailStreamID(key1, "asha@example.org") == keyed {
		t.Error("different emails share a stream")
	}
	if got := account.NormalizeEmail("  Asha@Example.COM "); got != "asha@example.com" {
		t.Errorf("NormalizeEmail = %q", got)
	}

	if got := account.StreamID(domain.RolePatient, "u1"); got != "patient-u1" {
		t.Errorf("patient stream %q", got)
	}
	for _, r := range []domain.Role{domain.RoleDoctor, domain.RoleAdmin, domain.RoleAuditor, domain.RoleAnalyst} {
		if got := account.StreamID(r, "u1"); got != "staff-u1" {
			t.Errorf("%s stream %q", r, got)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  *domain.Error
		kind error
	}{
		{account.ErrEmailTaken, domain.ErrConflict},
		{account.ErrInvalidCredentials, domain.ErrUnauthorized},
		{account.ErrAccountNotFound, domain.ErrNotFound},
		{account.ErrAccountExists, domain.ErrConflict},
		{account.ErrInvalidAccount, domain.ErrInvalid},
		{account.ErrWeakPassword, domain.ErrInvalid},
	} {
		if !errors.Is(c.err, c.kind) {
			t.Errorf("%s is not %v", c.err.Code, c.kind)
		}
		wrapped := domain.Detail(c.err, "more detail about %s", "it")
		if !errors.Is(wrapped, c.err) || !errors.Is(wrapped, c.kind) || wrapped.Error() != "more detail about it" {
			t.Errorf("Detail(%s) = %v", c.err.Code, wrapped)
		}
	}
}
