package chain_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the tamperer's own access to the file

	"github.com/prescripto/prescripto/eventstore"
	"github.com/prescripto/prescripto/eventstore/chain"
	"github.com/prescripto/prescripto/eventstore/esdb/esdbtest"
)

// row is a stored event as a tamperer with access to the store's files
// sees it.
type row struct {
	ID         uuid.UUID
	Stream     string
	Revision   uint64
	Position   uint64
	Type       string
	Data, Meta []byte
	RecordedAt int64
}

// buildLog writes doctor-1 (6 events), doctor-2 (4) and account-1 (2),
// interleaved, through the chain, and returns the anchor taken when
// doctor-1 was at revision 3 (later events were appended after it).
func buildLog(t *testing.T, s eventstore.Store) chain.Anchor {
	t.Helper()
	c := chain.Wrap(s)
	var anchor chain.Anchor
	for i := range 6 {
		for _, st := range []struct {
			name string
			n    int
		}{{"doctor-1", 6}, {"doctor-2", 4}, {"account-1", 2}} {
			if i >= st.n {
				continue
			}
			exp := eventstore.NoStream
			if i > 0 {
				exp = eventstore.Exact(uint64(i - 1))
			}
			mustAppend(t, c, st.name, exp, evt(fmt.Sprintf("%s.T%d", st.name, i), i))
		}
		if i == 3 {
			rep := mustVerifyOK(t, s)
			anchor.Position = rep.Position
			anchor.Root, _ = chain.ParseHash(rep.Root)
		}
	}
	return anchor
}

func find(rows []row, stream string, rev uint64) int {
	for i, r := range rows {
		if r.Stream == stream && r.Revision == rev {
			return i
		}
	}
	panic(fmt.Sprintf("no %s@%d", stream, rev))
}

// flip changes one byte of b after skip bytes, keeping it printable.
func flip(b []byte, skip int) []byte {
	b = bytes.Clone(b)
	for i := skip; i < len(b); i++ {
		if b[i] >= 'a' && b[i] <= 'y' || b[i] >= '0' && b[i] <= '8' {
			b[i]++
			return b
		}
	}
	panic("nothing to flip")
}

// rechain recomputes the chain fields of every event of stream from
// revision from on, as a tamperer who knows the algorithm would.
func rechain(rows []row, stream string) {
	prev := chain.Zero
	for i := range rows {
		r := &rows[i]
		if r.Stream != stream {
			continue
		}
		audited, _ := chain.Audited(r.Meta)
		meta := fmt.Appendf(nil, `{"prevHash":"%s","hash":"%s",%s`, prev, strings.Repeat("0", 64), audited[1:])
		h := chain.Compute(prev, eventstore.RecordedEvent{StreamID: r.Stream, Revision: r.Revision, Type: r.Type, Data: r.Data, Metadata: meta})
		r.Meta = fmt.Appendf(nil, `{"prevHash":"%s","hash":"%s",%s`, prev, h, audited[1:])
		prev = h
	}
}

type tamperCase struct {
	name   string
	edit   func(rows []row) []row
	stream string
	rev    uint64
	reason string // prefix
	// anchorFails: the anchor taken before the tamper no longer matches.
	anchorFails bool
}

func tamperCases() []tamperCase {
	return []tamperCase{
		{name: "untouched", edit: func(rows []row) []row { return rows }},
		{name: "data edited", stream: "doctor-1", rev: 2, reason: chain.ReasonHash, anchorFails: true, edit: func(rows []row) []row {
			i := find(rows, "doctor-1", 2)
			rows[i].Data = flip(rows[i].Data, 0)
			return rows
		}},
		{name: "metadata edited", stream: "doctor-2", rev: 1, reason: chain.ReasonHash, anchorFails: true, edit: func(rows []row) []row {
			i := find(rows, "doctor-2", 1)
			rows[i].Meta = flip(rows[i].Meta, 152)
			return rows
		}},
		{name: "type edited", stream: "account-1", rev: 0, reason: chain.ReasonHash, anchorFails: true, edit: func(rows []row) []row {
			i := find(rows, "account-1", 0)
			rows[i].Type += "x"
			return rows
		}},
		{name: "edited after the anchor", stream: "doctor-1", rev: 5, reason: chain.ReasonHash, edit: func(rows []row) []row {
			i := find(rows, "doctor-1", 5)
			rows[i].Data = flip(rows[i].Data, 0)
			return rows
		}},
		{name: "deleted", stream: "doctor-1", rev: 3, reason: chain.ReasonGap, anchorFails: true, edit: func(rows []row) []row {
			return slices.Delete(rows, find(rows, "doctor-1", 2), find(rows, "doctor-1", 2)+1)
		}},
		{name: "deleted and renumbered", stream: "doctor-1", rev: 2, reason: chain.ReasonPrevHash, anchorFails: true, edit: func(rows []row) []row {
			rows = slices.Delete(rows, find(rows, "doctor-1", 2), find(rows, "doctor-1", 2)+1)
			for i := range rows {
				if rows[i].Stream == "doctor-1" && rows[i].Revision > 2 {
					rows[i].Revision--
				}
			}
			return rows
		}},
		{name: "last event deleted", anchorFails: false, edit: func(rows []row) []row {
			// Undetectable by the chains alone: the stream simply ends
			// earlier. Only a root taken later (an anchor) shows it.
			return slices.Delete(rows, find(rows, "doctor-1", 5), find(rows, "doctor-1", 5)+1)
		}},
		{name: "reordered", stream: "doctor-1", rev: 2, reason: chain.ReasonPrevHash, anchorFails: true, edit: func(rows []row) []row {
			a, b := find(rows, "doctor-1", 2), find(rows, "doctor-1", 3)
			rows[a].ID, rows[b].ID = rows[b].ID, rows[a].ID
			rows[a].Type, rows[b].Type = rows[b].Type, rows[a].Type
			rows[a].Data, rows[b].Data = rows[b].Data, rows[a].Data
			rows[a].Meta, rows[b].Meta = rows[b].Meta, rows[a].Meta
			return rows
		}},
		{name: "moved in the log", stream: "doctor-1", rev: 3, reason: chain.ReasonGap, anchorFails: true, edit: func(rows []row) []row {
			a, b := find(rows, "doctor-1", 2), find(rows, "doctor-1", 3)
			rows[a].Position, rows[b].Position = rows[b].Position, rows[a].Position
			slices.SortFunc(rows, func(x, y row) int { return int(x.Position) - int(y.Position) })
			return rows
		}},
		{name: "inserted with a forged hash", stream: "doctor-1", rev: 3, reason: chain.ReasonPrevHash, anchorFails: true, edit: func(rows []row) []row {
			at := find(rows, "doctor-1", 2)
			prev, _ := chain.ParseLink(rows[find(rows, "doctor-1", 1)].Meta)
			forged := row{ID: uuid.New(), Stream: "doctor-1", Revision: 2, Position: rows[at].Position, Type: "doctor-1.Forged",
				Data: []byte(`{"n":99}`), RecordedAt: rows[at].RecordedAt}
			zero := fmt.Appendf(nil, `{"prevHash":"%s","hash":"%s","actor":"x"}`, prev.Hash, strings.Repeat("0", 64))
			h := chain.Compute(prev.Hash, eventstore.RecordedEvent{StreamID: "doctor-1", Revision: 2, Type: forged.Type, Data: forged.Data, Metadata: zero})
			forged.Meta = fmt.Appendf(nil, `{"prevHash":"%s","hash":"%s","actor":"x"}`, prev.Hash, h)
			for i := at; i < len(rows); i++ {
				rows[i].Position++
				if rows[i].Stream == "doctor-1" {
					rows[i].Revision++
				}
			}
			return slices.Insert(rows, at, forged)
		}},
		// The chain fields removed, the event is what it was: its chain
		// value (over the audited metadata) and so the root are the same;
		// the missing link is broken all the same.
		{name: "hash stripped", stream: "doctor-2", rev: 2, reason: chain.ReasonUnhashed, edit: func(rows []row) []row {
			i := find(rows, "doctor-2", 2)
			rows[i].Meta, _ = chain.Audited(rows[i].Meta)
			return rows
		}},
		{name: "whole stream rewritten", anchorFails: true, edit: func(rows []row) []row {
			i := find(rows, "doctor-1", 1)
			rows[i].Data = flip(rows[i].Data, 0)
			rechain(rows, "doctor-1")
			return rows
		}},
	}
}

// check verifies the tampered log, with the anchor.
func check(t *testing.T, s eventstore.Store, tc tamperCase, anchor chain.Anchor) {
	t.Helper()
	rep := verify(t, s, chain.Options{Anchor: &anchor})
	if tc.stream == "" {
		if len(rep.Broken) != 0 {
			t.Fatalf("broken links: %+v", rep.Broken)
		}
	} else {
		if len(rep.Broken) != 1 || rep.BrokenStreams != 1 {
			t.Fatalf("broken = %+v, want one in %s", rep.Broken, tc.stream)
		}
		b := rep.Broken[0]
		if b.Stream != tc.stream || b.Revision != tc.rev || !strings.HasPrefix(b.Reason, tc.reason) {
			t.Fatalf("broken = %+v, want %s@%d %q", b, tc.stream, tc.rev, tc.reason)
		}
	}
	if rep.Anchor == nil || rep.Anchor.Matches == tc.anchorFails {
		t.Fatalf("anchor check %+v, want it to fail: %v", rep.Anchor, tc.anchorFails)
	}
	if want := tc.stream == "" && !tc.anchorFails; rep.OK != want {
		t.Fatalf("ok = %v, want %v: %+v", rep.OK, want, rep)
	}
}

// TestTamperSQLite edits the SQLite file directly (the store closed, as a
// tamperer with the file would) and verifies the log.
func TestTamperSQLite(t *testing.T) {
	t.Parallel()
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "events.db")
			s := openSQLite(t, path)
			anchor := buildLog(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tamperFile(t, path, tc.edit)
			check(t, openSQLite(t, path), tc, anchor)
		})
	}
}

func tamperFile(t *testing.T, path string, edit func([]row) []row) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	q, err := db.QueryContext(ctx, `SELECT position, stream, revision, id, type, data, metadata, recorded_at FROM events ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	for q.Next() {
		var r row
		var id []byte
		if err := q.Scan(&r.Position, &r.Stream, &r.Revision, &id, &r.Type, &r.Data, &r.Meta, &r.RecordedAt); err != nil {
			t.Fatal(err)
		}
		r.ID = uuid.UUID(id)
		rows = append(rows, r)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	rows = edit(rows)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM events`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (position, stream, revision, id, type, data, metadata, recorded_at) VALUES (?,?,?,?,?,?,?,?)`,
			r.Position, r.Stream, r.Revision, r.ID[:], r.Type, r.Data, r.Meta, r.RecordedAt); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestTamperESDB rewrites the EventStoreDB emulator's stored log (a
// tamperer with the server's files) and verifies through the real client.
func TestTamperESDB(t *testing.T) {
	t.Parallel()
	for _, tc := range tamperCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, cs := esdbtest.StartServer(t)
			s := openESDB(t, cs)
			anchor := buildLog(t, s)
			srv.Tamper(func(in []esdbtest.StoredEvent) []esdbtest.StoredEvent {
				rows := make([]row, len(in))
				for i, e := range in {
					rows[i] = row{ID: e.ID, Stream: e.Stream, Revision: e.Revision, Position: e.Position, Type: e.Type, Data: e.Data, Meta: e.Metadata}
				}
				rows = tc.edit(rows)
				out := make([]esdbtest.StoredEvent, len(rows))
				for i, r := range rows {
					out[i] = esdbtest.StoredEvent{ID: r.ID, Stream: r.Stream, Revision: r.Revision, Position: r.Position, Type: r.Type, Data: r.Data, Metadata: r.Meta}
				}
				return out
			})
			check(t, s, tc, anchor)
		})
	}
}
