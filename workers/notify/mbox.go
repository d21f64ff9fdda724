package notify

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Mbox is the embedded default's outbox: every message is appended to one
// mbox file (mboxrd), which any mail client opens. It remembers the
// Message-IDs it holds, reading them back when opened, so a message is
// written at most once across redeliveries and restarts. One append is one
// write(2); a process crash cannot leave half a message, a power cut may
// lose the last ones (the outbox stands in for SMTP, it is not fsynced per
// message).
type Mbox struct {
	from string

	mu   sync.Mutex
	f    *os.File
	sent sentIDs
}

// sentIDs is the set of the Message-IDs in the file. It grows by one per
// mail for as long as the process runs, so the ids that are UUIDs (event
// ids: all that the Worker sends) are kept as 16 bytes in a map without
// pointers, which the garbage collector does not scan, instead of as
// strings (a 36-byte string and a pointer to it per mail).
type sentIDs struct {
	uuids map[[16]byte]struct{}
	other map[string]struct{}
}

func newSentIDs() sentIDs {
	return sentIDs{uuids: map[[16]byte]struct{}{}, other: map[string]struct{}{}}
}

func (s sentIDs) has(id string) bool {
	if u, ok := canonicalUUID(id); ok {
		_, seen := s.uuids[u]
		return seen
	}
	_, seen := s.other[id]
	return seen
}

func (s sentIDs) add(id string) {
	if u, ok := canonicalUUID(id); ok {
		s.uuids[u] = struct{}{}
		return
	}
	s.other[id] = struct{}{}
}

// canonicalUUID parses id if it is a UUID in its canonical form (lower-case
// hex, as uuid.UUID.String writes it), the only form in which two equal
// UUIDs are also equal strings, so that the 16 bytes stand for the string.
func canonicalUUID(id string) ([16]byte, bool) {
	if len(id) != 36 {
		return [16]byte{}, false
	}
	for i := range len(id) {
		if c := id[i]; c >= 'A' && c <= 'Z' {
			return [16]byte{}, false
		}
	}
	u, err := uuid.Parse(id) // with 36 characters: only the hyphenated form
	return u, err == nil
}

// OpenMbox opens (creating it) the mbox file at path.
func OpenMbox(path, from string) (*Mbox, error) {
	if from == "" {
		from = DefaultFrom
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	sent, err := readMessageIDs(path)
	if err != nil {
		return nil, fmt.Errorf("notify: read %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &Mbox{from: from, f: f, sent: sent}, nil
}

// readMessageIDs collects the ids of the messages already in the file.
func readMessageIDs(path string) (sentIDs, error) {
	ids := newSentIDs()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return ids, nil
	}
	if err != nil {
		return sentIDs{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if id, ok := messageID(sc.Text()); ok {
			ids.add(id)
		}
	}
	return ids, sc.Err()
}

func messageID(line string) (string, bool) {
	v, ok := strings.CutPrefix(line, "Message-ID: <")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(v, "@prescripto.local>")
	return id, ok
}

// Send implements Mailer.
func (m *Mbox) Send(_ context.Context, msg Message) error {
	if err := checkID(msg.ID); err != nil {
		return err
	}
	entry, err := mboxEntry(msg, m.from)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sent.has(msg.ID) {
		return nil
	}
	if m.f == nil {
		return os.ErrClosed
	}
	if _, err := m.f.Write(entry); err != nil {
		return err
	}
	m.sent.add(msg.ID)
	return nil
}

// Close closes the file.
func (m *Mbox) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	return err
}

// mboxEntry is one mboxrd entry: the "From " separator line, the message
// with LF line ends and body lines starting with ">*From " quoted, and a
// blank line.
func mboxEntry(msg Message, from string) ([]byte, error) {
	date := msg.Date
	if date.IsZero() {
		date = time.Now()
	}
	text, err := Format(msg, from)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From no-reply@prescripto.local %s\n", date.UTC().Format(time.ANSIC))
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
			b.WriteByte('>')
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// ReadMboxFile reads the mbox file at path (ReadMbox).
func ReadMboxFile(path string) ([]*mail.Message, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadMbox(f)
}

// ReadMbox parses an mbox file written by Mbox into messages (for tests and
// tools).
func ReadMbox(r io.Reader) ([]*mail.Message, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out []*mail.Message
	for _, part := range strings.Split("\n"+string(raw), "\nFrom no-reply@prescripto.local ") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		_, body, _ := strings.Cut(part, "\n") // drop the rest of the separator line
		var lines []string
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(strings.TrimLeft(l, ">"), "From ") && strings.HasPrefix(l, ">") {
				l = l[1:]
			}
			lines = append(lines, l)
		}
		m, err := mail.ReadMessage(strings.NewReader(strings.Join(lines, "\n")))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// TextBody is the plain-text body of a message (multipart or not), its
// transfer encoding undone (for tests and tools).
func TextBody(m *mail.Message) (string, error) {
	return textPart(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body)
}

func textPart(ctype, cte string, body io.Reader) (string, error) {
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return "", nil
			}
			if err != nil {
				return "", err
			}
			if s, err := textPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil || s != "" {
				return s, err
			}
		}
	}
	if mt != "text/plain" {
		return "", nil
	}
	switch strings.ToLower(cte) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	raw, err := io.ReadAll(body)
	return strings.ReplaceAll(string(raw), "\r\n", "\n"), err
}
