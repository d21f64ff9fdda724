package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/go-chi/httprate"
	"github.com/rs/zerolog"

	"github.com/prescripto/prescripto/commands"
)

// Login back-off per account: after loginFreeFailures failed logins of one
// email within loginFailureWindow, every further attempt on it (right or
// wrong password) is answered only after a delay that doubles with each
// failure, up to loginMaxDelay. A slower path, not a wall: an attacker
// guessing one account's password is slowed to a crawl, while the real
// user, whom the attacker cannot lock out, still logs in, a few seconds
// late. It stacks with the per-IP limit on /auth, and with a shared
// counter store (Redis) it holds across api processes.
const (
	loginFreeFailures  = 5
	loginFailureWindow = 15 * time.Minute
	loginFirstDelay    = 250 * time.Millisecond
	loginMaxDelay      = 5 * time.Second
)

// loginBackoff counts failed logins per email.
type loginBackoff struct {
	counter httprate.LimitCounter
	now     func() time.Time
}

// newLoginBackoff counts failures in c (in memory when nil). The counter
// fails open (failOpenCounter): a store that does not answer within
// failOpenWait gives no delay, and the per-IP limit still holds.
func newLoginBackoff(c httprate.LimitCounter, now func() time.Time, log zerolog.Logger) *loginBackoff {
	if c == nil {
		c = httprate.NewLocalLimitCounter(loginFailureWindow)
	}
	c.Config(0, loginFailureWindow)
	return &loginBackoff{counter: failOpenCounter{LimitCounter: c, log: log}, now: now}
}

// key is the counter key of an email: a hash, so that the counter store
// holds no addresses.
func (b *loginBackoff) key(email string) string {
	sum := sha256.Sum256([]byte(commands.NormalizeEmail(email)))
	return "loginfail:" + hex.EncodeToString(sum[:12])
}

func (b *loginBackoff) windows() (cur, prev time.Time) {
	cur = b.now().UTC().Truncate(loginFailureWindow)
	return cur, cur.Add(-loginFailureWindow)
}

// delay is how long an attempt on email waits before it is checked (the
// counter store asked within ctx, the request's, for at most failOpenWait:
// without an answer there is no delay).
func (b *loginBackoff) delay(ctx context.Context, email string) time.Duration {
	cur, prev := b.windows()
	c, p, _ := getCount(ctx, b.counter, b.key(email), cur, prev) // fails open: 0, 0
	n := c + p - loginFreeFailures
	if n < 0 {
		return 0
	}
	d := loginFirstDelay << min(n, 10)
	return min(d, loginMaxDelay)
}

// wait sleeps the delay of email, or until ctx ends.
func (b *loginBackoff) wait(ctx context.Context, email string) error {
	d := b.delay(ctx, email)
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failed counts a failed login of email.
func (b *loginBackoff) failed(ctx context.Context, email string) {
	cur, _ := b.windows()
	_ = incrementCount(ctx, b.counter, b.key(email), cur, 1) // fails open
}
