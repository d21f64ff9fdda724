// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp)
// on a loopback port for tests: it keeps every message it accepted and can
// be told to fail in the ways real servers do (a temporary refusal, a
// slow answer, a connection dropped after DATA, down altogether).
package smtptest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is a message the server accepted.
type Message struct {
	From string
	To   []string
	Raw  []byte
	// At is when the server accepted it.
	At time.Time
}

// Parse parses the message.
func (m Message) Parse() (*mail.Message, error) { return mail.ReadMessage(bytes.NewReader(m.Raw)) }

// MessageID is the message's Message-ID header.
func (m Message) MessageID() string {
	p, err := m.Parse()
	if err != nil {
		return ""
	}
	return p.Header.Get("Message-Id")
}

// Server is a running SMTP server.
type Server struct {
	Addr string
	srv  *smtp.Server
	ln   net.Listener

	mu   sync.Mutex
	msgs []Message
	// faults, consumed one per DATA in order
	tempFail    int
	dropBefore  int
	dropAfter   int
	delay       time.Duration
	received    chan struct{}
	connections int
}

// Start starts a server on 127.0.0.1 and stops it at the end of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{received: make(chan struct{}, 1)}
	if err := s.listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = 10 << 20
	s.mu.Lock()
	s.srv, s.ln, s.Addr = srv, ln, ln.Addr().String()
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// URL is the SMTP_URL of the server.
func (s *Server) URL() string { return "smtp://" + s.Addr }

// Stop closes the server and its connections (SMTP down).
func (s *Server) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	// go-smtp's Close closes only the listeners its Serve has registered:
	// stopped right after listen, before the Serve goroutine ran, the
	// server would go on accepting. The listener is closed here too.
	if ln != nil {
		_ = ln.Close()
	}
}

// Restart serves again on the same address.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	var err error
	for range 50 { // the port may linger for a moment
		if err = s.listen(s.Addr); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal(err)
}

// TempFail makes the next n messages be refused with 451 (try again).
func (s *Server) TempFail(n int) { s.mu.Lock(); s.tempFail = n; s.mu.Unlock() }

// DropBeforeAccept makes the server read the next n messages and drop the
// connection without accepting them (no reply to the end of DATA).
func (s *Server) DropBeforeAccept(n int) { s.mu.Lock(); s.dropBefore = n; s.mu.Unlock() }

// DropAfterAccept makes the server keep the next n messages and drop the
// connection before its 250 reaches the client: the client cannot tell
// this from DropBeforeAccept.
func (s *Server) DropAfterAccept(n int) { s.mu.Lock(); s.dropAfter = n; s.mu.Unlock() }

// Delay makes every answer to DATA wait d.
func (s *Server) Delay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// Messages are the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Connections counts the sessions opened.
func (s *Server) Connections() int { s.mu.Lock(); defer s.mu.Unlock(); return s.connections }

// WaitFor waits until n messages were accepted (or fails t after d).
func (s *Server) WaitFor(t testing.TB, n int, d time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtptest: %d messages after %v; want %d", len(s.Messages()), d, n)
		}
		select {
		case <-s.received:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.connections++
	b.s.mu.Unlock()
	return &session{s: b.s, c: c}, nil
}

type session struct {
	s    *Server
	c    *smtp.Conn
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }
func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

var errTemp = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := x.s
	s.mu.Lock()
	delay := s.delay
	var fault string
	switch {
	case s.tempFail > 0:
		s.tempFail--
		fault = "temp"
	case s.dropBefore > 0:
		s.dropBefore--
		fault = "dropBefore"
	case s.dropAfter > 0:
		s.dropAfter--
		fault = "dropAfter"
	}
	s.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	switch fault {
	case "temp":
		return errTemp
	case "dropBefore":
		_ = x.c.Conn().Close()
		return errors.New("smtptest: dropped")
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, Message{From: x.from, To: append([]string(nil), x.to...), Raw: raw, At: time.Now()})
	s.mu.Unlock()
	select {
	case s.received <- struct{}{}:
	default:
	}
	if fault == "dropAfter" {
		_ = x.c.Conn().Close()
		return errors.New("smtptest: dropped after accepting")
	}
	return nil
}
