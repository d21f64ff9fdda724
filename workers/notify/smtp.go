package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// DefaultFrom is the sender without MAIL_FROM.
const DefaultFrom = "Prescripto <no-reply@prescripto.local>"

// SMTPConfig configures an SMTP mailer.
type SMTPConfig struct {
	// URL is SMTP_URL: smtp://[user:pass@]host[:port] (STARTTLS required,
	// port 587 by default; plain text only to a loopback host),
	// smtps://[user:pass@]host[:port] (implicit TLS, port 465 by default).
	URL string
	// From is MAIL_FROM (default DefaultFrom).
	From string
	// Timeout bounds each connection and command (default 15 s).
	Timeout time.Duration
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (tests
	// trust their own certificate with it).
	TLSConfig *tls.Config
	// Conns bounds the connections open at once (default 4).
	Conns int
}

// SMTP sends mail to an SMTP server through go-mail, keeping up to Conns
// connections open between messages.
type SMTP struct {
	cfg    SMTPConfig
	client *gomail.Client
	from   *mail.Address

	mu   sync.Mutex
	idle []*gosmtp.Client
	sem  chan struct{}
}

// ParseSMTPURL checks SMTP_URL and says what it means (for Validate).
func ParseSMTPURL(raw string) (host string, port int, implicitTLS, plain bool, user, pass string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", 0, false, false, "", "", fmt.Errorf("SMTP_URL: %w", err)
	}
	host = u.Hostname()
	if host == "" {
		return "", 0, false, false, "", "", errors.New("SMTP_URL: no host")
	}
	switch u.Scheme {
	case "smtp":
		port = 587
	case "smtps":
		port, implicitTLS = 465, true
	default:
		return "", 0, false, false, "", "", fmt.Errorf("SMTP_URL: scheme %q: want smtp:// (STARTTLS) or smtps:// (implicit TLS)", u.Scheme)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return "", 0, false, false, "", "", fmt.Errorf("SMTP_URL: port %q", p)
		}
		port = n
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	// Plain text (no TLS) only to this machine: a mail relay on loopback
	// (port 25, or a test server) is spoken to in STARTTLS when it offers
	// it and in plain text otherwise; anywhere else STARTTLS is required.
	plain = !implicitTLS && isLoopback(host)
	return host, port, implicitTLS, plain, user, pass, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewSMTP makes an SMTP mailer; it connects on the first Send.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	host, port, implicitTLS, plain, user, pass, err := ParseSMTPURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.From == "" {
		cfg.From = DefaultFrom
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("MAIL_FROM: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 4
	}
	opts := []gomail.Option{gomail.WithPort(port), gomail.WithTimeout(cfg.Timeout), gomail.WithHELO(heloName(from.Address))}
	switch {
	case implicitTLS:
		opts = append(opts, gomail.WithSSL())
	case plain:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if cfg.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(cfg.TLSConfig))
	} else {
		opts = append(opts, gomail.WithTLSConfig(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}))
	}
	if user != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(user), gomail.WithPassword(pass))
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	return &SMTP{cfg: cfg, client: c, from: from, sem: make(chan struct{}, cfg.Conns)}, nil
}

// heloName is the domain of the sender's address (the name the client
// gives in EHLO), localhost when it has none.
func heloName(addr string) string {
	if _, d, ok := strings.Cut(addr, "@"); ok && d != "" {
		return d
	}
	return "localhost"
}

// Send implements Mailer: one message over a pooled connection. A
// connection that failed is closed, not reused.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if err := checkID(m.ID); err != nil {
		return err
	}
	msg, err := buildMsg(m, s.from)
	if err != nil {
		return err
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.sem }()
	c, err := s.conn(ctx)
	if err != nil {
		return fmt.Errorf("notify: smtp dial: %w", err)
	}
	if err := s.client.SendWithSMTPClient(c, msg); err != nil {
		_ = c.Close()
		return fmt.Errorf("notify: smtp send: %w", err)
	}
	s.mu.Lock()
	s.idle = append(s.idle, c)
	s.mu.Unlock()
	return nil
}

// conn is an idle connection that still answers, or a new one.
func (s *SMTP) conn(ctx context.Context) (*gosmtp.Client, error) {
	for {
		s.mu.Lock()
		n := len(s.idle)
		var c *gosmtp.Client
		if n > 0 {
			c = s.idle[n-1]
			s.idle = s.idle[:n-1]
		}
		s.mu.Unlock()
		if c == nil {
			return s.client.DialToSMTPClientWithContext(ctx)
		}
		if err := c.Reset(); err == nil {
			return c, nil
		}
		_ = c.Close()
	}
}

// Close closes the idle connections.
func (s *SMTP) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		_ = c.Quit()
		_ = c.Close()
	}
	return nil
}

// Permanent reports whether err is a permanent refusal (5xx): retrying
// the same message would be refused again.
func Permanent(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return !se.IsTemp() && se.ErrorCode() >= 500 && se.ErrorCode() < 600
	}
	return false
}

// checkID refuses a message without a usable id (it is the Message-ID).
func checkID(id string) error {
	if id == "" || strings.ContainsFunc(id, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune("<>@()[]\\,;:\"", r)
	}) {
		return ErrNoEventID
	}
	return nil
}

// MessageID is the Message-ID header's value of the message with id.
func MessageID(id string) string { return "<" + id + "@prescripto.local>" }

// buildMsg renders m with go-mail: From, To, Subject (cleaned of control
// characters and encoded by go-mail, so no value can add a header), a
// deterministic Message-ID, text and HTML alternatives and the calendar
// attachment.
func buildMsg(m Message, from *mail.Address) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	to, err := mail.ParseAddress(m.To)
	if err != nil || strings.ContainsAny(m.To, "\r\n") {
		return nil, fmt.Errorf("%w: recipient %q", ErrBadAddress, Clean(m.To))
	}
	msg.ToMailAddress(&mail.Address{Name: Clean(m.ToName), Address: to.Address})
	msg.Subject(Clean(m.Subject))
	msg.SetMessageIDWithValue(m.ID + "@prescripto.local")
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date.UTC())
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	if len(m.Calendar) > 0 {
		method := m.CalendarMethod
		if method == "" {
			method = "REQUEST"
		}
		if err := msg.AttachReader("invite.ics", bytes.NewReader(m.Calendar),
			gomail.WithFileContentType(gomail.ContentType("text/calendar; method="+method))); err != nil {
			return nil, err
		}
	}
	return msg, nil
}

// ErrBadAddress: a recipient address that cannot be mailed.
var ErrBadAddress = errors.New("notify: bad address")
