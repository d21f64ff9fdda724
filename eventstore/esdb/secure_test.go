package esdb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	esdbclient "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/esdb"
	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
	"github.com/prescripto/prescripto/eventstore/storetest"
)

// startSecure starts an emulator with TLS (a throwaway CA, its certificate
// in a temporary tlsCAFile) and two users, the admin and a clerk outside
// $admins. url(userinfo, scheme) is a connection string to it.
func startSecure(t *testing.T, opts ...esdbtest.Option) (*esdbtest.Server, func(userinfo, scheme string) string) {
	t.Helper()
	srv, addr, query := esdbtest.StartSecure(t, opts...)
	rest := addr + query
	return srv, func(userinfo, scheme string) string {
		if userinfo != "" {
			userinfo += "@"
		}
		return scheme + "://" + userinfo + rest
	}
}

// TestConformanceSecure runs the suite through discovery (gossip), TLS and
// credentials, the way production connects, on one shared server.
func TestConformanceSecure(t *testing.T) {
	_, url := startSecure(t)
	cs := url("admin:changeit", "esdb+discover")
	if !strings.Contains(cs, "tls=true") || !strings.Contains(cs, "tlsCAFile=") {
		t.Fatalf("not a secure connection string: %s", cs)
	}
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return open(t, cs, esdb.WithStreamPrefix(fmt.Sprintf("ns%d-", n.Add(1))))
	})
}

// TestOpenAccessDenied: refused credentials, or a user that may not read
// $all, are a start-up error that says access denied, not that the server
// does not answer.
func TestOpenAccessDenied(t *testing.T) {
	t.Parallel()
	_, url := startSecure(t)
	for _, c := range []struct{ name, userinfo, want string }{
		{"anonymous", "", "anonymous"},
		{"wrong password", "admin:wrong", `user "admin" refused`},
		{"not an admin", "clerk:secret", `user "clerk"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			s, err := esdb.Open(ctx, url(c.userinfo, "esdb"))
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, eventstore.ErrAccessDenied) || errors.Is(err, eventstore.ErrUnavailable) ||
				!strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrAccessDenied saying access denied to %s", err, c.want)
			}
			if strings.Contains(err.Error(), "does not answer") || strings.Contains(err.Error(), "changeit") || strings.Contains(err.Error(), "secret") {
				t.Fatalf("err = %v: says the server does not answer, or shows a password", err)
			}
		})
	}
}

func oneEvent() []eventstore.EventData {
	return []eventstore.EventData{{ID: uuid.New(), Type: "T", Data: []byte(`{}`)}}
}

// TestErrorMapping: a tombstoned stream and an append over the server's
// size limit are errors of their own.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	_, cs := esdbtest.StartServer(t, esdbtest.WithMaxAppendSize(4096))
	s := open(t, cs)
	ctx := t.Context()
	if _, err := s.Append(ctx, "gone", eventstore.NoStream, oneEvent()); err != nil {
		t.Fatal(err)
	}
	cfg, err := esdbclient.ParseConnectionString(cs)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdbclient.NoopLogging()
	c, err := esdbclient.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.TombstoneStream(ctx, "gone", esdbclient.TombstoneStreamOptions{ExpectedRevision: esdbclient.Any{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "gone", eventstore.Any, oneEvent()); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("append to a tombstoned stream: %v, want ErrStreamDeleted", err)
	}
	if _, err := s.ReadStream(ctx, "gone", 0, eventstore.Forward, 0); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Fatalf("read of a tombstoned stream: %v, want ErrStreamDeleted", err)
	}
	big := []eventstore.EventData{{ID: uuid.New(), Type: "T", Data: fmt.Appendf(nil, "%q", strings.Repeat("x", 5000))}}
	if _, err := s.Append(ctx, "big", eventstore.NoStream, big); !errors.Is(err, eventstore.ErrAppendTooLarge) || errors.Is(err, eventstore.ErrInvalidAppend) {
		t.Fatalf("append over MaxAppendSize: %v, want ErrAppendTooLarge", err)
	}
	if _, err := s.ReadStream(ctx, "big", 0, eventstore.Forward, 0); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Fatalf("the refused append was written: %v", err)
	}
}

// TestAppendOutcomeResolved: an append whose commit outlives the server's
// write timeout is answered with its real outcome, learnt by reading the
// stream back.
func TestAppendOutcomeResolved(t *testing.T) {
	t.Parallel()
	srv, cs := esdbtest.StartServer(t)
	s := open(t, cs, esdb.WithOutcomeTimeout(500*time.Millisecond))
	other := open(t, cs)
	ctx := t.Context()
	var fault atomic.Value // esdbtest.Fault for the next append to "doc-*"
	var race atomic.Bool   // another writer takes the revision first
	srv.SetAppendFault(func(stream string) esdbtest.Fault {
		if !strings.HasPrefix(stream, "doc-") {
			return esdbtest.NoFault
		}
		f, _ := fault.Swap(esdbtest.NoFault).(esdbtest.Fault)
		if race.Swap(false) {
			if _, err := other.Append(context.Background(), stream, eventstore.Exact(0), oneEvent()); err != nil {
				t.Errorf("racing append: %v", err)
			}
		}
		return f
	})
	faulty := func(f esdbtest.Fault) { fault.Store(f) }

	t.Run("exact committed", func(t *testing.T) {
		mustAppend(t, s, "doc-1", eventstore.NoStream, oneEvent())
		evs := append(oneEvent(), oneEvent()...)
		faulty(esdbtest.TimeoutAfterCommit)
		res, err := s.Append(ctx, "doc-1", eventstore.Exact(0), evs)
		if err != nil {
			t.Fatalf("append committed but timed out: %v, want success", err)
		}
		got, err := s.ReadStream(ctx, "doc-1", 0, eventstore.Forward, 0)
		if err != nil || len(got) != 3 || got[2].ID != evs[1].ID {
			t.Fatalf("stream: %+v, %v", got, err)
		}
		if res.NextExpectedRevision != 2 || res.Position != got[2].Position {
			t.Fatalf("result %+v, want revision 2 at %d", res, got[2].Position)
		}
		mustAppend(t, s, "doc-1", eventstore.Exact(res.NextExpectedRevision), oneEvent())
	})
	t.Run("no stream committed", func(t *testing.T) {
		faulty(esdbtest.TimeoutAfterCommit)
		res, err := s.Append(ctx, "doc-2", eventstore.NoStream, oneEvent())
		if err != nil || res.NextExpectedRevision != 0 || res.Position == 0 {
			t.Fatalf("result %+v, %v", res, err)
		}
	})
	t.Run("any committed", func(t *testing.T) {
		mustAppend(t, s, "doc-3", eventstore.NoStream, oneEvent())
		faulty(esdbtest.TimeoutAfterCommit)
		res, err := s.Append(ctx, "doc-3", eventstore.Any, oneEvent())
		if err != nil || res.NextExpectedRevision != 1 {
			t.Fatalf("result %+v, %v", res, err)
		}
	})
	t.Run("not written", func(t *testing.T) {
		mustAppend(t, s, "doc-4", eventstore.NoStream, oneEvent())
		faulty(esdbtest.TimeoutBeforeCommit)
		_, err := s.Append(ctx, "doc-4", eventstore.Exact(0), oneEvent())
		if !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("append lost before its commit: %v, want ErrUnavailable", err)
		}
		if got, err := s.ReadStream(ctx, "doc-4", 0, eventstore.Forward, 0); err != nil || len(got) != 1 {
			t.Fatalf("stream: %d events, %v", len(got), err)
		}
	})
	t.Run("another writer won", func(t *testing.T) {
		mustAppend(t, s, "doc-5", eventstore.NoStream, oneEvent())
		race.Store(true)
		faulty(esdbtest.TimeoutBeforeCommit)
		_, err := s.Append(ctx, "doc-5", eventstore.Exact(0), oneEvent())
		var wev *eventstore.WrongExpectedVersionError
		if !errors.As(err, &wev) || wev.Actual != 1 || wev.Expected != eventstore.Exact(0) || wev.Stream != "doc-5" {
			t.Fatalf("append whose revision another took: %v, want a wrong expected version at 1", err)
		}
	})
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, exp eventstore.ExpectedRevision, evs []eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, exp, evs)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}
