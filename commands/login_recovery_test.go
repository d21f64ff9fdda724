package commands_test

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/eventstore"
)

// TestLoginFinishesARegistrationStoppedAfterTheClaim: a registration that
// stopped between the email claim and the account (a crash between the
// two appends) is finished by the first login, from what the claim
// carries, once. The store under test holds exactly the claim a real
// registration appended, and nothing after it.
func TestLoginFinishesARegistrationStoppedAfterTheClaim(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	full, err := e.h.RegisterPatient(ctx, commands.Meta{}, "Half Way", "half.way@example.test", "password-1")
	if err != nil {
		t.Fatal(err)
	}
	var claim *eventstore.RecordedEvent
	recs, err := e.store.ReadAll(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if recs[i].Type == account.TypeEmailClaimed {
			claim = &recs[i]
		}
	}
	if claim == nil {
		t.Fatalf("registration appended no %s: %d events", account.TypeEmailClaimed, len(recs))
	}
	stopped := newStore(t)
	if _, err := stopped.Append(ctx, claim.StreamID, eventstore.NoStream, []eventstore.EventData{
		{ID: claim.ID, Type: claim.Type, Data: claim.Data, Metadata: claim.Metadata},
	}); err != nil {
		t.Fatal(err)
	}
	h, err := commands.New(commands.Config{Store: stopped, Registry: e.reg, Now: e.clock.Now, Hasher: commands.BcryptHasher{Cost: bcrypt.MinCost}})
	if err != nil {
		t.Fatal(err)
	}
	if n := countInLog(t, stopped, account.TypeRegistered); n != 0 {
		t.Fatalf("the stopped registration has %d accounts already", n)
	}
	for i := range 2 {
		acc, err := h.Login(ctx, " Half.Way@example.test ", "password-1")
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if acc.ID != full.ID || acc.Role != domain.RolePatient || acc.Email != full.Email {
			t.Fatalf("login %d: %+v, want the claimed account %+v", i, acc, full)
		}
		if n := countInLog(t, stopped, account.TypeRegistered); n != 1 {
			t.Fatalf("after login %d: %d accounts registered in the log, want 1", i, n)
		}
	}
}
