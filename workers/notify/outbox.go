package notify

import (
	"context"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// Status of a mail in the outbox.
type Status string

// Statuses: pending until sent (retried with backoff in between), sent,
// failed when parked after MaxAttempts (until an admin retries it), dropped
// when over the recipient's daily cap or refused for good.
const (
	StatusPending Status = "pending"
	StatusSent    Status = "sent"
	StatusFailed  Status = "failed"
	StatusDropped Status = "dropped"
)

// ValidStatus reports whether s names a status.
func ValidStatus(s Status) bool {
	switch s {
	case StatusPending, StatusSent, StatusFailed, StatusDropped:
		return true
	}
	return false
}

// Mail is a message in the outbox with its delivery state.
type Mail struct {
	Message
	// Kind names the template (booking_confirmed, reminder, ...).
	Kind      string    `json:"kind"`
	Status    Status    `json:"status"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"nextAt"`
	LastError string    `json:"lastError,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// About is the patient the mail is about (their appointment), so that
	// an erasure finds the mails to others that name them.
	About string `json:"about,omitempty"`
	// DoneAt is when it was sent, parked or dropped.
	DoneAt time.Time `json:"doneAt,omitzero"`
}

// Outbox keeps the mails to send and what became of each: the sent
// markers that make a mail go out once. Its promises (kept by FileOutbox,
// on disk or in memory, and MongoOutbox; TestOutboxPromises checks them
// on each):
//
//   - Add is idempotent by Message.ID: a mail added again, whatever its
//     state, is not added twice (a sent mail stays sent).
//   - Due returns pending mails whose NextAt has come, oldest first, and
//     leases them for lease: Due does not return them again until the lease
//     ends or they are marked (two deliverers never hold one mail at once).
//   - Mark records an attempt's outcome durably before it returns.
//   - SaveCheckpoint makes every Add before it durable, then records pos
//     and state; Checkpoint returns the last saved.
type Outbox interface {
	Add(ctx context.Context, mails ...Mail) error
	Due(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Mail, error)
	// Mark records the outcome of an attempt: m's Status, Attempts, NextAt,
	// LastError and DoneAt as given.
	Mark(ctx context.Context, m Mail) error
	// SentSince counts the mails sent to to since t (the daily cap).
	SentSince(ctx context.Context, to string, t time.Time) (int, error)
	List(ctx context.Context, status Status, limit int) ([]Mail, error)
	Get(ctx context.Context, id string) (Mail, error)
	// Retry makes a failed mail pending again, due now, with its attempts
	// reset; ErrNotFailed when it is not failed.
	Retry(ctx context.Context, id string, now time.Time) (Mail, error)
	// Pending counts the pending mails and says when the oldest was added.
	Pending(ctx context.Context) (n int, oldest time.Time, err error)
	// Erase forgets what the outbox holds for a person whose data was
	// erased: the mails to the address to or about the patient about.
	// Their pending mails are dropped, and every kept one keeps only its
	// id, status and times (the sent markers); its address and contents
	// read "[erased]", on disk too.
	Erase(ctx context.Context, to, about string) error
	Checkpoint(ctx context.Context) (pos uint64, state []byte, err error)
	SaveCheckpoint(ctx context.Context, pos uint64, state []byte) error
	Close() error
}

// Errors of an Outbox.
var (
	ErrMailNotFound = domain.NewError(domain.ErrNotFound, "notification_not_found", "No notification has this id.")
	ErrNotFailed    = domain.NewError(domain.ErrConflict, "notification_not_failed", "Only a failed notification can be retried.")
)
