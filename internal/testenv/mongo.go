package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FerretDBVersion is the FerretDB release scripts/ferretdb.sh builds.
const FerretDBVersion = "v1.24.2"

// FerretDBPatch names the patches scripts/ferretdb.sh applies before the
// build (a lookup by _id probes the _id index instead of scanning the
// collection; an update command closes each update's query when that
// update is done, not at the command's end: see the script); it is part of
// the cached binary's name.
const FerretDBPatch = "idlookup-updclose"

// ferretDBStartLimit bounds the wait for a started FerretDB to answer.
const ferretDBStartLimit = 30 * time.Second

// FerretDBPath is where scripts/ferretdb.sh caches the FerretDB binary:
// PRESCRIPTO_FERRETDB if set, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/prescripto/ferretdb-v1.24.2-idlookup-updclose.
func FerretDBPath() string {
	if p := os.Getenv("PRESCRIPTO_FERRETDB"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "prescripto", "ferretdb-"+FerretDBVersion+"-"+FerretDBPatch)
}

// MongoURI returns the URI of a MongoDB-compatible server for t.
//
// With MONGODB_URI set, that server is used as is; tests must then keep to
// databases of their own (MongoDatabase names one per call). Otherwise a
// FerretDB v1 (MongoDB wire protocol on SQLite in t.TempDir()) is started on
// a free 127.0.0.1 port from the binary scripts/ferretdb.sh builds, and
// stopped at t's cleanup. Without the binary the test fails when CI is set
// and is skipped otherwise, saying how to build it.
func MongoURI(t testing.TB) string {
	t.Helper()
	if uri := os.Getenv("MONGODB_URI"); uri != "" {
		return uri
	}
	return newFerretDB(t).rootURI()
}

// FerretDBServer is a FerretDB process owned by one test. Stop and Start
// let fault tests take it away and bring it back on the same port and the
// same SQLite data dir, so the data it held is there again.
type FerretDBServer struct {
	t       testing.TB
	bin     string
	addr    string
	dataDir string
	db      string
	out     *ProcessLog // the output of every run, for error messages

	mu   sync.Mutex
	proc *ferretDBProcess // nil while stopped
}

// StartFerretDB starts a private FerretDB (whatever MONGODB_URI says: fault
// tests need a server they may stop) on a free 127.0.0.1 port and stops it
// at t's cleanup. Without the binary the test fails when CI is set and is
// skipped otherwise, saying how to build it.
func StartFerretDB(t testing.TB) *FerretDBServer {
	t.Helper()
	s := newFerretDB(t)
	s.db = MongoDatabase(t)
	return s
}

// newFerretDB starts a FerretDB for t: the one start path of MongoURI and
// StartFerretDB.
func newFerretDB(t testing.TB) *FerretDBServer {
	t.Helper()
	bin := FerretDBPath()
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("FerretDB binary %s not found (%v): run `bash scripts/ferretdb.sh` (or set PRESCRIPTO_FERRETDB or MONGODB_URI)", bin, err)
		if os.Getenv("CI") != "" {
			t.Fatalf("testenv: %s; CI must provide it", msg)
		}
		t.Skipf("testenv: %s; skipping outside CI", msg)
	}
	dir := t.TempDir()
	out := &ProcessLog{}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken before FerretDB binds it
		addr, err := freeAddr()
		if err != nil {
			t.Fatalf("testenv: FerretDB: a free port: %v", err)
		}
		s := &FerretDBServer{
			t: t, bin: bin, addr: addr, out: out,
			dataDir: filepath.Join(dir, strings.ReplaceAll(addr, ":", "_")),
		}
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(func() {
				s.Stop()
				if t.Failed() {
					log := out.String()
					if len(log) > 8000 {
						log = "..." + log[len(log)-8000:]
					}
					t.Logf("FerretDB on %s said:\n%s", addr, log)
				}
			})
			return s
		}
	}
	t.Fatalf("testenv: FerretDB: %v", lastErr)
	return nil
}

// URI is mongodb://127.0.0.1:<port>/<a database of the test's own>.
func (s *FerretDBServer) URI() string { return "mongodb://" + s.addr + "/" + s.db + ferretDBPool }

// Addr is 127.0.0.1:<port>.
func (s *FerretDBServer) Addr() string { return s.addr }

func (s *FerretDBServer) rootURI() string { return "mongodb://" + s.addr + "/" + ferretDBPool }

// ferretDBPool bounds each client's connections to FerretDB. FerretDB v1
// keeps at most 100 SQLite connections per database, and an update holds
// one (reading the documents to change) while it waits for another (the
// transaction that writes them): 100 updates in flight at once hold all
// of them and wait for each other for ever, and the server stops
// answering (found by the hour-long soak: goroutine dumps through
// PRESCRIPTO_FERRETDB_DEBUG). At 10 connections a client, the few
// processes of a test (api, projector, worker, a replica) cannot have 50
// operations in flight, so they cannot deadlock it. MongoDB has no such
// limit; the engine's own default (the driver's 100) stays.
const ferretDBPool = "?maxPoolSize=10"

// Start starts the server (again) on its port and data dir and waits until
// it answers. It is a no-op while the server runs.
func (s *FerretDBServer) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("testenv: FerretDB: %v", err)
	}
}

// Stop kills the server (as a crash would) and waits for it to exit. It is
// a no-op when the server is not running.
func (s *FerretDBServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	s.proc.kill()
	s.proc = nil
}

// Restart stops the server and starts it again on the same port, with the
// data it held.
func (s *FerretDBServer) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

func (s *FerretDBServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	p, err := startFerretDB(s.bin, s.dataDir, s.addr, s.out)
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

var dbSeq atomic.Int64

// MongoDatabase returns a database name no other call returns (in this
// process or, with a shared MONGODB_URI, in another): a test's own database.
func MongoDatabase(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("pt_%d_%s", dbSeq.Add(1), hex.EncodeToString(b[:]))
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ferretDBProcess is one run of FerretDB.
type ferretDBProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, once exited is closed
}

func (p *ferretDBProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// startFerretDB runs FerretDB on addr with its SQLite files in dataDir
// (created if need be; a later run on the same dir finds the data again),
// its output going to out, and waits until it answers the wire protocol.
//
// With PRESCRIPTO_FERRETDB_DEBUG set, FerretDB serves its debug handler
// (/debug/pprof among others) on a free port, written to out and to the
// process's stderr: the way to see what a FerretDB that stopped answering
// is doing (curl ADDR/debug/pprof/goroutine?debug=2).
func startFerretDB(bin, dataDir, addr string, out *ProcessLog) (*ferretDBProcess, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	debugAddr := "-"
	if os.Getenv("PRESCRIPTO_FERRETDB_DEBUG") != "" {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		debugAddr = a
		msg := fmt.Sprintf("testenv: FerretDB on %s (data %s): debug handler on http://%s/debug/pprof/\n", addr, dataDir, a)
		_, _ = out.Write([]byte(msg))
		_, _ = os.Stderr.WriteString(msg)
	}
	cmd := exec.Command(bin,
		"--handler=sqlite",
		"--sqlite-url=file:"+dataDir+"/",
		"--listen-addr="+addr,
		"--telemetry=disable",
		"--debug-addr="+debugAddr,
		"--log-level=warn",
		"--state-dir="+dataDir,
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &ferretDBProcess{cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(ferretDBStartLimit)
	for {
		if err := ping(addr); err == nil {
			// Something answered on addr; it must be this process (a
			// FerretDB that could not bind exits at once).
			select {
			case <-p.exited:
			case <-time.After(50 * time.Millisecond):
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("FerretDB on %s exited (%v):\n%s", addr, p.err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("FerretDB on %s did not answer within %v:\n%s", addr, ferretDBStartLimit, out.String())
		}
	}
}

// ping sends an OP_MSG {ping: 1, $db: "admin"} and waits for any reply:
// FerretDB answers the wire protocol only once it is ready.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	// BSON {ping: 1 (int32), $db: "admin"}
	var doc []byte
	doc = append(doc, 0, 0, 0, 0)
	doc = append(doc, 0x10)
	doc = append(doc, "ping\x00"...)
	doc = append(doc, 1, 0, 0, 0)
	doc = append(doc, 0x02)
	doc = append(doc, "$db\x00"...)
	doc = append(doc, 6, 0, 0, 0)
	doc = append(doc, "admin\x00"...)
	doc = append(doc, 0)
	putLE32(doc, uint32(len(doc)))
	// OP_MSG: header (16) + flags (4) + section kind 0 + doc
	msg := make([]byte, 16, 16+4+1+len(doc))
	msg = append(msg, 0, 0, 0, 0, 0)
	msg = append(msg, doc...)
	putLE32(msg[0:], uint32(len(msg)))
	putLE32(msg[4:], 1)     // request id
	putLE32(msg[12:], 2013) // OP_MSG
	if _, err := c.Write(msg); err != nil {
		return err
	}
	var hdr [16]byte
	if _, err := readFull(c, hdr[:]); err != nil {
		return err
	}
	return nil
}

func putLE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
