package esdbtest_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"google.golang.org/grpc"

	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
)

func dial(t *testing.T, cs string) *esdb.Client {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(cs)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	cfg.MaxDiscoverAttempts = 3
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func code(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return esdb.ErrorCodeUnknown
}

// recvErr is the error of a read's first Recv (where a read's status
// arrives), nil if it delivered an event or ended.
func recvErr(rs *esdb.ReadStream, err error) error {
	if err != nil {
		return err
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// TestKeepalivePings sends HTTP/2 pings at a high rate on an idle
// connection: the emulator, like the server, answers them all. gRPC-Go's
// default policy (checked as the control) answers the third with GOAWAY,
// which dropped the client's idle subscriptions after about 31 s of its
// 10 s pings.
func TestKeepalivePings(t *testing.T) {
	t.Parallel()
	t.Run("emulator", func(t *testing.T) {
		_, cs := esdbtest.StartServer(t)
		if goaway := ping(t, strings.TrimSuffix(strings.TrimPrefix(cs, "esdb://"), "?tls=false"), 10); goaway {
			t.Fatal("the emulator answered pings with GOAWAY")
		}
	})
	t.Run("control", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g := grpc.NewServer()
		go g.Serve(l)
		t.Cleanup(g.Stop)
		if goaway := ping(t, l.Addr().String(), 10); !goaway {
			t.Fatal("gRPC-Go's default policy did not send GOAWAY: the test does not see what it should")
		}
	})
}

// ping opens a bare HTTP/2 connection to addr, sends n pings 5 ms apart
// with no stream open, and reports whether the server sent GOAWAY.
func ping(t *testing.T, addr string, n int) (goaway bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	frame := func(typ, flags byte, payload []byte) []byte {
		h := make([]byte, 9, 9+len(payload))
		h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
		h[3], h[4] = typ, flags
		return append(h, payload...)
	}
	const (
		settings = 0x4
		pingType = 0x6
		goAway   = 0x7
		ack      = 0x1
	)
	if _, err := c.Write(append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(settings, 0, nil)...)); err != nil {
		t.Fatal(err)
	}
	acks := make(chan struct{}, n)
	result := make(chan bool, 1)
	go func() {
		r := bufio.NewReader(c)
		h := make([]byte, 9)
		for {
			if _, err := io.ReadFull(r, h); err != nil {
				result <- false
				return
			}
			size := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
			payload := make([]byte, size)
			if _, err := io.ReadFull(r, payload); err != nil {
				result <- false
				return
			}
			switch h[3] {
			case goAway:
				result <- true
				return
			case settings:
				if h[4]&ack == 0 {
					_, _ = c.Write(frame(settings, ack, nil))
				}
			case pingType:
				if h[4]&ack != 0 {
					acks <- struct{}{}
				}
			}
		}
	}()
	for i := range n {
		var p [8]byte
		binary.BigEndian.PutUint64(p[:], uint64(i+1))
		if _, err := c.Write(frame(pingType, 0, p[:])); err != nil {
			break // the server closed the connection after GOAWAY
		}
		time.Sleep(5 * time.Millisecond)
	}
	deadline := time.After(10 * time.Second)
	for got := 0; got < n; {
		select {
		case <-acks:
			got++
		case g := <-result:
			return g
		case <-deadline:
			t.Fatalf("%d of %d pings answered", got, n)
		}
	}
	select {
	case g := <-result:
		return g
	case <-time.After(200 * time.Millisecond):
		return false
	}
}

func TestSecure(t *testing.T) {
	t.Parallel()
	_, addr, q := esdbtest.StartSecure(t)
	ctx := t.Context()

	// The admin, through discovery (gossip) and TLS.
	admin := dial(t, "esdb+discover://admin:changeit@"+addr+q)
	if _, err := admin.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events(uuid.New())...); err != nil {
		t.Fatalf("admin append: %v", err)
	}
	if err := recvErr(admin.ReadAll(ctx, esdb.ReadAllOptions{}, 10)); err != nil {
		t.Fatalf("admin read $all: %v", err)
	}

	// A user outside $admins: user streams yes, $all and system streams no.
	clerk := dial(t, "esdb://clerk:secret@"+addr+q)
	if _, err := clerk.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)}, events(uuid.New())...); err != nil {
		t.Fatalf("clerk append: %v", err)
	}
	if err := recvErr(clerk.ReadStream(ctx, "s", esdb.ReadStreamOptions{}, 10)); err != nil {
		t.Fatalf("clerk read: %v", err)
	}
	if err := recvErr(clerk.ReadAll(ctx, esdb.ReadAllOptions{}, 10)); code(err) != esdb.ErrorCodeAccessDenied {
		t.Fatalf("clerk read $all: %v, want access denied", err)
	}
	if _, err := clerk.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{}); code(err) != esdb.ErrorCodeAccessDenied {
		t.Fatalf("clerk subscribe to $all: %v, want access denied", err)
	}
	if err := recvErr(clerk.ReadStream(ctx, "$stats-127.0.0.1:2113", esdb.ReadStreamOptions{}, 10)); code(err) != esdb.ErrorCodeAccessDenied {
		t.Fatalf("clerk read a system stream: %v, want access denied", err)
	}

	// Anonymous: no stream access at all (gossip still answers).
	anon := dial(t, "esdb+discover://"+addr+q)
	if err := recvErr(anon.ReadAll(ctx, esdb.ReadAllOptions{}, 10)); code(err) != esdb.ErrorCodeAccessDenied {
		t.Fatalf("anonymous read $all: %v, want access denied", err)
	}
	if _, err := anon.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, events(uuid.New())...); code(err) != esdb.ErrorCodeAccessDenied {
		t.Fatalf("anonymous append: %v, want access denied", err)
	}

	// Wrong password.
	bad := dial(t, "esdb://admin:wrong@"+addr+q)
	if err := recvErr(bad.ReadAll(ctx, esdb.ReadAllOptions{}, 10)); code(err) != esdb.ErrorCodeUnauthenticated {
		t.Fatalf("wrong password: %v, want unauthenticated", err)
	}
}

func TestTombstone(t *testing.T) {
	t.Parallel()
	_, c := client(t)
	ctx := t.Context()
	if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events(uuid.New())...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TombstoneStream(ctx, "s", esdb.TombstoneStreamOptions{ExpectedRevision: esdb.Revision(0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, events(uuid.New())...); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Fatalf("append to a tombstoned stream: %v", err)
	}
	if err := recvErr(c.ReadStream(ctx, "s", esdb.ReadStreamOptions{}, 10)); code(err) != esdb.ErrorCodeStreamDeleted {
		t.Fatalf("read of a tombstoned stream: %v", err)
	}
}

func TestMaxAppendSize(t *testing.T) {
	t.Parallel()
	_, cs := esdbtest.StartServer(t, esdbtest.WithMaxAppendSize(1000))
	c := dial(t, cs)
	ev := esdb.EventData{EventID: uuid.New(), EventType: "T", ContentType: esdb.ContentTypeJson, Data: []byte(`"` + strings.Repeat("x", 1000) + `"`)}
	_, err := c.AppendToStream(t.Context(), "s", esdb.AppendToStreamOptions{}, ev)
	if err == nil || code(err) != esdb.ErrorCodeUnknown || !strings.Contains(err.Error(), "Maximum Append Size") {
		t.Fatalf("append over the limit: %v", err)
	}
	ev.Data = []byte(`{}`)
	if _, err := c.AppendToStream(t.Context(), "s", esdb.AppendToStreamOptions{}, ev); err != nil {
		t.Fatal(err)
	}
}

// TestAnyRetryWindow: a retry with expected revision any is recognised
// only while its ids are in the committed-events cache.
func TestAnyRetryWindow(t *testing.T) {
	t.Parallel()
	_, cs := esdbtest.StartServer(t, esdbtest.WithCommittedEventsCache(300)) // ten entries of stream "s"
	c := dial(t, cs)
	ctx := t.Context()
	any := esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}
	a := uuid.New()
	first, err := c.AppendToStream(ctx, "s", any, events(a)...)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := c.AppendToStream(ctx, "s", any, events(a)...); err != nil || *again != *first {
		t.Fatalf("recent retry: %+v, %v; want %+v", again, err, first)
	}
	for range 20 {
		if _, err := c.AppendToStream(ctx, "s", any, events(uuid.New())...); err != nil {
			t.Fatal(err)
		}
	}
	late, err := c.AppendToStream(ctx, "s", any, events(a)...)
	if err != nil || late.NextExpectedVersion != 21 {
		t.Fatalf("late retry: %+v, %v; want written again at 21", late, err)
	}
	// An exact expectation finds the original whatever the cache holds.
	if again, err := c.AppendToStream(ctx, "s", esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events(a)...); err != nil || *again != *first {
		t.Fatalf("no-stream retry: %+v, %v; want %+v", again, err, first)
	}
}

func TestAppendFault(t *testing.T) {
	t.Parallel()
	srv, c := client(t)
	ctx := t.Context()
	srv.SetAppendFault(func(stream string) esdbtest.Fault {
		switch stream {
		case "committed":
			return esdbtest.TimeoutAfterCommit
		case "lost":
			return esdbtest.TimeoutBeforeCommit
		}
		return esdbtest.NoFault
	})
	for _, stream := range []string{"committed", "lost"} {
		_, err := c.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.NoStream{}}, events(uuid.New())...)
		if code(err) != esdb.ErrorAborted {
			t.Fatalf("%s: %v, want the server's timeout (aborted)", stream, err)
		}
	}
	if err := recvErr(c.ReadStream(ctx, "committed", esdb.ReadStreamOptions{}, 10)); err != nil {
		t.Fatalf("the committed append is not there: %v", err)
	}
	if err := recvErr(c.ReadStream(ctx, "lost", esdb.ReadStreamOptions{}, 10)); code(err) != esdb.ErrorCodeResourceNotFound {
		t.Fatalf("the lost append: %v, want not found", err)
	}
	srv.SetAppendFault(nil)
	if _, err := c.AppendToStream(ctx, "committed", esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(0)}, events(uuid.New())...); err != nil {
		t.Fatal(err)
	}
}
