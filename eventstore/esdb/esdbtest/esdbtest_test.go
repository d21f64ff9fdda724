package esdbtest_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
)

func client(t *testing.T) (*esdbtest.Server, *esdb.Client) {
	t.Helper()
	srv, cs := esdbtest.StartServer(t)
	cfg, err := esdb.ParseConnectionString(cs)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func events(ids ...uuid.UUID) []esdb.EventData {
	out := make([]esdb.EventData, len(ids))
	for i, id := range ids {
		out[i] = esdb.EventData{EventID: id, EventType: "T", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
	}
	return out
}

func reader(t *testing.T) func(*esdb.ReadStream, error) []*esdb.RecordedEvent {
	return func(rs *esdb.ReadStream, err error) []*esdb.RecordedEvent { return read(t, rs, err) }
}

func read(t *testing.T, rs *esdb.ReadStream, err error) []*esdb.RecordedEvent {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []*esdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev.OriginalEvent())
	}
}

func TestProtocol(t *testing.T) {
	srv, c := client(t)
	ctx := t.Context()
	read := reader(t)
	a, b, x := uuid.New(), uuid.New(), uuid.New()
	res, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events(a, b)...)
	if err != nil || res.NextExpectedVersion != 1 {
		t.Fatalf("append: %+v %v", res, err)
	}
	// Idempotent retry, at the same expected revision and with Any.
	for _, exp := range []esdb.ExpectedRevision{esdb.NoStream{}, esdb.Any{}} {
		again, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: exp}, events(a, b)...)
		if err != nil || *again != *res {
			t.Fatalf("retry %T: %+v %v, want %+v", exp, again, err, res)
		}
	}
	// Corrupted idempotency is a wrong expected version.
	_, err = c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events(a, x)...)
	if e, ok := esdb.FromError(err); ok || e.Code() != esdb.ErrorCodeWrongExpectedVersion || !strings.Contains(e.Error(), "got '1'") {
		t.Fatalf("partial retry: %v", err)
	}
	// A matching revision writes a reused id again, as EventStoreDB does.
	if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(1)}, events(a)...); err != nil {
		t.Fatal(err)
	}
	srv.AppendSystemEvent("$stats-x", "$statistics-collected")

	// Not found arrives on the first Recv.
	rs, err := c.ReadStream(ctx, "missing", esdb.ReadStreamOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); err == nil {
		t.Fatal("no error for a missing stream")
	} else if e, _ := esdb.FromError(err); e.Code() != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("missing stream: %v", err)
	}
	rs.Close()

	// Backward from past the end starts at the last event, as the
	// server's paging does.
	if evs := read(c.ReadStream(ctx, "s", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(100)}, 2)); len(evs) != 2 || evs[0].EventNumber != 2 || evs[1].EventNumber != 1 {
		t.Fatalf("backward from past the end: %+v", evs)
	}
	if evs := read(c.ReadStream(ctx, "s", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(1)}, 5)); len(evs) != 2 || evs[0].EventNumber != 1 {
		t.Fatalf("backward from 1: %+v", evs)
	}
	if evs := read(c.ReadStream(ctx, "s", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 2)); len(evs) != 2 || evs[0].EventNumber != 2 {
		t.Fatalf("backward from end: %+v", evs)
	}

	// $all: from a position is inclusive for reads.
	all := read(c.ReadAll(ctx, esdb.ReadAllOptions{}, 100))
	if len(all) != 5 || !strings.HasPrefix(all[0].StreamID, "$") || !strings.HasPrefix(all[4].EventType, "$") {
		t.Fatalf("$all: %d events", len(all))
	}
	from := read(c.ReadAll(ctx, esdb.ReadAllOptions{From: all[2].Position}, 100))
	if len(from) != 3 || from[0].EventID != all[2].EventID {
		t.Fatalf("$all from a position: %d events", len(from))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Position.Prepare <= all[i-1].Position.Prepare || all[i].Position.Commit != all[i].Position.Prepare {
			t.Fatalf("positions %+v after %+v", all[i].Position, all[i-1].Position)
		}
	}

	// A filtered subscription from a position delivers what is strictly
	// after it, then catches up, then goes live.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sub, err := c.SubscribeToAll(sctx, esdb.SubscribeToAllOptions{From: all[1].Position, Filter: esdb.ExcludeSystemEventsFilter()})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	next := func() *esdb.RecordedEvent {
		for {
			ev := sub.Recv()
			switch {
			case ev.SubscriptionDropped != nil:
				t.Fatalf("dropped: %v", ev.SubscriptionDropped.Error)
			case ev.EventAppeared != nil:
				return ev.EventAppeared.OriginalEvent()
			}
		}
	}
	if e := next(); e.EventID != all[2].EventID {
		t.Fatalf("first event %s, want %s", e.EventID, all[2].EventID)
	}
	if e := next(); e.EventID != all[3].EventID {
		t.Fatalf("second event %s, want %s", e.EventID, all[3].EventID)
	}
	live := uuid.New()
	if _, err := c.AppendToStream(ctx, "t", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, events(live)...); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.EventID != live {
		t.Fatalf("live event %s, want %s", e.EventID, live)
	}

	// A stream subscription.
	ssub, err := c.SubscribeToStream(sctx, "s", esdb.SubscribeToStreamOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ssub.Close()
	for want := uint64(0); want < 3; {
		ev := ssub.Recv()
		if ev.SubscriptionDropped != nil {
			t.Fatal(ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			if n := ev.EventAppeared.OriginalEvent().EventNumber; n != want {
				t.Fatalf("stream subscription: revision %d, want %d", n, want)
			}
			want++
		}
	}
}
