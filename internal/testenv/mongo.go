package testenv

import (
	"bytes"
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

// FerretDBPath is where scripts/ferretdb.sh caches the FerretDB binary:
// PRESCRIPTO_FERRETDB if set, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/prescripto/ferretdb-v1.24.2.
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
	return filepath.Join(cache, "prescripto", "ferretdb-"+FerretDBVersion)
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
	bin := FerretDBPath()
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("FerretDB binary %s not found (%v): run `bash scripts/ferretdb.sh` (or set PRESCRIPTO_FERRETDB or MONGODB_URI)", bin, err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken before FerretDB binds it
		addr, err := freeAddr()
		if err != nil {
			t.Fatalf("FerretDB: a free port: %v", err)
		}
		uri, err := startFerretDB(t, bin, dir, addr)
		if err == nil {
			return uri
		}
		lastErr = err
	}
	t.Fatalf("FerretDB: %v", lastErr)
	return ""
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

// lockedBuffer collects a process's output for error messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startFerretDB(t testing.TB, bin, dir, addr string) (string, error) {
	t.Helper()
	dataDir := filepath.Join(dir, strings.ReplaceAll(addr, ":", "_"))
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", err
	}
	out := newLockedBuffer()
	cmd := exec.Command(bin,
		"--handler=sqlite",
		"--sqlite-url=file:"+dataDir+"/",
		"--listen-addr="+addr,
		"--telemetry=disable",
		"--debug-addr=-",
		"--log-level=warn",
		"--state-dir="+dataDir,
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := ping(addr); err == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			return "", fmt.Errorf("FerretDB on %s exited (%v):\n%s", addr, err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("FerretDB on %s did not answer within 30 s:\n%s", addr, out.String())
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			log := out.String()
			if len(log) > 8000 {
				log = "..." + log[len(log)-8000:]
			}
			t.Logf("FerretDB on %s said:\n%s", addr, log)
		}
	})
	return "mongodb://" + addr + "/", nil
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
