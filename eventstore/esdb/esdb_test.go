package esdb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/esdb"
	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
	"github.com/prescripto/prescripto/eventstore/storetest"
)

func open(t *testing.T, cs string, opts ...esdb.Option) *esdb.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := esdb.Open(ctx, cs, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the port's suite with the real client against a
// fresh emulator per subtest.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return open(t, esdbtest.Start(t))
	})
}

// TestConformanceSharedServer runs the suite against one emulator shared by
// all subtests, each in its own stream namespace: the way the suite runs
// against a real server (ESDB_URL), where other namespaces' events and
// system events interleave in $all.
func TestConformanceSharedServer(t *testing.T) {
	srv, cs := esdbtest.StartServer(t)
	stop := make(chan struct{})
	go func() { // system events keep arriving, as on a real server
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				srv.AppendSystemEvent("$stats-127.0.0.1:2113", "$statistics-collected")
			}
		}
	}()
	t.Cleanup(func() { close(stop) })
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return open(t, cs, esdb.WithStreamPrefix(fmt.Sprintf("ns%d-", n.Add(1))))
	})
}

// TestConformanceRealServer runs the suite against the EventStoreDB server
// of ESDB_URL, each subtest in its own stream namespace.
func TestConformanceRealServer(t *testing.T) {
	url := os.Getenv("ESDB_URL")
	if url == "" {
		t.Skip("ESDB_URL is not set: no EventStoreDB server to run the suite against (the emulator suite ran instead)")
	}
	run := uuid.NewString()[:8]
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) eventstore.Store {
		return open(t, url, esdb.WithStreamPrefix(fmt.Sprintf("storetest-%s-%d-", run, n.Add(1))))
	})
}

// TestOpenUnanswered checks that a configured server that does not answer
// is an error naming it.
func TestOpenUnanswered(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := esdb.Open(ctx, esdbtest.ConnectionString(addr))
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded with no server")
	}
	if !strings.Contains(err.Error(), addr) || !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable naming %s", err, addr)
	}
	if _, err := esdb.Open(ctx, "not a url ::"); err == nil {
		t.Fatal("Open accepted a malformed connection string")
	}
}

// TestSystemEventsHidden checks that system events in $all are skipped by
// ReadAll, HeadPosition and SubscribeAll.
func TestSystemEventsHidden(t *testing.T) {
	srv, cs := esdbtest.StartServer(t)
	s := open(t, cs)
	ctx := t.Context()
	if head, err := s.HeadPosition(ctx); err != nil || head != 0 {
		t.Fatalf("head %d, err %v on a log of system events only", head, err)
	}
	var want []eventstore.AppendResult
	for i := range 3 {
		srv.AppendSystemEvent("$stats-x", "$statistics-collected")
		res, err := s.Append(ctx, fmt.Sprintf("s-%d", i), eventstore.NoStream, []eventstore.EventData{{ID: uuid.New(), Type: "T", Data: []byte(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res)
	}
	for range 100 { // a tail of system events longer than a HeadPosition page
		srv.AppendSystemEvent("$stats-x", "$statistics-collected")
	}
	all, err := s.ReadAll(ctx, 0, 0)
	if err != nil || len(all) != 3 {
		t.Fatalf("ReadAll: %d events, err %v", len(all), err)
	}
	for i, e := range all {
		if e.Position != want[i].Position {
			t.Fatalf("event %d at %d, want %d", i, e.Position, want[i].Position)
		}
	}
	if page, err := s.ReadAll(ctx, 0, 1); err != nil || len(page) != 1 || page[0].Position != want[0].Position {
		t.Fatalf("ReadAll limit 1: %+v, %v", page, err)
	}
	if head, err := s.HeadPosition(ctx); err != nil || head != want[2].Position {
		t.Fatalf("head %d, err %v, want %d", head, err, want[2].Position)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got []uint64
	err = s.SubscribeAll(sctx, 0, func(_ context.Context, e eventstore.RecordedEvent) error {
		got = append(got, e.Position)
		if len(got) == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || len(got) != 3 || got[2] != want[2].Position {
		t.Fatalf("SubscribeAll: %v, %v", got, err)
	}
}

// TestSubscriptionSurvivesServerRestart stops the emulator under a live
// subscription and serves the same log again on the same port: the
// subscription resubscribes and goes on from where it was, without
// duplicates or gaps.
func TestSubscriptionSurvivesServerRestart(t *testing.T) {
	// 0: the gRPC connection reconnects by itself; 2s: longer than the
	// client's discovery attempts (10 × 100 ms), after which the v4 client
	// closes itself for good and the store must replace it.
	for _, down := range []time.Duration{0, 2 * time.Second} {
		t.Run(down.String(), func(t *testing.T) {
			t.Parallel()
			testRestart(t, down)
		})
	}
}

func testRestart(t *testing.T, down time.Duration) {
	srv := esdbtest.New()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	go srv.Serve(l)
	s := open(t, esdbtest.ConnectionString(addr))
	ctx := t.Context()
	appendOne := func(i int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := s.Append(ctx, "s", eventstore.Any, []eventstore.EventData{{ID: uuid.New(), Type: "T", Data: fmt.Appendf(nil, `{"n":%d}`, i)}})
			if err == nil {
				return
			}
			if !errors.Is(err, eventstore.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("append %d: %v", i, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := range 5 {
		appendOne(i)
	}
	got := make(chan eventstore.RecordedEvent, 100)
	sctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- s.SubscribeAll(sctx, 0, func(_ context.Context, e eventstore.RecordedEvent) error {
			got <- e
			return nil
		})
	}()
	var seen []eventstore.RecordedEvent
	recv := func(n int) {
		t.Helper()
		for len(seen) < n {
			select {
			case e := <-got:
				seen = append(seen, e)
			case <-time.After(30 * time.Second):
				t.Fatalf("received %d of %d events", len(seen), n)
			}
		}
	}
	recv(5)

	srv.Stop() // drops the subscription and the connection
	time.Sleep(down)
	if down > 0 {
		if err := s.Ping(ctx); !errors.Is(err, eventstore.ErrUnavailable) {
			t.Fatalf("Ping with the server down: %v, want ErrUnavailable", err)
		}
	}
	l2, err := listenAgain(addr)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := srv.Restarted()
	go srv2.Serve(l2)
	t.Cleanup(srv2.Stop)
	for i := 5; i < 10; i++ {
		appendOne(i)
	}
	recv(10)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("SubscribeAll ended with %v", err)
	}
	select {
	case e := <-got:
		t.Fatalf("extra event %+v", e)
	default:
	}
	for i, e := range seen {
		if e.Revision != uint64(i) {
			t.Fatalf("event %d has revision %d", i, e.Revision)
		}
	}
}

func listenAgain(addr string) (net.Listener, error) {
	var err error
	for range 50 {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			return l, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}
