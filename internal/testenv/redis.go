package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStartLimit bounds the wait for a started redis-server to answer PING.
const redisStartLimit = 15 * time.Second

// RedisURL returns the URL of a real Redis for one test, empty and private
// to it:
//
//   - REDIS_URL set: that server, on a database index of its own (1..15,
//     held by one test at a time, flushed before and after it; a shared
//     server must not hold data worth keeping on those indexes);
//   - otherwise a redis-server started on a free 127.0.0.1 port (no
//     persistence), stopped at cleanup.
//
// Without a redis-server binary the test fails when CI is set and is
// skipped otherwise.
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return redisShared(t, u)
	}
	return StartRedis(t).URL()
}

// RedisServer is a redis-server process owned by one test. Stop and Start
// let fault tests take it away and bring it back on the same port (empty:
// it keeps nothing on disk).
type RedisServer struct {
	t    testing.TB
	bin  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts a private redis-server (whatever REDIS_URL says: fault
// tests need a server they may stop) and stops it at cleanup.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		redisMissing(t, "redis-server not found on PATH (apt-get install redis-server)")
	}
	port, err := redisFreePort()
	if err != nil {
		t.Fatalf("testenv: free port for redis-server: %v", err)
	}
	s := &RedisServer{t: t, bin: bin, port: port}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// URL is redis://127.0.0.1:<port>/0.
func (s *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Addr is 127.0.0.1:<port>.
func (s *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Start starts the server (again) and waits until it answers PING. It is a
// no-op while the server runs.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")
	out := &ProcessLog{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("testenv: start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(redisStartLimit)
	for {
		if err := redisPing(s.Addr(), 0); err == nil {
			break
		}
		select {
		case <-done:
			s.t.Fatalf("testenv: redis-server exited at start: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.t.Fatalf("testenv: redis-server on port %d did not answer PING within %v: %s", s.port, redisStartLimit, out.String())
		}
	}
	s.cmd, s.done = cmd, done
}

// Stop kills the server (as a crash would) and waits for it to exit. It is
// a no-op when the server is not running.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Restart stops the server and starts it again on the same port, empty.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// redisSharedDBs hands out the database indexes 1..15 of a REDIS_URL server
// to the tests of this process, one test at a time per index: a test waits
// for a free index, so one test's cleanup never flushes another's data.
var redisSharedDBs = func() chan int {
	ch := make(chan int, 15)
	for i := 1; i <= 15; i++ {
		ch <- i
	}
	return ch
}()

func redisShared(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		t.Fatalf("testenv: REDIS_URL %q is not a redis:// URL: %v", raw, err)
	}
	var db int
	select {
	case db = <-redisSharedDBs:
	case <-time.After(5 * time.Minute):
		t.Fatal("testenv: no free database index on REDIS_URL for 5 minutes")
	}
	u.Path = "/" + strconv.Itoa(db)
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	pass, _ := u.User.Password()
	flush := func() error { return redisCommand(addr, u.User.Username(), pass, db, "FLUSHDB") }
	if err := flush(); err != nil {
		redisSharedDBs <- db
		t.Fatalf("testenv: REDIS_URL does not answer: %v", err)
	}
	t.Cleanup(func() {
		_ = flush()
		redisSharedDBs <- db
	})
	return u.String()
}

func redisMissing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("testenv: %s; CI must provide it", why)
	}
	t.Skipf("testenv: %s; skipping outside CI", why)
}

func redisFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func redisPing(addr string, db int) error { return redisCommand(addr, "", "", db, "PING") }

// command sends one inline-free RESP command (after AUTH and SELECT) and
// checks for a non-error reply. It keeps this helper free of a client
// library.
func redisCommand(addr, user, pass string, db int, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	send := func(args ...string) error {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := c.Write([]byte(b.String())); err != nil {
			return err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, "-") {
			return fmt.Errorf("redis %s: %s", args[0], strings.TrimSpace(line[1:]))
		}
		return nil
	}
	if pass != "" {
		auth := []string{"AUTH", pass}
		if user != "" {
			auth = []string{"AUTH", user, pass}
		}
		if err := send(auth...); err != nil {
			return err
		}
	}
	if db != 0 {
		if err := send("SELECT", strconv.Itoa(db)); err != nil {
			return err
		}
	}
	return send(args...)
}

// RedisClient is a go-redis client for url (a RedisURL or a RedisServer's
// URL), closed at t's cleanup.
func RedisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("testenv: REDIS_URL %q: %v", url, err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
