package commands_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/internal/personal"
)

// keyedHandler is a Handler whose email streams are named by a keyed hash
// and whose registry seals personal fields, as the binary wires it.
func keyedHandler(t *testing.T, e *env, ks personal.KeyStore) *commands.Handler {
	t.Helper()
	v := personal.NewVault(ks)
	e.reg.SetCipher(v)
	key, err := personal.IndexKey(context.Background(), ks)
	if err != nil {
		t.Fatal(err)
	}
	h, err := commands.New(commands.Config{Store: e.store, Registry: e.reg, Now: e.clock.Now, Hasher: commands.BcryptHasher{Cost: bcrypt.MinCost}, EmailIndexKey: key, Shredder: v})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// An address claimed under the legacy (bare SHA-256) stream name before
// keyed names stays claimed and still logs in; new addresses are claimed
// under the keyed name only.
func TestLegacyEmailStreamsStayClaimed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	sys := commands.Meta{Actor: domain.System}
	if _, err := e.h.RegisterPatient(ctx, sys, "Old Timer", "old@example.com", "password-1"); err != nil {
		t.Fatal(err)
	}
	h := keyedHandler(t, e, personal.NewMemoryKeyStore())
	if _, err := h.RegisterPatient(ctx, sys, "Squatter", "OLD@example.com", "password-2"); !errors.Is(err, account.ErrEmailTaken) {
		t.Fatalf("registering a legacy-claimed address: %v, want email_taken", err)
	}
	if _, err := h.Login(ctx, "old@example.com", "password-1"); err != nil {
		t.Fatalf("login through the legacy stream: %v", err)
	}
	if _, err := h.RegisterPatient(ctx, sys, "New Comer", "new@example.com", "password-3"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ReadStream(ctx, account.LegacyEmailStreamID("new@example.com"), 0, eventstore.Forward, 1); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("a new address was claimed under the legacy name: %v", err)
	}
	recs, err := e.store.ReadAll(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if strings.HasPrefix(r.StreamID, "email-") && !strings.HasPrefix(r.StreamID, "email-k") && r.StreamID != account.LegacyEmailStreamID("old@example.com") {
			t.Errorf("unexpected legacy-named stream %s", r.StreamID)
		}
		if strings.Contains(string(r.Data), "New Comer") || strings.Contains(string(r.Data), "new@example.com") {
			t.Errorf("%s@%d stores personal data in clear: %s", r.StreamID, r.Revision, r.Data)
		}
	}
	if _, err := h.Login(ctx, "new@example.com", "password-3"); err != nil {
		t.Fatalf("login through the keyed stream: %v", err)
	}
}

func TestErasePatient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	h := keyedHandler(t, e, personal.NewMemoryKeyStore())
	p, err := h.RegisterPatient(ctx, commands.Meta{Actor: domain.System}, "Gone Soon", "gone@example.com", "password-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.ErasePatient(ctx, patient(1), p.ID); !errors.Is(err, commands.ErrAdminsOnly) {
		t.Errorf("a patient erasing: %v", err)
	}
	a, err := h.ErasePatient(ctx, admin, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Erased || a.Active || a.Profile.Name != domain.Erased || a.Email != domain.Erased {
		t.Errorf("erased account = %+v", a)
	}
	if got, err := h.Account(ctx, domain.RolePatient, p.ID); err != nil || got.Profile.Name != domain.Erased || !got.Erased {
		t.Errorf("the account after erasure: %+v, %v", got, err)
	}
	if _, err := h.Login(ctx, "gone@example.com", "password-1"); !errors.Is(err, account.ErrInvalidCredentials) {
		t.Errorf("login after erasure: %v", err)
	}
	if _, err := h.SetAccountActive(ctx, admin, p.ID, true); !errors.Is(err, account.ErrAccountErased) {
		t.Errorf("activating an erased account: %v", err)
	}
	// Without a key store the server cannot erase.
	if _, err := e.h.ErasePatient(ctx, admin, p.ID); !errors.Is(err, commands.ErrErasureUnavailable) {
		t.Errorf("erasing without a shredder: %v", err)
	}
}

// A doctor's state (what snapshots are made of) holds its patients' names
// and cancel reasons sealed, also for the events its own process
// recorded; results show them opened.
func TestDoctorStateHoldsPersonalFieldsSealed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	d := e.doctor(t, "sealer")
	h := keyedHandler(t, e, personal.NewMemoryKeyStore())
	ss := slots(t, d, 1)
	res, err := h.ReserveSlot(ctx, patient(1), commands.ReserveSlot{PatientName: "Meera Iyer", DoctorID: d.ID, Start: ss[0]})
	if err != nil {
		t.Fatal(err)
	}
	if res.Appointment.PatientName != "Meera Iyer" {
		t.Errorf("the booking's answer names %q", res.Appointment.PatientName)
	}
	c, err := h.CancelAppointment(ctx, patient(1), commands.CancelAppointment{DoctorID: d.ID, AppointmentID: res.Appointment.ID, Reason: "feeling better"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Appointment.CancelReason != "feeling better" {
		t.Errorf("the cancellation's answer gives the reason %q", c.Appointment.CancelReason)
	}
	if err := h.Doctor(ctx, d.ID, func(doc *doctor.Doctor) {
		a, _ := doc.Appointment(res.Appointment.ID)
		for _, v := range []string{a.PatientName, a.CancelReason} {
			if _, _, sealed := domain.ParseSealed(v); !sealed {
				t.Errorf("the doctor's state holds %q in the clear", v)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
}
