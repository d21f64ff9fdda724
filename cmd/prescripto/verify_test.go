package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/eventstore/chain"
	"github.com/prescripto/prescripto/internal/testenv"
)

type verifyReport struct {
	OK       bool   `json:"ok"`
	Complete bool   `json:"complete"`
	Events   uint64 `json:"events"`
	Position uint64 `json:"position"`
	Root     string `json:"root"`
	Unhashed uint64 `json:"unhashed"`
	Broken   []struct {
		Stream   string `json:"stream"`
		Revision uint64 `json:"revision"`
		Reason   string `json:"reason"`
	} `json:"broken"`
	Anchor *struct {
		Matches bool `json:"matches"`
	} `json:"anchor"`
}

// TestVerifyEndToEnd books and cancels through the API on the embedded
// wiring; the log verifies (route and command line); an edit of the SQLite
// file is then reported, at the same stream and revision, by both, and the
// anchor taken before it no longer matches.
func TestVerifyEndToEnd(t *testing.T) {
	e := testenv.Start(t, testenv.Options{})
	d := e.NewDoctor(t, "Dr. Chain", "General physician")
	alice := e.Register(t, "Alice Chain")
	slots := e.FreeSlots(t, d.ID, testenv.Date(1), 1, d.Position).All()
	if len(slots) < 2 {
		t.Fatalf("free slots: %v", slots)
	}
	a1 := e.MustBook(t, alice.Token, d.ID, slots[0])
	e.MustBook(t, alice.Token, d.ID, slots[1])
	e.Post(t, "/appointments/"+a1.ID+"/cancel", alice.Token, map[string]string{"reason": "better"}).Must(t, http.StatusOK)

	auditor := e.AdminToken
	var before verifyReport
	e.Get(t, "/audit/verify", auditor).Must(t, http.StatusOK).Decode(t, &before)
	if !before.OK || !before.Complete || before.Events == 0 || before.Unhashed != 0 || len(before.Broken) != 0 {
		t.Fatalf("verify before: %+v", before)
	}
	anchor := before.Root + "@" + jsonNumber(before.Position)
	var anchored verifyReport
	e.Get(t, "/audit/verify?anchor="+anchor, auditor).Must(t, http.StatusOK).Decode(t, &anchored)
	if !anchored.OK || anchored.Anchor == nil || !anchored.Anchor.Matches {
		t.Fatalf("verify with its own anchor: %+v", anchored)
	}
	dir := e.DataDir
	e.Stop()

	var out, errb bytes.Buffer
	if err := run([]string{"audit", "verify", "--data", dir, "--anchor", anchor}, &out, &errb); err != nil {
		t.Fatalf("audit verify: %v\n%s%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "root "+anchor) || !strings.Contains(out.String(), "matches") {
		t.Fatalf("audit verify said:\n%s", out.String())
	}

	// Someone with the file changes who cancelled: the metadata of the
	// cancellation.
	stream := doctor.StreamID(d.ID)
	rev := tamperMetadata(t, filepath.Join(dir, "events.db"), stream, doctor.TypeAppointmentCancelled)

	out.Reset()
	err := run([]string{"audit", "verify", "--data", dir, "--anchor", anchor}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("audit verify of the tampered log: %v\n%s", err, out.String())
	}
	want := "BROKEN: stream " + stream + ", revision " + jsonNumber(rev)
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), chain.ReasonHash) || !strings.Contains(out.String(), "DOES NOT MATCH") {
		t.Fatalf("audit verify said:\n%s\nwant %q", out.String(), want)
	}
	out.Reset()
	if err := run([]string{"audit", "verify", "--json", "--data", dir}, &out, &errb); err == nil {
		t.Fatal("audit verify --json of the tampered log succeeded")
	}
	var cli verifyReport
	if err := json.Unmarshal(out.Bytes(), &cli); err != nil {
		t.Fatalf("--json: %v: %s", err, out.String())
	}

	e2 := testenv.Start(t, testenv.Options{DataDir: dir})
	var after verifyReport
	e2.Get(t, "/audit/verify?anchor="+anchor, e2.AdminToken).Must(t, http.StatusOK).Decode(t, &after)
	if after.OK || len(after.Broken) != 1 || after.Broken[0].Stream != stream || after.Broken[0].Revision != rev ||
		after.Broken[0].Reason != chain.ReasonHash || after.Anchor == nil || after.Anchor.Matches {
		t.Fatalf("verify after the tamper: %+v", after)
	}
	if len(cli.Broken) != 1 || cli.Broken[0] != after.Broken[0] {
		t.Fatalf("the command line says %+v, the route %+v", cli.Broken, after.Broken)
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// tamperMetadata changes one character of the metadata of stream's event
// of type typ, in the file, and returns its revision.
func tamperMetadata(t *testing.T, path, stream, typ string) uint64 {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var pos, rev uint64
	var meta []byte
	if err := db.QueryRowContext(ctx, `SELECT position, revision, metadata FROM events WHERE stream = ? AND type = ?`, stream, typ).Scan(&pos, &rev, &meta); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(meta, []byte(`"userId":"`))
	if i < 0 {
		t.Fatalf("no userId in %s", meta)
	}
	i += len(`"userId":"`)
	if meta[i] == 'f' {
		meta[i] = 'e'
	} else {
		meta[i] = 'f'
	}
	if _, err := db.ExecContext(ctx, `UPDATE events SET metadata = ? WHERE position = ?`, meta, pos); err != nil {
		t.Fatal(err)
	}
	return rev
}
