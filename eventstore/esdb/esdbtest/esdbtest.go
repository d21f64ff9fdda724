// Package esdbtest is an in-process EventStoreDB PROTOCOL EMULATOR FOR TESTS.
// It is not EventStoreDB: it speaks the subset of the EventStoreDB gRPC
// protocol that github.com/EventStore/EventStore-Client-Go/v4 uses for
// appends, stream and $all reads and catch-up subscriptions, over an
// in-memory log, so that the esdb adapter can be tested with the real
// client where no EventStoreDB server can run. Passing against it is
// evidence, not proof, of working against a real server (see ESDB_URL in the
// esdb package's tests).
//
// What it implements (semantics as documented for EventStoreDB):
//   - streams.Append: expected revision any / no_stream / stream_exists /
//     exact; idempotent re-append (for an exact or no_stream expectation:
//     the same ids already stored right after the expected revision; for
//     any / stream_exists: the first id already stored in this stream and
//     the rest following it) succeeds without writing and answers with the
//     original revision and position; a partial match ("corrupted
//     idempotency") is a wrong-expected-version answer, as in EventStoreDB.
//     Event ids are NOT unique across the store or across a stream: as in
//     EventStoreDB, an id already used elsewhere is written again.
//   - streams.Read of a stream forward/backward from start/end/revision with
//     a count (stream_not_found for a stream without events), of $all
//     forward/backward from start/end/position with a count, and
//     subscriptions (catch-up, then caught_up, then live) to $all (with the
//     stream-id or event-type filter, prefix or regex, and checkpoints) and
//     to a stream.
//   - server_features.GetSupportedMethods (version and method list).
//
// Not implemented (answers Unimplemented): BatchAppend, Delete, Tombstone,
// persistent subscriptions, projections, gossip, users, operations,
// authentication (credentials are ignored), TLS, link resolution, stream
// metadata semantics ($maxAge, ACLs...), first/last_stream_position control
// messages.
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
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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
	mu      sync.Mutex
	log     []*record
	streams map[string][]*record
	byID    map[uuid.UUID][]*record // EventStoreDB's committed-events cache, never evicted
	nextPos uint64
	changed chan struct{} // closed and replaced on every write
	subs    uint64

	grpc *grpc.Server

	api.UnimplementedStreamsServer
	features featuresServer
}

type featuresServer struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

// New returns an emulator with an empty user log (one system event).
func New() *Server {
	s := &Server{
		streams: map[string][]*record{},
		byID:    map[uuid.UUID][]*record{},
		nextPos: 1,
		changed: make(chan struct{}),
	}
	s.AppendSystemEvent("$stats-127.0.0.1:2113", "$statistics-collected")
	s.grpc = grpc.NewServer()
	api.RegisterStreamsServer(s.grpc, s)
	serverfeatures.RegisterServerFeaturesServer(s.grpc, &s.features)
	return s
}

// Restarted returns a new Server holding a copy of this one's log, as if
// the server had restarted: Stop this one, then Serve the new one (a
// stopped Server cannot serve again).
func (s *Server) Restarted() *Server {
	n := New()
	s.mu.Lock()
	defer s.mu.Unlock()
	n.log = append([]*record(nil), s.log...)
	n.streams = make(map[string][]*record, len(s.streams))
	for k, v := range s.streams {
		n.streams[k] = append([]*record(nil), v...)
	}
	n.byID = make(map[uuid.UUID][]*record, len(s.byID))
	for k, v := range s.byID {
		n.byID[k] = append([]*record(nil), v...)
	}
	n.nextPos = s.nextPos
	return n
}

// Serve serves the protocol on l until Stop.
func (s *Server) Serve(l net.Listener) error { return s.grpc.Serve(l) }

// Stop closes the listeners and every open call (subscriptions end with an
// error on the client side).
func (s *Server) Stop() { s.grpc.Stop() }

// Start serves a new emulator on a free 127.0.0.1 port until the test ends
// and returns its insecure connection string.
func Start(t testing.TB) string {
	t.Helper()
	_, cs := StartServer(t)
	return cs
}

// StartServer is Start that also returns the Server.
func StartServer(t testing.TB) (*Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("esdbtest: listen: %v", err)
	}
	s := New()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return s, ConnectionString(l.Addr().String())
}

// ConnectionString is the insecure connection string of an emulator
// listening on addr.
func ConnectionString(addr string) string { return "esdb://" + addr + "?tls=false" }

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
		r := &record{
			id:       id,
			stream:   stream,
			revision: uint64(len(s.streams[stream])),
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
		s.streams[stream] = append(s.streams[stream], r)
		s.byID[id] = append(s.byID[id], r)
		out = append(out, r)
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return out
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
	var msgs []*api.AppendReq_ProposedMessage
	var ids []uuid.UUID
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
		msgs = append(msgs, m)
		ids = append(ids, id)
	}
	if err := stream.Context().Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	resp := s.appendLocked(name, expected, msgs, ids)
	return stream.SendAndClose(resp)
}

func (s *Server) appendLocked(name string, expected int64, msgs []*api.AppendReq_ProposedMessage, ids []uuid.UUID) *api.AppendResp {
	s.mu.Lock()
	defer s.mu.Unlock()
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
			return wrong()
		}
		expected = expAny
	}
	if len(ids) == 0 {
		// EventStoreDB checks the expectation of an empty append too.
		if expected >= expNoStream && expected != cur {
			return wrong()
		}
		return successNoEvents()
	}
	switch {
	case expected == expAny:
		// Idempotent if the first id is stored in this stream and the
		// others follow it in order.
		start := s.findInStream(ids[0], name)
		if start == nil {
			break // a new write
		}
		var last *record
		for i, id := range ids {
			rev := start.revision + uint64(i)
			if rev >= uint64(len(evs)) || evs[rev].id != id {
				return wrong() // corrupted idempotency
			}
			last = evs[rev]
		}
		return success(last)
	case expected == cur:
		// a new write
	case expected < cur:
		var last *record
		for i, id := range ids {
			rev := expected + 1 + int64(i)
			if rev > cur || evs[rev].id != id {
				return wrong() // wrong expected version, or corrupted idempotency
			}
			last = evs[rev]
		}
		return success(last)
	default:
		return wrong()
	}
	recs := s.write(name, msgs, ids)
	return success(recs[len(recs)-1])
}

func (s *Server) findInStream(id uuid.UUID, stream string) *record {
	for _, r := range s.byID[id] {
		if r.stream == stream {
			return r
		}
	}
	return nil
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

	if so := o.GetStream(); so != nil {
		name := string(so.GetStreamIdentifier().GetStreamName())
		if sub {
			return s.subscribeStream(out, name, so)
		}
		return s.readStream(out, name, so, backward, count)
	}
	ao := o.GetAll()
	if ao == nil {
		return status.Error(codes.InvalidArgument, "read of neither a stream nor $all")
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
		// EventStoreDB reads the revision range [from-count+1, from]:
		// a from beyond the end yields only what exists in that range.
		lo := uint64(0)
		if count <= from {
			lo = from - count + 1
		}
		for r := from; ; r-- {
			if r <= last && uint64(len(sel)) < count {
				sel = append(sel, evs[r])
			}
			if r == lo || r == 0 {
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
