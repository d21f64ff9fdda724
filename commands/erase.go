package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
)

// Shredder erases a person's data key (see internal/personal): every
// personal field sealed with it becomes unreadable wherever it is stored.
type Shredder interface {
	Erase(ctx context.Context, subject string) error
}

// ErrErasureUnavailable: this server keeps no personal-data keys, so it
// cannot erase by shredding one.
var ErrErasureUnavailable = domain.NewError(domain.ErrUnprocessable, "erasure_unavailable", "this server keeps no personal-data keys, so it cannot erase personal data")

// ErasePatient erases a patient's personal data (admins only): the key is
// shredded first, then PersonalDataErased is appended (closing the
// account first if it is open). In that order a crash in between leaves
// the data unreadable and the fact not yet recorded; the same request
// again (it is idempotent) records it. Read models apply the fact by
// writing "[erased]" over what they hold of the patient.
func (h *Handler) ErasePatient(ctx context.Context, m Meta, id string) (AccountResult, error) {
	if m.Actor.Role != domain.RoleAdmin && m.Actor.Role != domain.RoleSystem {
		return AccountResult{}, ErrAdminsOnly
	}
	if h.shredder == nil {
		return AccountResult{}, ErrErasureUnavailable
	}
	if id == "" || len(id) > 64 {
		return AccountResult{}, account.ErrAccountNotFound
	}
	st, ok, err := h.readAccount(ctx, domain.RolePatient, id)
	if err != nil {
		return AccountResult{}, err
	}
	if !ok || st.Role != domain.RolePatient {
		return AccountResult{}, account.ErrAccountNotFound
	}
	if err := h.shredder.Erase(ctx, id); err != nil {
		return AccountResult{}, fmt.Errorf("commands: erase the key of %s: %w", id, err)
	}
	return h.execAccount(ctx, "ErasePatient", domain.RolePatient, id, m, request{}, false, func(a *account.Account, now time.Time) error {
		return a.Erase(now)
	})
}

// HistoryEvent is one event of an account's own stream, decoded (its
// personal fields opened).
type HistoryEvent struct {
	Type       string
	Revision   uint64
	Position   uint64
	RecordedAt time.Time
	Data       domain.Event
}

// AccountHistory returns every event of the account's stream, oldest
// first (for the owner's export of what is held about them).
func (h *Handler) AccountHistory(ctx context.Context, role domain.Role, id string) ([]HistoryEvent, error) {
	if id == "" || len(id) > 64 {
		return nil, account.ErrAccountNotFound
	}
	recs, evs, err := h.readStream(ctx, account.StreamID(role, id), 0)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, account.ErrAccountNotFound
	}
	out := make([]HistoryEvent, len(evs))
	for i, e := range evs {
		out[i] = HistoryEvent{Type: recs[i].Type, Revision: recs[i].Revision, Position: recs[i].Position, RecordedAt: recs[i].RecordedAt, Data: e}
	}
	return out, nil
}
