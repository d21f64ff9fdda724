// Package esdbtest is an in-process EventStoreDB PROTOCOL EMULATOR FOR TESTS.
// It is not EventStoreDB: it speaks the subset of the EventStoreDB gRPC
// protocol that github.com/EventStore/EventStore-Client-Go/v4 uses for
// appends, stream and $all reads and catch-up subscriptions, over an
// in-memory log, so that the esdb adapter can be tested with the real
// client where no EventStoreDB server can run. Passing against it is
// evidence, not proof, of working against a real server (see ESDB_URL in the
// esdb package's tests).
//
// What it implements (semantics as documented for EventStoreDB 24.10, and
// as its source does it where the documentation is silent):
//   - streams.Append: expected revision any / no_stream / stream_exists /
//     exact; idempotent re-append as the server's IndexWriter.CheckCommit
//     decides it: for an exact or no_stream expectation behind the stream,
//     the same ids stored right after the expected revision (durable); for
//     any / stream_exists, every id found, for this stream, in a FIFO cache
//     of recently committed event ids bounded like the server's (8 MiB by
//     default, [WithCommittedEventsCache]; emptied by a restart). Such a
//     retry succeeds without writing and answers the original revision and
//     position; a partial match ("corrupted idempotency") is a
//     wrong-expected-version answer. Event ids are NOT unique across the
//     store or across a stream: an id already used elsewhere is written
//     again. An append larger than MaxAppendSize (1 MiB by default,
//     [WithMaxAppendSize]; an event counts its data, its metadata and twice
//     its type's length) is refused with InvalidArgument, and an append to
//     a tombstoned stream with the stream-deleted exception.
//   - streams.Tombstone (hard delete): the stream can be neither read nor
//     appended to again; a $streamDeleted event is written to $all.
//   - streams.Read of a stream forward/backward from start/end/revision with
//     a count (stream_not_found for a stream without events; a backward
//     read from past the end starts at the last event, as the server's
//     paging does), of $all forward/backward from start/end/position with a
//     count, and subscriptions (catch-up, then caught_up, then live) to $all
//     (with the stream-id or event-type filter, prefix or regex, and
//     checkpoints) and to a stream.
//   - gossip.Read: one member, alive, leader, at the address it serves on,
//     so that esdb+discover:// connection strings work.
//   - server_features.GetSupportedMethods (version and method list).
//   - TLS ([WithTLS]; [NewCA] makes a throwaway CA and server certificate)
//     and basic-auth credentials ([WithUsers]): with users configured, a
//     call with wrong credentials is Unauthenticated, an anonymous stream
//     operation and a non-admin's read of $all or of a system stream are
//     PermissionDenied with the access-denied exception, as on a secure
//     server with the default ACLs. Without users, everything is allowed
//     (an insecure server).
//   - keepalive: the client's pings (every 10 s, also with no call open)
//     are accepted, as the server accepts them; gRPC-Go's default policy
//     would answer the third with GOAWAY.
//   - faults: [Server.SetAppendFault] makes appends time out, before or
//     after they commit, as the server does when a write outlives its
//     write timeout.
//
// Not implemented (answers Unimplemented): BatchAppend, Delete (soft),
// persistent subscriptions, projections, users, operations, link
// resolution, stream metadata semantics ($maxAge, ACLs...),
// first/last_stream_position control messages.
//
// Positions: every event gets one log position, used as both its prepare and
// its commit position, strictly increasing in $all order with gaps (like
// EventStoreDB's byte offsets). Real EventStoreDB gives the events of one
// multi-event append the same commit position and distinct prepare
// positions. Reading $all from a position is inclusive; subscribing to $all
// from a position delivers only what comes strictly after it. The log starts
// with one system event ($statistics-collected in a $stats- stream), and
// [Server.AppendSystemEvent] adds more, so that readers must skip them as
// they must on a real server.
package esdbtest

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Version is the EventStoreDB version the emulator claims.
const Version = "24.10.0"

type record struct {
	id       uuid.UUID
	stream   string
	revision uint64
	position uint64
	typ      string
	ctype    string
	created  time.Time
	data     []byte
	meta     []byte
}

// Server is the emulator. Its zero value is not usable: call New.
type Server struct {
	cfg config

	mu      sync.Mutex
	log     []*record
	streams map[string][]*record
	deleted map[string]bool // tombstoned streams
	recent  recentIDs       // the server's committed-events cache
	nextPos uint64
	changed chan struct{} // closed and replaced on every write
	subs    uint64
	fault   func(stream string) Fault
	addr    string // where it serves, for gossip

	instance uuid.UUID
	grpc     *grpc.Server

	api.UnimplementedStreamsServer
	features featuresServer
	gossip   gossipServer
}

type featuresServer struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

type gossipServer struct {
	gossip.UnimplementedGossipServer
	s *Server
}

// Option configures New.
type Option func(*config)

type config struct {
	users         map[string]User
	cert          *tls.Certificate
	caFile        string
	maxAppendSize int
	cacheBytes    int
}

// User is an account of an emulator run with WithUsers. Admin puts it in
// $admins, the only group the default ACLs let read $all and system
// streams.
type User struct {
	Login, Password string
	Admin           bool
}

// WithUsers turns authentication on, as on a secure server: calls must
// carry the credentials of one of users (basic auth), anonymous stream
// operations are denied, and only admins read $all. The client sends
// credentials only over TLS: use it with WithTLS.
func WithUsers(users ...User) Option {
	return func(c *config) {
		c.users = make(map[string]User, len(users))
		for _, u := range users {
			c.users[u.Login] = u
		}
	}
}

// WithTLS serves over TLS with cert. caFile, the PEM file of the CA that
// signed it, goes into the connection strings the emulator gives
// (tlsCAFile).
func WithTLS(cert tls.Certificate, caFile string) Option {
	return func(c *config) { c.cert, c.caFile = &cert, caFile }
}

// WithMaxAppendSize sets the server's MaxAppendSize (bytes, default 1 MiB).
func WithMaxAppendSize(n int) Option { return func(c *config) { c.maxAppendSize = n } }

// WithCommittedEventsCache sets the size of the cache of recently committed
// event ids that recognises retries with expected revision any (bytes,
// default 8 MiB as on the server).
func WithCommittedEventsCache(bytes int) Option { return func(c *config) { c.cacheBytes = bytes } }

// Server defaults (EventStoreDB 24.10).
const (
	DefaultMaxAppendSize        = 1 << 20
	DefaultCommittedEventsCache = 8 << 20
)

// New returns an emulator with an empty user log (one system event).
func New(opts ...Option) *Server {
	cfg := config{maxAppendSize: DefaultMaxAppendSize, cacheBytes: DefaultCommittedEventsCache}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		cfg:      cfg,
		streams:  map[string][]*record{},
		deleted:  map[string]bool{},
		recent:   recentIDs{limit: cfg.cacheBytes, ids: map[uuid.UUID][]*record{}},
		nextPos:  1,
		changed:  make(chan struct{}),
		instance: uuid.New(),
	}
	s.AppendSystemEvent("$stats-127.0.0.1:2113", "$statistics-collected")
	gopts := []grpc.ServerOption{
		// The client pings every 10 s (keepAliveInterval), also on an idle
		// connection; the server accepts any ping rate. gRPC-Go's default
		// policy (5 min) would send GOAWAY after the third ping.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Nanosecond, PermitWithoutStream: true}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := s.authenticate(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := s.authenticate(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
	if cfg.cert != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cfg.cert}, MinVersion: tls.VersionTLS12})))
	}
	s.grpc = grpc.NewServer(gopts...)
	s.gossip.s = s
	api.RegisterStreamsServer(s.grpc, s)
	serverfeatures.RegisterServerFeaturesServer(s.grpc, &s.features)
	gossip.RegisterGossipServer(s.grpc, &s.gossip)
	return s
}

// Restarted returns a new Server holding a copy of this one's log, as if
// the server had restarted: Stop this one, then Serve the new one (a
// stopped Server cannot serve again). The cache of recently committed ids
// starts empty, as on a restarted server.
func (s *Server) Restarted() *Server {
	n := New(func(c *config) { *c = s.cfg })
	s.mu.Lock()
	defer s.mu.Unlock()
	n.log = append([]*record(nil), s.log...)
	n.streams = make(map[string][]*record, len(s.streams))
	for k, v := range s.streams {
		n.streams[k] = append([]*record(nil), v...)
	}
	for k, v := range s.deleted {
		n.deleted[k] = v
	}
	n.nextPos = s.nextPos
	n.instance = s.instance
	return n
}

// Serve serves the protocol on l until Stop. Gossip answers with l's
// address.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	s.addr = l.Addr().String()
	s.mu.Unlock()
	return s.grpc.Serve(l)
}

// Stop closes the listeners and every open call (subscriptions end with an
// error on the client side).
func (s *Server) Stop() { s.grpc.Stop() }

// Start serves a new emulator on a free 127.0.0.1 port until the test ends
// and returns its connection string.
func Start(t testing.TB, opts ...Option) string {
	t.Helper()
	_, cs := StartServer(t, opts...)
	return cs
}

// StartServer is Start that also returns the Server.
func StartServer(t testing.TB, opts ...Option) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("esdbtest: listen: %v", err)
	}
	s := New(opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return s, s.ConnectionString(l.Addr().String())
}

// ConnectionString is the insecure connection string of an emulator
// listening on addr.
func ConnectionString(addr string) string { return "esdb://" + addr + "?tls=false" }

// ConnectionString is the connection string of this emulator listening on
// addr, without credentials: insecure, or with tls=true and tlsCAFile if it
// serves TLS.
func (s *Server) ConnectionString(addr string) string {
	if s.cfg.cert == nil {
		return ConnectionString(addr)
	}
	return "esdb://" + addr + "?tls=true&tlsCAFile=" + url.QueryEscape(s.cfg.caFile)
}

// Fault is what the emulator does with an append instead of answering it.
type Fault int

const (
	// NoFault answers the append normally.
	NoFault Fault = iota
	// TimeoutAfterCommit writes the append, then answers as the server
	// does when the commit outlives its write timeout (Aborted, "Operation
	// timed out"): the client cannot tell it was written.
	TimeoutAfterCommit
	// TimeoutBeforeCommit answers the same timeout without writing.
	TimeoutBeforeCommit
)

// SetAppendFault makes the emulator ask f what to do with each append to
// stream (nil: answer every append normally). f is called before the
// append is decided, outside the emulator's lock: it may use the emulator
// (append through another client, to race the faulty append).
func (s *Server) SetAppendFault(f func(stream string) Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// AppendSystemEvent appends a system event (its stream and type should
// start with "$") to the log, with no expected-revision check.
func (s *Server) AppendSystemEvent(stream, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(stream, []*api.AppendReq_ProposedMessage{{
		Id:       toProtoUUID(uuid.New()),
		Metadata: map[string]string{"type": typ, "content-type": "application/json"},
		Data:     []byte(`{}`),
	}}, nil)
}

// StoredEvent is an event as the emulator stores it, for Tamper.
type StoredEvent struct {
	ID       uuid.UUID
	Stream   string
	Revision uint64
	Position uint64
	Type     string
	Data     []byte
	Metadata []byte
}

// Tamper rewrites the stored log, as someone with access to a server's
// files might: edit gets a copy of every event of the log in log order
// and returns the log the emulator serves from then on (events edited,
// removed, added or moved; positions must keep increasing). A stream's
// events are its events of the new log, in log order. Test hook: no
// EventStoreDB operation does this.
func (s *Server) Tamper(edit func([]StoredEvent) []StoredEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byID := map[uuid.UUID]*record{}
	in := make([]StoredEvent, 0, len(s.log))
	for _, r := range s.log {
		byID[r.id] = r
		in = append(in, StoredEvent{ID: r.id, Stream: r.stream, Revision: r.revision, Position: r.position, Type: r.typ,
			Data: append([]byte(nil), r.data...), Metadata: append([]byte(nil), r.meta...)})
	}
	out := edit(in)
	// Readers hold slices of the old records without the lock: build new
	// ones rather than change those.
	s.log = make([]*record, 0, len(out))
	s.streams = map[string][]*record{}
	for _, e := range out {
		r := &record{id: e.ID, stream: e.Stream, revision: e.Revision, position: e.Position, typ: e.Type,
			ctype: "application/json", created: time.Now().UTC(), data: e.Data, meta: e.Metadata}
		if old := byID[e.ID]; old != nil {
			r.ctype, r.created = old.ctype, old.created
		}
		s.log = append(s.log, r)
		if r.revision != math.MaxInt64 {
			s.streams[r.stream] = append(s.streams[r.stream], r)
		}
		s.nextPos = max(s.nextPos, r.position+1)
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// tombstoneType is the type of the event a hard delete writes.
const tombstoneType = "$streamDeleted"

// write appends msgs to stream; s.mu must be held.
func (s *Server) write(stream string, msgs []*api.AppendReq_ProposedMessage, ids []uuid.UUID) []*record {
	now := time.Now().UTC()
	out := make([]*record, 0, len(msgs))
	for i, m := range msgs {
		id := uuid.Nil
		if ids != nil {
			id = ids[i]
		} else {
			id, _ = fromProtoUUID(m.GetId())
		}
		rev := uint64(len(s.streams[stream]))
		tombstone := m.GetMetadata()["type"] == tombstoneType
		if tombstone {
			// Not a revision of the stream: its event number is
			// long.MaxValue on the server.
			rev = math.MaxInt64
		}
		r := &record{
			id:       id,
			stream:   stream,
			revision: rev,
			position: s.nextPos,
			typ:      m.GetMetadata()["type"],
			ctype:    m.GetMetadata()["content-type"],
			created:  now,
			data:     append([]byte(nil), m.GetData()...),
			meta:     append([]byte(nil), m.GetCustomMetadata()...),
		}
		// A log position that grows like a byte offset.
		s.nextPos += 64 + uint64(len(r.data)+len(r.meta)+len(stream)+len(r.typ))
		s.log = append(s.log, r)
		if !tombstone {
			s.streams[stream] = append(s.streams[stream], r)
		}
		s.recent.put(r)
		out = append(out, r)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return out
}

// recentIDs is the server's committed-events cache (IndexWriter's
// BoundedCache): the ids of recently committed events, first in first out,
// bounded in bytes. It is what recognises a retry with expected revision
// any. s.mu must be held.
type recentIDs struct {
	limit int
	size  int
	queue []*record
	ids   map[uuid.UUID][]*record
}

// entrySize is the server's estimate of an entry: the id, the event
// number, a reference and the stream name (UTF-16).
func entrySize(r *record) int { return 16 + 4 + 8 + 2*len(r.stream) }

func (c *recentIDs) put(r *record) {
	c.queue = append(c.queue, r)
	c.ids[r.id] = append(c.ids[r.id], r)
	c.size += entrySize(r)
	for c.size > c.limit && len(c.queue) > 0 {
		old := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.size -= entrySize(old)
		rs := c.ids[old.id]
		for i, x := range rs {
			if x == old {
				rs = append(rs[:i:i], rs[i+1:]...)
				break
			}
		}
		if len(rs) == 0 {
			delete(c.ids, old.id)
		} else {
			c.ids[old.id] = rs
		}
	}
}

// find is the most recent cached event of stream with id, or nil.
func (c *recentIDs) find(id uuid.UUID, stream string) *record {
	rs := c.ids[id]
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].stream == stream {
			return rs[i]
		}
	}
	return nil
}

// ---- authentication and authorization ----

type principal struct {
	login string
	admin bool
	anon  bool
}

// authenticate checks a call's credentials as the server's authentication
// middleware does: wrong credentials are Unauthenticated; none is the
// anonymous user.
func (s *Server) authenticate(ctx context.Context) error {
	_, err := s.principal(ctx)
	return err
}

func (s *Server) principal(ctx context.Context) (principal, error) {
	if s.cfg.users == nil {
		return principal{admin: true}, nil // insecure: no authentication
	}
	md, _ := metadata.FromIncomingContext(ctx)
	auth := md.Get("authorization")
	if len(auth) == 0 {
		return principal{anon: true}, nil
	}
	unauthenticated := status.Error(codes.Unauthenticated, "Unauthenticated")
	enc, ok := strings.CutPrefix(auth[0], "Basic ")
	if !ok {
		return principal{}, unauthenticated
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return principal{}, unauthenticated
	}
	login, password, _ := strings.Cut(string(raw), ":")
	u, ok := s.cfg.users[login]
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
		return principal{}, unauthenticated
	}
	return principal{login: login, admin: u.Admin}, nil
}

// accessDenied is the server's RpcExceptions.AccessDenied.
func accessDenied(ctx context.Context) error {
	_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "access-denied"))
	return status.Error(codes.PermissionDenied, "Access Denied")
}

// streamDeleted is the server's RpcExceptions.StreamDeleted.
func streamDeleted(ctx context.Context, name string) error {
	_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "stream-deleted", "stream-name", name))
	return status.Errorf(codes.FailedPrecondition, "Event stream '%s' is deleted.", name)
}

// authorize applies the default ACLs of a secure server to an operation on
// stream ("$all" for $all): anonymous stream access is off; user streams
// are open to every authenticated user; $all and system streams to $admins
// only; nobody writes to $all.
func (s *Server) authorize(ctx context.Context, stream string, write bool) error {
	p, err := s.principal(ctx)
	if err != nil {
		return err
	}
	switch {
	case stream == "$all" && write:
		return accessDenied(ctx)
	case p.admin:
		return nil
	case p.anon:
		return accessDenied(ctx)
	case strings.HasPrefix(stream, "$"):
		return accessDenied(ctx)
	}
	return nil
}

// ---- gossip ----

// Read implements gossip.Read: one member, alive and leader, at the address
// the emulator serves on, as a single-node server answers.
func (g *gossipServer) Read(context.Context, *shared.Empty) (*gossip.ClusterInfo, error) {
	g.s.mu.Lock()
	addr := g.s.addr
	g.s.mu.Unlock()
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "Server Is Not Ready")
	}
	port, err := strconv.ParseUint(portStr, 10, 32)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "Server Is Not Ready")
	}
	return &gossip.ClusterInfo{Members: []*gossip.MemberInfo{{
		InstanceId: toProtoUUID(g.s.instance),
		// .NET ticks since the Unix epoch, as the server sends them.
		TimeStamp:    time.Now().UnixNano() / 100,
		State:        gossip.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossip.EndPoint{Address: host, Port: uint32(port)},
	}}}, nil
}

// ---- server features ----

func (*featuresServer) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	const svc = "event_store.client.streams.streams"
	return &serverfeatures.SupportedMethods{
		EventStoreServerVersion: Version,
		Methods: []*serverfeatures.SupportedMethod{
			{ServiceName: svc, MethodName: "read"},
			{ServiceName: svc, MethodName: "append"},
		},
	}, nil
}

// ---- append ----

const (
	expAny          = -2
	expNoStream     = -1
	expStreamExists = -4
)

// Append implements streams.Append.
func (s *Server) Append(stream api.Streams_AppendServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "first append message must carry the options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" {
		return status.Error(codes.InvalidArgument, "stream name is empty")
	}
	var expected int64
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Any:
		expected = expAny
	case *api.AppendReq_Options_NoStream:
		expected = expNoStream
	case *api.AppendReq_Options_StreamExists:
		expected = expStreamExists
	case *api.AppendReq_Options_Revision:
		expected = int64(e.Revision)
	default:
		return status.Error(codes.InvalidArgument, "expected stream revision is missing")
	}
	ctx := stream.Context()
	if err := s.authorize(ctx, name, true); err != nil {
		// The rest of the request is read first: answered before the
		// client has sent it all, the client's send fails with a bare EOF
		// instead of this status (a race EventStore-Client-Go loses).
		for {
			if _, rerr := stream.Recv(); rerr != nil {
				break
			}
		}
		return err
	}
	var msgs []*api.AppendReq_ProposedMessage
	var ids []uuid.UUID
	size := 0
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		m := req.GetProposedMessage()
		if m == nil {
			return status.Error(codes.InvalidArgument, "append message without a proposed message")
		}
		id, err := fromProtoUUID(m.GetId())
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		if m.GetMetadata()["type"] == "" {
			return status.Error(codes.InvalidArgument, "event type is missing")
		}
		// Event.SizeOnDisk: data, metadata and the type in UTF-16.
		size += len(m.GetData()) + len(m.GetCustomMetadata()) + 2*len(m.GetMetadata()["type"])
		if size > s.cfg.maxAppendSize {
			_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(s.cfg.maxAppendSize)))
			return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", s.cfg.maxAppendSize)
		}
		msgs = append(msgs, m)
		ids = append(ids, id)
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	s.mu.Lock()
	faultOf := s.fault
	s.mu.Unlock()
	fault := NoFault
	if faultOf != nil {
		fault = faultOf(name)
	}
	// The server's answer when a write outlives its timeout
	// (RpcExceptions.Timeout for a commit or prepare timeout).
	timeout := status.Error(codes.Aborted, "Operation timed out: Commit timeout.")
	if fault == TimeoutBeforeCommit {
		return timeout
	}
	resp, deleted := s.appendLocked(name, expected, msgs, ids)
	switch {
	case fault == TimeoutAfterCommit:
		return timeout
	case deleted:
		return streamDeleted(ctx, name)
	}
	return stream.SendAndClose(resp)
}

// appendLocked decides and makes an append; deleted reports an append to a
// tombstoned stream (nothing written, no answer).
func (s *Server) appendLocked(name string, expected int64, msgs []*api.AppendReq_ProposedMessage, ids []uuid.UUID) (_ *api.AppendResp, deleted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted[name] {
		return nil, true
	}
	evs := s.streams[name]
	cur := int64(len(evs)) - 1

	wrong := func() *api.AppendResp {
		w := &api.AppendResp_WrongExpectedVersion{}
		if cur < 0 {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
			w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_NoStream_20_6_0{NoStream_20_6_0: &shared.Empty{}}
		} else {
			w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(cur)}
			w.CurrentRevisionOption_20_6_0 = &api.AppendResp_WrongExpectedVersion_CurrentRevision_20_6_0{CurrentRevision_20_6_0: uint64(cur)}
		}
		switch expected {
		case expAny:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
		case expNoStream:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
		case expStreamExists:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
		default:
			w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(expected)}
		}
		return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
	}
	success := func(last *record) *api.AppendResp {
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
			CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
			PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
				CommitPosition: last.position, PreparePosition: last.position,
			}},
		}}}
	}
	successNoEvents := func() *api.AppendResp {
		sc := &api.AppendResp_Success{PositionOption: &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}}}
		if cur < 0 {
			sc.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
		} else {
			sc.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(cur)}
		}
		return &api.AppendResp{Result: &api.AppendResp_Success_{Success: sc}}
	}

	if expected == expStreamExists {
		if cur < 0 {
			return wrong(), false
		}
		expected = expAny
	}
	if len(ids) == 0 {
		// EventStoreDB checks the expectation of an empty append too.
		if expected >= expNoStream && expected != cur {
			return wrong(), false
		}
		return successNoEvents(), false
	}
	switch {
	case expected == expAny:
		// The server's weak idempotency check: idempotent if every id is
		// in the recently-committed cache for this stream; a new write if
		// the first is not; corrupted idempotency if a later one is not.
		var last *record
		for i, id := range ids {
			r := s.recent.find(id, name)
			if r == nil {
				if i == 0 {
					break
				}
				return wrong(), false
			}
			last = r
		}
		if last != nil {
			return success(last), false
		}
	case expected == cur:
		// a new write
	case expected < cur:
		// The strong check: the ids stored right after expected, read
		// from the stream (durable).
		var last *record
		for i, id := range ids {
			rev := expected + 1 + int64(i)
			if rev > cur || evs[rev].id != id {
				return wrong(), false // wrong expected version, or corrupted idempotency
			}
			last = evs[rev]
		}
		return success(last), false
	default:
		return wrong(), false
	}
	recs := s.write(name, msgs, ids)
	return success(recs[len(recs)-1]), false
}

// Tombstone implements streams.Tombstone (a hard delete): the stream's
// expected revision is checked as for an append, a $streamDeleted event is
// written to $all, and the stream can be neither read nor written again.
func (s *Server) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	opts := req.GetOptions()
	name := string(opts.GetStreamIdentifier().GetStreamName())
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "stream name is empty")
	}
	if err := s.authorize(ctx, name, true); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted[name] {
		return nil, streamDeleted(ctx, name)
	}
	cur := int64(len(s.streams[name])) - 1
	ok := true
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.TombstoneReq_Options_NoStream:
		ok = cur < 0
	case *api.TombstoneReq_Options_StreamExists:
		ok = cur >= 0
	case *api.TombstoneReq_Options_Revision:
		ok = int64(e.Revision) == cur
	}
	if !ok {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("exception", "wrong-expected-version", "stream-name", name))
		return nil, status.Errorf(codes.FailedPrecondition, "Delete failed due to WrongExpectedVersion. Stream: %s, Actual version: %d", name, cur)
	}
	rec := s.write(name, []*api.AppendReq_ProposedMessage{{
		Id:       toProtoUUID(uuid.New()),
		Metadata: map[string]string{"type": tombstoneType, "content-type": "application/octet-stream"},
	}}, nil)[0]
	s.deleted[name] = true
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{
		CommitPosition: rec.position, PreparePosition: rec.position,
	}}}, nil
}

// ---- read ----

type filter struct {
	onType bool
	re     *regexp.Regexp
	prefix []string
}

func (f *filter) match(r *record) bool {
	if f == nil {
		return true
	}
	v := r.stream
	if f.onType {
		v = r.typ
	}
	if f.re != nil {
		return f.re.MatchString(v)
	}
	for _, p := range f.prefix {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// Read implements streams.Read: reads and subscriptions.
func (s *Server) Read(req *api.ReadReq, out api.Streams_ReadServer) error {
	o := req.GetOptions()
	if o == nil {
		return status.Error(codes.InvalidArgument, "read options are missing")
	}
	var f *filter
	if fo := o.GetFilter(); fo != nil {
		f = &filter{}
		var ex *api.ReadReq_Options_FilterOptions_Expression
		if e := fo.GetEventType(); e != nil {
			f.onType, ex = true, e
		} else {
			ex = fo.GetStreamIdentifier()
		}
		if ex == nil || (ex.GetRegex() == "" && len(ex.GetPrefix()) == 0) {
			return status.Error(codes.InvalidArgument, "filter without an expression")
		}
		if ex.GetRegex() != "" {
			re, err := regexp.Compile(ex.GetRegex())
			if err != nil {
				return status.Error(codes.InvalidArgument, err.Error())
			}
			f.re = re
		} else {
			f.prefix = ex.GetPrefix()
		}
	}
	backward := o.GetReadDirection() == api.ReadReq_Options_Backwards
	sub := o.GetSubscription() != nil
	if sub && backward {
		return status.Error(codes.InvalidArgument, "subscriptions read forwards")
	}
	count := o.GetCount()

	ctx := out.Context()
	if so := o.GetStream(); so != nil {
		name := string(so.GetStreamIdentifier().GetStreamName())
		if err := s.authorize(ctx, name, false); err != nil {
			return err
		}
		s.mu.Lock()
		deleted := s.deleted[name]
		s.mu.Unlock()
		if deleted {
			return streamDeleted(ctx, name)
		}
		if sub {
			return s.subscribeStream(out, name, so)
		}
		return s.readStream(out, name, so, backward, count)
	}
	ao := o.GetAll()
	if ao == nil {
		return status.Error(codes.InvalidArgument, "read of neither a stream nor $all")
	}
	if err := s.authorize(ctx, "$all", false); err != nil {
		return err
	}
	if sub {
		var checkpointEvery uint32
		if fo := o.GetFilter(); fo != nil {
			checkpointEvery = max(fo.GetMax(), 1) * max(fo.GetCheckpointIntervalMultiplier(), 1)
			if fo.GetCount() != nil {
				checkpointEvery = 0
			}
		}
		return s.subscribeAll(out, ao, f, checkpointEvery)
	}
	return s.readAll(out, ao, f, backward, count)
}

func (s *Server) readStream(out api.Streams_ReadServer, name string, so *api.ReadReq_Options_StreamOptions, backward bool, count uint64) error {
	s.mu.Lock()
	evs := s.streams[name]
	s.mu.Unlock() // records are immutable, the slice prefix never changes
	if len(evs) == 0 {
		return out.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(name)},
		}}})
	}
	last := uint64(len(evs) - 1)
	var sel []*record
	if !backward {
		from := uint64(0)
		switch so.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_End:
			from = last + 1
		case *api.ReadReq_Options_StreamOptions_Revision:
			from = so.GetRevision()
		}
		for r := from; r <= last && uint64(len(sel)) < count; r++ {
			sel = append(sel, evs[r])
		}
	} else {
		var from uint64
		switch so.GetRevisionOption().(type) {
		case *api.ReadReq_Options_StreamOptions_Start:
			from = 0
		case *api.ReadReq_Options_StreamOptions_End:
			from = last
		case *api.ReadReq_Options_StreamOptions_Revision:
			from = so.GetRevision()
		}
		// The server reads pages of the revision range below from; a page
		// past the end is empty but not the end of the stream, and the
		// next page starts at the last event (IndexReader's
		// nextEventNumber = min(start-1, last)): a backward read from past
		// the end starts at the last event.
		from = min(from, last)
		for r := from; uint64(len(sel)) < count; r-- {
			sel = append(sel, evs[r])
			if r == 0 {
				break
			}
		}
	}
	for _, r := range sel {
		if err := out.Send(eventResp(r)); err != nil {
			return err
		}
	}
	return nil
}

// allIndex is the index in s.log of the first record at or after pos
// (forward) ; s.mu must be held.
func (s *Server) allIndex(pos uint64) int {
	lo, hi := 0, len(s.log)
	for lo < hi {
		m := (lo + hi) / 2
		if s.log[m].position < pos {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (s *Server) readAll(out api.Streams_ReadServer, ao *api.ReadReq_Options_AllOptions, f *filter, backward bool, count uint64) error {
	s.mu.Lock()
	log := s.log
	var i int
	switch ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		i = 0
		if backward {
			i = -1
		}
	case *api.ReadReq_Options_AllOptions_End:
		i = len(log)
		if backward {
			i = len(log) - 1
		}
	case *api.ReadReq_Options_AllOptions_Position:
		p := ao.GetPosition().GetPreparePosition()
		i = s.allIndex(p)
		if backward {
			// EventStoreDB reads $all backward from before the position.
			i--
		}
	}
	s.mu.Unlock()
	step := 1
	if backward {
		step = -1
	}
	var sent uint64
	for ; i >= 0 && i < len(log) && sent < count; i += step {
		if !f.match(log[i]) {
			continue
		}
		if err := out.Send(eventResp(log[i])); err != nil {
			return err
		}
		sent++
	}
	return nil
}

// wait returns the records after index from, blocking until there is one.
func (s *Server) wait(ctx context.Context, from int) ([]*record, error) {
	for {
		s.mu.Lock()
		log, ch := s.log, s.changed
		s.mu.Unlock()
		if from < len(log) {
			return log[from:], nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (s *Server) confirm(out api.Streams_ReadServer) error {
	s.mu.Lock()
	s.subs++
	id := fmt.Sprintf("esdbtest-%d", s.subs)
	s.mu.Unlock()
	return out.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: id}}})
}

var caughtUp = &api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}

func (s *Server) subscribeAll(out api.Streams_ReadServer, ao *api.ReadReq_Options_AllOptions, f *filter, checkpointEvery uint32) error {
	ctx := out.Context()
	s.mu.Lock()
	var next int
	switch ao.GetAllOption().(type) {
	case *api.ReadReq_Options_AllOptions_Start:
		next = 0
	case *api.ReadReq_Options_AllOptions_End:
		next = len(s.log)
	case *api.ReadReq_Options_AllOptions_Position:
		// A subscription delivers what comes strictly after its position.
		next = s.allIndex(ao.GetPosition().GetPreparePosition() + 1)
	}
	s.mu.Unlock()
	if err := s.confirm(out); err != nil {
		return err
	}
	sentCaughtUp := false
	var scanned uint32
	for {
		s.mu.Lock()
		atEnd := next >= len(s.log)
		s.mu.Unlock()
		if atEnd && !sentCaughtUp {
			if err := out.Send(caughtUp); err != nil {
				return err
			}
			sentCaughtUp = true
		}
		recs, err := s.wait(ctx, next)
		if err != nil {
			return err
		}
		for _, r := range recs {
			next++
			if f.match(r) {
				if err := out.Send(eventResp(r)); err != nil {
					return err
				}
				continue
			}
			scanned++
			if checkpointEvery > 0 && scanned >= checkpointEvery {
				scanned = 0
				if err := out.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: &api.ReadResp_Checkpoint{
					CommitPosition: r.position, PreparePosition: r.position,
				}}}); err != nil {
					return err
				}
			}
		}
	}
}

func (s *Server) subscribeStream(out api.Streams_ReadServer, name string, so *api.ReadReq_Options_StreamOptions) error {
	ctx := out.Context()
	s.mu.Lock()
	var next uint64
	switch so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
		next = 0
	case *api.ReadReq_Options_StreamOptions_End:
		next = uint64(len(s.streams[name]))
	case *api.ReadReq_Options_StreamOptions_Revision:
		next = so.GetRevision() + 1 // strictly after
	}
	s.mu.Unlock()
	if err := s.confirm(out); err != nil {
		return err
	}
	sentCaughtUp := false
	for {
		s.mu.Lock()
		evs, ch := s.streams[name], s.changed
		s.mu.Unlock()
		if next >= uint64(len(evs)) {
			if !sentCaughtUp {
				if err := out.Send(caughtUp); err != nil {
					return err
				}
				sentCaughtUp = true
			}
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			}
		}
		for ; next < uint64(len(evs)); next++ {
			if err := out.Send(eventResp(evs[next])); err != nil {
				return err
			}
		}
	}
}

func eventResp(r *record) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               toProtoUUID(r.id),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision:   r.revision,
			PreparePosition:  r.position,
			CommitPosition:   r.position,
			Metadata: map[string]string{
				"type":         r.typ,
				"content-type": r.ctype,
				// .NET ticks (100 ns) since the Unix epoch, as the client expects.
				"created": strconv.FormatInt(r.created.UnixNano()/100, 10),
			},
			CustomMetadata: r.meta,
			Data:           r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.position},
	}}}
}

func toProtoUUID(id uuid.UUID) *shared.UUID {
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(beUint64(id[:8])),
		LeastSignificantBits: int64(beUint64(id[8:])),
	}}}
}

func fromProtoUUID(u *shared.UUID) (uuid.UUID, error) {
	if st := u.GetStructured(); st != nil {
		var id uuid.UUID
		putBeUint64(id[:8], uint64(st.GetMostSignificantBits()))
		putBeUint64(id[8:], uint64(st.GetLeastSignificantBits()))
		return id, nil
	}
	if str := u.GetString_(); str != "" {
		return uuid.Parse(str)
	}
	return uuid.Nil, fmt.Errorf("event id is missing")
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, x := range b[:8] {
		v = v<<8 | uint64(x)
	}
	return v
}

func putBeUint64(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}
