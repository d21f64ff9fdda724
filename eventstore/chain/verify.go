package chain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prescripto/prescripto/eventstore"
)

// StreamHead is a stream's last event at some log position: what the root
// digests.
type StreamHead struct {
	Stream   string
	Revision uint64
	// Hash is the event's chain value, recomputed from what is stored
	// (see Compute): on an intact stream, its stored hash.
	Hash Hash
}

// Root digests stream heads:
//
//	SHA-256( "prescripto.root.v1\n"
//	         || for each head, in byte order of stream names:
//	            u64(len(stream)) || stream || u64(revision) || hash (32 bytes) )
//
// The root of the log at position P is the Root of the heads of every
// stream as they were at P (each stream's last event at or before P), each
// with its chain value recomputed from the stored events, from revision 0
// (stored hashes are checked, never trusted). Each head's value thus
// covers its whole stream, and a root covers every event up to P: a
// change to any of them, stored hashes rewritten to match or not, gives
// another root. The root of an empty log is SHA-256 of the tag alone.
// Root sorts heads in place.
func Root(heads []StreamHead) Hash {
	slices.SortFunc(heads, func(a, b StreamHead) int { return strings.Compare(a.Stream, b.Stream) })
	x := newHasher()
	x.h.Reset()
	x.h.Write([]byte(rootTag))
	for _, h := range heads {
		x.u64(uint64(len(h.Stream)))
		x.h.Write([]byte(h.Stream))
		x.u64(h.Revision)
		x.h.Write(h.Hash[:])
	}
	return Hash(x.h.Sum(nil))
}

// Anchor is a root an auditor kept, with the position it was taken at.
type Anchor struct {
	Root     Hash
	Position uint64
}

func (a Anchor) String() string { return a.Root.String() + "@" + strconv.FormatUint(a.Position, 10) }

// ParseAnchor parses ROOT@POSITION (as Verify's report prints them).
func ParseAnchor(s string) (Anchor, error) {
	root, pos, ok := strings.Cut(s, "@")
	if !ok {
		return Anchor{}, errors.New("an anchor is ROOT@POSITION")
	}
	h, err := ParseHash(root)
	if err != nil {
		return Anchor{}, fmt.Errorf("an anchor is ROOT@POSITION: %w", err)
	}
	p, err := strconv.ParseUint(pos, 10, 64)
	if err != nil || p == 0 {
		return Anchor{}, errors.New("an anchor is ROOT@POSITION, POSITION a log position from 1")
	}
	return Anchor{Root: h, Position: p}, nil
}

// Options of Verify.
type Options struct {
	// UpTo is the last log position checked; 0 means the log's head when
	// Verify starts (events appended meanwhile are not checked).
	UpTo uint64
	// Anchor, when set, is checked: the root of the log at its position
	// must be its root.
	Anchor *Anchor
	// Budget bounds the time Verify spends reading; past it, Verify stops
	// after the page it is on and reports Complete false, with the root of
	// what it checked (0: no bound).
	Budget time.Duration
	// MaxListed bounds the Broken and Legacy lists (0: no bound); the
	// counts are always whole.
	MaxListed int
	// Page is how many events a read of the log brings (default 1000).
	Page int
}

// Report is Verify's answer.
type Report struct {
	// OK: complete, no broken link, and the anchor (if any) matches.
	OK bool `json:"ok"`
	// Complete: every event up to Head was checked.
	Complete bool `json:"complete"`
	// Streams and Events are the streams and events checked.
	Streams int    `json:"streams"`
	Events  uint64 `json:"events"`
	// Position is the position of the last event checked; Root the root
	// of the log at Position (see Root). Together they are an anchor.
	Position uint64 `json:"position"`
	Root     string `json:"root"`
	// Head is the position Verify was to reach (Options.UpTo, or the
	// log's head when it started).
	Head uint64 `json:"head"`
	// Broken lists the first broken link of each stream that has one, in
	// log order; BrokenStreams counts them.
	Broken        []Break `json:"broken"`
	BrokenStreams int     `json:"brokenStreams"`
	// Unhashed counts the events written before the chain (each stream's
	// unhashed events before its first hashed one); Legacy lists the
	// streams that have some, LegacyStreams counts them.
	Unhashed      uint64   `json:"unhashed"`
	Legacy        []Legacy `json:"legacy"`
	LegacyStreams int      `json:"legacyStreams"`
	// Anchor is the check of Options.Anchor (absent without one).
	Anchor *AnchorCheck `json:"anchor,omitempty"`
}

// Break is a stream's first broken link.
type Break struct {
	Stream   string `json:"stream"`
	Revision uint64 `json:"revision"`
	Position uint64 `json:"position"`
	Reason   string `json:"reason"`
}

// Legacy is a stream with events written before the chain.
type Legacy struct {
	Stream   string `json:"stream"`
	Unhashed uint64 `json:"unhashed"`
	// ChainFrom is the revision of the stream's first hashed event, where
	// its stored chain starts (nil: none yet; the next append starts it).
	ChainFrom *uint64 `json:"chainFrom"`
}

// AnchorCheck is the outcome of checking an anchor.
type AnchorCheck struct {
	Position uint64 `json:"position"`
	// Root is the anchor's root; Actual the root Verify computed at its
	// position (empty when it could not).
	Root    string `json:"root"`
	Actual  string `json:"actual"`
	Matches bool   `json:"matches"`
	Reason  string `json:"reason,omitempty"`
}

// The reasons of broken links.
const (
	ReasonHash     = "hash mismatch: the event (its type, data or metadata) was changed after it was written"
	ReasonPrevHash = "prevHash mismatch: the previous event of the stream is not the one this event was chained to (an event was deleted, inserted or reordered)"
	ReasonGap      = "revision gap" // completed with the revisions
	ReasonUnhashed = "no hash after the stream's chain started: the event was written around the chain or its chain fields were removed"
)

// streamState is what Verify keeps of each stream: the one entry per
// stream it holds while streaming the log.
type streamState struct {
	next     uint64 // the revision expected next
	value    Hash   // chain value of the last event
	chained  bool   // a hashed event was seen
	from     uint64 // revision of the first hashed event
	unhashed uint64 // unhashed events before it
	broken   bool
}

// Verify streams the log (one page of events at a time, plus one entry per
// stream) and checks every stream's chain, reporting each stream's first
// broken link:
//   - a revision other than the one after the previous event of the
//     stream (ReasonGap: deleted, inserted or reordered);
//   - a hashed event whose prevHash is not the previous event's chain
//     value (ReasonPrevHash);
//   - a hashed event whose hash is not the one recomputed from what is
//     stored (ReasonHash: edited);
//   - an unhashed event after the stream's first hashed one
//     (ReasonUnhashed).
//
// Unhashed events before a stream's first hashed one are counted, not
// broken (see the package doc). The error is the store's, or ctx's.
func Verify(ctx context.Context, store eventstore.Store, o Options) (Report, error) {
	start := time.Now()
	page := o.Page
	if page <= 0 {
		page = 1000
	}
	upTo := o.UpTo
	if upTo == 0 {
		h, err := store.HeadPosition(ctx)
		if err != nil {
			return Report{}, err
		}
		upTo = h
	}
	rep := Report{Head: upTo, Broken: []Break{}, Legacy: []Legacy{}}
	streams := map[string]*streamState{}
	var anchor *AnchorCheck
	if o.Anchor != nil {
		anchor = &AnchorCheck{Position: o.Anchor.Position, Root: o.Anchor.Root.String()}
		if o.Anchor.Position > upTo {
			anchor.Reason = fmt.Sprintf("the anchor's position %d is beyond the log's head (%d): the log lost events or the anchor is of another log", o.Anchor.Position, upTo)
		}
	}
	checkAnchor := func() {
		if anchor == nil || anchor.Reason != "" || anchor.Actual != "" {
			return
		}
		if rep.Position != o.Anchor.Position {
			anchor.Reason = fmt.Sprintf("no event at the anchor's position %d (the log goes from %d to a later one): an event was deleted or moved, or the anchor is of another log", o.Anchor.Position, rep.Position)
			return
		}
		root := rootOf(streams)
		anchor.Actual = root.String()
		anchor.Matches = root == o.Anchor.Root
		if !anchor.Matches {
			anchor.Reason = fmt.Sprintf("the root at position %d is not the anchor's: an event at or before it was changed, deleted or inserted", o.Anchor.Position)
		}
	}
	x := newHasher()
	complete := true
	after := uint64(0)
walk:
	for after < upTo {
		if o.Budget > 0 && time.Since(start) > o.Budget {
			complete = false
			break
		}
		evs, err := store.ReadAll(ctx, after, page)
		if err != nil {
			return Report{}, err
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			e := &evs[i]
			if e.Position > upTo {
				break walk
			}
			if anchor != nil && e.Position > o.Anchor.Position {
				checkAnchor()
			}
			verifyEvent(x, streams, e, &rep, o.MaxListed)
			rep.Position = e.Position
			rep.Events++
		}
		after = evs[len(evs)-1].Position
	}
	if anchor != nil && complete {
		checkAnchor()
		if anchor.Reason == "" && anchor.Actual == "" {
			anchor.Reason = fmt.Sprintf("the log ends at position %d, before the anchor's position %d", rep.Position, o.Anchor.Position)
		}
	}
	if anchor != nil && !complete && anchor.Actual == "" && anchor.Reason == "" {
		anchor.Reason = "not reached within the time budget: verify on the command line"
	}
	rep.Complete = complete
	rep.Streams = len(streams)
	rep.Root = rootOf(streams).String()
	rep.Anchor = anchor
	names := make([]string, 0)
	for name, st := range streams {
		if st.unhashed > 0 {
			names = append(names, name)
			rep.Unhashed += st.unhashed
		}
	}
	slices.Sort(names)
	rep.LegacyStreams = len(names)
	for _, name := range names {
		if o.MaxListed > 0 && len(rep.Legacy) >= o.MaxListed {
			break
		}
		st := streams[name]
		l := Legacy{Stream: name, Unhashed: st.unhashed}
		if st.chained {
			from := st.from
			l.ChainFrom = &from
		}
		rep.Legacy = append(rep.Legacy, l)
	}
	rep.OK = complete && rep.BrokenStreams == 0 && (anchor == nil || anchor.Matches)
	return rep, nil
}

// verifyEvent checks e against its stream's state and advances it.
func verifyEvent(x *hasher, streams map[string]*streamState, e *eventstore.RecordedEvent, rep *Report, maxListed int) {
	st := streams[e.StreamID]
	if st == nil {
		st = &streamState{}
		streams[e.StreamID] = st
	}
	computed, link, hashed := x.value(st.value, e)
	reason := ""
	switch {
	case e.Revision != st.next:
		reason = fmt.Sprintf("%s: expected revision %d, found %d (an event was deleted, inserted or reordered)", ReasonGap, st.next, e.Revision)
	case hashed && link.Prev != st.value:
		reason = ReasonPrevHash
	case hashed && link.Hash != computed:
		reason = ReasonHash
	case !hashed && st.chained:
		reason = ReasonUnhashed
	}
	if reason != "" && !st.broken {
		st.broken = true
		rep.BrokenStreams++
		if maxListed <= 0 || len(rep.Broken) < maxListed {
			rep.Broken = append(rep.Broken, Break{Stream: e.StreamID, Revision: e.Revision, Position: e.Position, Reason: reason})
		}
	}
	switch {
	case hashed && !st.chained:
		st.chained, st.from = true, e.Revision
	case !hashed && !st.chained:
		st.unhashed++
	}
	// The value recomputed, not the one stored: then the root changes
	// with any change to any event before it, whatever the stored hashes.
	st.value = computed
	st.next = e.Revision + 1
}

func rootOf(streams map[string]*streamState) Hash {
	heads := make([]StreamHead, 0, len(streams))
	for name, st := range streams {
		heads = append(heads, StreamHead{Stream: name, Revision: st.next - 1, Hash: st.value})
	}
	return Root(heads)
}
