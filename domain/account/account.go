// Package account is the user-account aggregate: patients in streams
// "patient-{id}", staff (doctors, admins, auditors, analysts) in
// "staff-{id}", and the email index "email-k{hmac(key, lower(email))}",
// appended with expected revision "no stream" so that an email can be
// claimed once without any read model.
package account

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prescripto/prescripto/domain"
)

// Stream categories.
const (
	PatientCategory = "patient"
	StaffCategory   = "staff"
	EmailCategory   = "email"
)

// StreamID is the stream of an account of role r.
func StreamID(r domain.Role, id string) string {
	if r == domain.RolePatient {
		return PatientCategory + "-" + id
	}
	return StaffCategory + "-" + id
}

// EmailStreamID is the stream that claims a normalized email, named by
// its keyed hash (HMAC-SHA-256 under the server's email index key, kept
// outside the log): someone holding only the log cannot test guessed
// addresses against the stream names. Without a key it is the legacy
// name, LegacyEmailStreamID.
func EmailStreamID(key []byte, email string) string {
	if len(key) == 0 {
		return LegacyEmailStreamID(email)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(NormalizeEmail(email)))
	return EmailCategory + "-k" + hex.EncodeToString(m.Sum(nil))
}

// LegacyEmailStreamID is the name of the email streams written before
// the keyed names (a bare SHA-256 of the address). They are still read, and
// their addresses stay claimed.
func LegacyEmailStreamID(email string) string {
	sum := sha256.Sum256([]byte(NormalizeEmail(email)))
	return EmailCategory + "-" + hex.EncodeToString(sum[:])
}

// Errors.
var (
	ErrEmailTaken         = domain.NewError(domain.ErrConflict, "email_taken", "an account with this email exists")
	ErrInvalidCredentials = domain.NewError(domain.ErrUnauthorized, "invalid_credentials", "invalid email or password")
	ErrAccountNotFound    = domain.NewError(domain.ErrNotFound, "account_not_found", "account not found")
	ErrAccountExists      = domain.NewError(domain.ErrConflict, "account_exists", "account already registered")
	ErrInvalidAccount     = domain.NewError(domain.ErrInvalid, "invalid_input", "invalid account")
	ErrWeakPassword       = domain.NewError(domain.ErrInvalid, "weak_password", "password must be 8 to 72 bytes")
)

// Event type names.
const (
	TypeRegistered     = "account.Registered.v1"
	TypeProfileUpdated = "account.ProfileUpdated.v1"
	TypeEmailClaimed   = "account.EmailClaimed.v1"
)

// Events lists the registrations of every account event type.
func Events() []domain.Registration {
	return append([]domain.Registration{
		domain.Type[Registered](),
		domain.Type[ProfileUpdated](),
		domain.Type[EmailClaimed](),
	}, lifecycleEvents()...)
}

// Registered opens an account. DoctorID is set for a doctor's login.
type Registered struct {
	AccountID    string      `json:"accountId"`
	Name         string      `json:"name"`
	Email        string      `json:"email"`
	PasswordHash string      `json:"passwordHash"`
	Role         domain.Role `json:"role"`
	DoctorID     string      `json:"doctorId,omitempty"`
	RegisteredAt time.Time   `json:"registeredAt"`
}

// ProfileUpdated carries the whole editable profile after the change.
type ProfileUpdated struct {
	AccountID string  `json:"accountId"`
	Profile   Profile `json:"profile"`
}

// EmailClaimed is the only event of an email stream. It carries what login
// needs, so that an account whose stream write was interrupted can still be
// completed from it.
type EmailClaimed struct {
	Email        string      `json:"email"`
	AccountID    string      `json:"accountId"`
	Role         domain.Role `json:"role"`
	Name         string      `json:"name"`
	PasswordHash string      `json:"passwordHash"`
	DoctorID     string      `json:"doctorId,omitempty"`
	ClaimedAt    time.Time   `json:"claimedAt"`
}

// PersonalData implements domain.Personal.
func (e *Registered) PersonalData() (string, []*string) {
	return e.AccountID, []*string{&e.Name, &e.Email}
}

// PersonalData implements domain.Personal.
func (e *ProfileUpdated) PersonalData() (string, []*string) {
	p := &e.Profile
	return e.AccountID, []*string{&p.Name, &p.Phone, &p.Address, &p.Gender, &p.DOB}
}

// PersonalData implements domain.Personal.
func (e *EmailClaimed) PersonalData() (string, []*string) {
	return e.AccountID, []*string{&e.Email, &e.Name}
}

func (Registered) EventType() string     { return TypeRegistered }
func (ProfileUpdated) EventType() string { return TypeProfileUpdated }
func (EmailClaimed) EventType() string   { return TypeEmailClaimed }

// Profile holds the editable personal fields.
type Profile struct {
	Name    string `json:"name"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
	Gender  string `json:"gender"`
	DOB     string `json:"dob"` // YYYY-MM-DD or empty
}

// Account is the aggregate.
type Account struct {
	id           string
	registered   bool
	email        string
	passwordHash string
	role         domain.Role
	doctorID     string
	profile      Profile
	createdAt    time.Time
	life         lifecycle
	changes      []domain.Event
}

// New returns an empty account aggregate for id.
func New(id string) *Account { return &Account{id: id} }

func (a *Account) ID() string              { return a.id }
func (a *Account) Registered() bool        { return a.registered }
func (a *Account) Email() string           { return a.email }
func (a *Account) PasswordHash() string    { return a.passwordHash }
func (a *Account) Role() domain.Role       { return a.role }
func (a *Account) DoctorID() string        { return a.doctorID }
func (a *Account) Profile() Profile        { return a.profile }
func (a *Account) CreatedAt() time.Time    { return a.createdAt }
func (a *Account) Changes() []domain.Event { return a.changes }
func (a *Account) ClearChanges()           { a.changes = nil }

// Load folds stored events.
func (a *Account) Load(events ...domain.Event) {
	for _, e := range events {
		a.apply(e)
	}
}

func (a *Account) record(e domain.Event) {
	a.apply(e)
	a.changes = append(a.changes, e)
}

func (a *Account) apply(ev domain.Event) {
	switch e := ev.(type) {
	case Registered:
		a.registered = true
		a.email, a.passwordHash, a.role, a.doctorID = e.Email, e.PasswordHash, e.Role, e.DoctorID
		a.profile = Profile{Name: e.Name}
		a.createdAt = e.RegisteredAt
	case ProfileUpdated:
		a.profile = e.Profile
	default:
		a.applyLifecycle(ev)
	}
}

// NewRegistration is what opening an account needs. The password is already
// hashed (hashing is slow and not the domain's business).
type NewRegistration struct {
	Name         string
	Email        string
	PasswordHash string
	Role         domain.Role
	DoctorID     string
}

// Register opens the account.
func (a *Account) Register(r NewRegistration, now time.Time) error {
	if a.registered {
		return ErrAccountExists
	}
	name := strings.TrimSpace(r.Name)
	email := NormalizeEmail(r.Email)
	switch {
	case !domain.TextOK(name, 1, 100):
		return domain.Detail(ErrInvalidAccount, "name must be 1 to 100 characters of plain text (no control characters)")
	case ValidateEmail(email) != nil:
		return ValidateEmail(email)
	case r.PasswordHash == "":
		return domain.Detail(ErrInvalidAccount, "password hash missing")
	case !r.Role.Valid() || r.Role == domain.RoleSystem:
		return domain.Detail(ErrInvalidAccount, "unknown role %q", r.Role)
	case r.Role == domain.RoleDoctor && r.DoctorID == "":
		return domain.Detail(ErrInvalidAccount, "a doctor account needs a doctor id")
	}
	a.record(Registered{AccountID: a.id, Name: name, Email: email, PasswordHash: r.PasswordHash, Role: r.Role, DoctorID: r.DoctorID, RegisteredAt: now.UTC()})
	return nil
}

// UpdateProfile replaces the editable profile. Nothing is recorded if
// nothing changed.
func (a *Account) UpdateProfile(p Profile) error {
	if !a.registered {
		return ErrAccountNotFound
	}
	p.Name, p.Phone, p.Address = strings.TrimSpace(p.Name), strings.TrimSpace(p.Phone), strings.TrimSpace(p.Address)
	p.Gender, p.DOB = strings.TrimSpace(p.Gender), strings.TrimSpace(p.DOB)
	switch {
	case !domain.TextOK(p.Name, 1, 100):
		return domain.Detail(ErrInvalidAccount, "name must be 1 to 100 characters of plain text (no control characters)")
	case !domain.TextOK(p.Phone, 0, 32) || !phoneChars(p.Phone):
		return domain.Detail(ErrInvalidAccount, "phone must be at most 32 digits, spaces, +, - or parentheses")
	case !domain.TextOK(p.Address, 0, 300):
		return domain.Detail(ErrInvalidAccount, "address must be at most 300 characters of plain text (no control characters)")
	case !domain.TextOK(p.Gender, 0, 32):
		return domain.Detail(ErrInvalidAccount, "gender must be at most 32 characters of plain text (no control characters)")
	}
	if p.DOB != "" {
		if _, err := time.Parse(time.DateOnly, p.DOB); err != nil {
			return domain.Detail(ErrInvalidAccount, "dob must be YYYY-MM-DD")
		}
	}
	if p == a.profile {
		return nil
	}
	a.record(ProfileUpdated{AccountID: a.id, Profile: p})
	return nil
}

func phoneChars(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9') && !strings.ContainsRune(" +-()", r) {
			return false
		}
	}
	return true
}

// NormalizeEmail trims and lower-cases an email.
func NormalizeEmail(e string) string { return strings.ToLower(strings.TrimSpace(e)) }

// ValidateEmail checks a normalized email is a plain address.
func ValidateEmail(e string) error {
	if len(e) < 3 || len(e) > 254 {
		return domain.Detail(ErrInvalidAccount, "email must be 3 to 254 characters")
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
		return domain.Detail(ErrInvalidAccount, "email is not a valid address")
	}
	return nil
}

// ValidatePassword checks a password before it is hashed: 8 to 72 bytes
// (bcrypt's limit), valid UTF-8.
func ValidatePassword(p string) error {
	if len(p) < 8 || len(p) > 72 || !utf8.ValidString(p) {
		return ErrWeakPassword
	}
	return nil
}
