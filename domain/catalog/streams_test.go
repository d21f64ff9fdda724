package catalog_test

import (
	"strings"
	"testing"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/domain/idempotency"
	"github.com/prescripto/prescripto/domain/ledger"
	"github.com/prescripto/prescripto/domain/payment"
)

// Streams are "<category>-<id>" with no dash in the category, so that
// strings.Cut(stream, "-") always splits them right, also when the id is a
// UUID full of dashes.
func TestStreamCategoriesHaveNoDash(t *testing.T) {
	t.Parallel()
	const id = "0b5c3f1e-7a43-4c55-9d43-5f0b6f6b2a11"
	for _, c := range []struct{ category, stream string }{
		{doctor.Category, doctor.StreamID(id)},
		{account.PatientCategory, account.StreamID(domain.RolePatient, id)},
		{account.StaffCategory, account.StreamID(domain.RoleAdmin, id)},
		{account.EmailCategory, account.EmailStreamID(nil, "asha@example.com")},
		{account.EmailCategory, account.EmailStreamID([]byte("0123456789abcdef0123456789abcdef"), "asha@example.com")},
		{idempotency.Category, idempotency.StreamID(id)},
		{payment.Category, payment.StreamID("razorpay", "evt_29QQoUBi66xm2f")},
		{ledger.Category, ledger.StreamID(id)},
	} {
		if strings.Contains(c.category, "-") {
			t.Errorf("category %q has a dash", c.category)
		}
		if got, _, _ := strings.Cut(c.stream, "-"); got != c.category {
			t.Errorf("stream %q cuts to category %q, want %q", c.stream, got, c.category)
		}
	}
}
