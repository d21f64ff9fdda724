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
	hash := account.TokenHash("golden-token")
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
		account.PasswordChanged{AccountID: "acc-1", PasswordHash: "$2a$10$zyxwvutsrqponmlkjihgfe", TokenVersion: 2, ChangedAt: at},
		account.PasswordResetRequested{AccountID: "acc-1", TokenHash: hash, ExpiresAt: at.Add(time.Hour), RequestedAt: at},
		account.PasswordReset{AccountID: "acc-1", TokenHash: hash, PasswordHash: "$2a$10$zyxwvutsrqponmlkjihgfe", TokenVersion: 3, ResetAt: at},
		account.LoggedOut{AccountID: "acc-1", TokenID: "0190d8a4-7b1c-7c3e-9a51-2f6e0c1d2b3a", ExpiresAt: at.Add(time.Hour), LoggedOutAt: at},
		account.Deactivated{AccountID: "acc-1", TokenVersion: 4, DeactivatedAt: at},
		account.Activated{AccountID: "acc-1", ActivatedAt: at},
		account.EmailVerificationIssued{AccountID: "acc-1", TokenHash: hash, ExpiresAt: at.Add(48 * time.Hour), IssuedAt: at},
		account.EmailVerified{AccountID: "acc-1", TokenHash: hash, VerifiedAt: at},
		account.PersonalDataErased{AccountID: "acc-1", ErasedAt: at},

		account.CalendarFeedRevoked{AccountID: "acc-1", Generation: 1, RevokedAt: at},
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
