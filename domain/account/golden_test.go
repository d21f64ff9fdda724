package account_test

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/catalog"
	"github.com/prescripto/prescripto/internal/goldentest"
)

// go test ./domain/account -run Golden -update rewrites testdata/golden.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenSamples is one instance of every account event type, every field set.
func goldenSamples() []domain.Event {
	at := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	return []domain.Event{
		account.Registered{
			AccountID: "acc-1", Name: "Asha Rao", Email: "asha@example.com", PasswordHash: "$2a$10$abcdefghijklmnopqrstuv",
			Role: domain.RoleDoctor, DoctorID: "doc-1", RegisteredAt: at,
		},
		account.ProfileUpdated{AccountID: "acc-1", Profile: account.Profile{
			Name: "Asha Rao", Phone: "+91 80 1234 5678", Address: "12 MG Road, Bengaluru", Gender: "female", DOB: "1990-05-17",
		}},
		account.EmailClaimed{
			Email: "asha@example.com", AccountID: "acc-1", Role: domain.RoleDoctor, Name: "Asha Rao",
			PasswordHash: "$2a$10$abcdefghijklmnopqrstuv", DoctorID: "doc-1", ClaimedAt: at,
		},
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	goldentest.Run(t, reg, account.Events(), goldenSamples(), *update)
}

// TestOmittedDoctorID: a non-doctor account stores no doctorId at all.
func TestOmittedDoctorID(t *testing.T) {
	t.Parallel()
	data, err := domain.Encode(account.Registered{AccountID: "acc-2", Role: domain.RolePatient})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("doctorId")) {
		t.Errorf("a patient registration stores a doctorId: %s", data)
	}
}
