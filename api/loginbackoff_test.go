package api

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLoginBackoffSlowsAnAccountAfterFailures(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	b := newLoginBackoff(nil, func() time.Time { return now }, zerolog.Nop())
	const victim = "asha@example.com"
	for range loginFreeFailures {
		if d := b.delay(context.Background(), victim); d != 0 {
			t.Fatalf("a delay of %v before %d failures", d, loginFreeFailures)
		}
		b.failed(context.Background(), victim)
	}
	want := loginFirstDelay
	for range 8 {
		if d := b.delay(context.Background(), victim); d != want {
			t.Fatalf("delay %v, want %v", d, want)
		}
		b.failed(context.Background(), victim)
		want = min(2*want, loginMaxDelay)
	}
	if d := b.delay(context.Background(), " ASHA@example.com "); d != loginMaxDelay {
		t.Errorf("the same email written otherwise: delay %v, want %v", d, loginMaxDelay)
	}
	if d := b.delay(context.Background(), "ben@example.com"); d != 0 {
		t.Errorf("another account is slowed: %v", d)
	}
	// Not a wall: a waiting attempt is answered (after the delay), and a
	// client that gives up is not held.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := b.wait(ctx, victim); err == nil {
		t.Error("wait returned before its delay")
	}
	// Two windows later the failures are forgotten.
	now = now.Add(2 * loginFailureWindow)
	if d := b.delay(context.Background(), victim); d != 0 {
		t.Errorf("after two windows: delay %v", d)
	}
}
