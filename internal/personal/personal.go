// Package personal keeps personal data erasable in an immutable log: every
// personal field of an event is sealed (AES-256-GCM) with a data key of
// the person it is about, and the keys live outside the log in a KeyStore
// (embedded: one file per person in the data dir; production: a MongoDB
// collection). Erasing a person replaces their key with a tombstone: every
// stored copy of their fields, in the log, in its backups and in read
// models rebuilt from it, then reads as "[erased]", while ids, times,
// amounts and the log's hashes stay as they were.
//
// The Vault is the domain.Cipher of the process: it seals with a random
// nonce (so equal names do not give equal ciphertexts) and binds each
// ciphertext to its subject (the subject is the GCM additional data).
package personal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prescripto/prescripto/domain"
)

// KeySize is the size of a data key (AES-256).
const KeySize = 32

var (
	// ErrNoKey: the subject never had a key.
	ErrNoKey = errors.New("personal: no key")
	// ErrErased: the subject's key was erased (a tombstone stands in its
	// place); nothing about them can be read or written any more.
	ErrErased = errors.New("personal: erased")
	// ErrKeyMissing: a sealed value names a subject that has neither a key
	// nor a tombstone: the key store lost it (restore the key store from
	// its backup). Reading such a value fails rather than pass for erased.
	ErrKeyMissing = errors.New("personal: the key of a sealed value is missing from the key store")
	// ErrBadSubject: a subject that cannot name a key (keys are named by
	// ids: letters, digits, '-' and '_').
	ErrBadSubject = errors.New("personal: invalid subject")
)

// KeyStore keeps the data keys. Implementations are safe for concurrent
// use, also by several processes sharing the store.
type KeyStore interface {
	// Get returns the subject's key: ErrNoKey if it never had one,
	// ErrErased if it was erased.
	Get(ctx context.Context, subject string) ([]byte, error)
	// Create stores key as the subject's key unless it has one: the key
	// that is stored after the call is returned (another writer's, if it
	// won), or ErrErased.
	Create(ctx context.Context, subject string, key []byte) ([]byte, error)
	// Erase replaces the subject's key with a tombstone (also when it has
	// none yet, so that none is ever made).
	Erase(ctx context.Context, subject string) error
}

// ValidSubject reports whether s can name a key.
func ValidSubject(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Vault seals and opens personal fields with the keys of a KeyStore,
// keeping the keys it used in memory for a while (Forget drops one at
// once; a process that reads the erasure from the log calls it).
type Vault struct {
	store   KeyStore
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]cached

	sealed, opened, erasedReads prometheus.Counter
}

type cached struct {
	key    []byte      // nil: erased
	aead   cipher.AEAD // of key, made once
	expiry time.Time
}

// maxCached bounds the key cache; past it, arbitrary entries go.
const maxCached = 100_000

// Option configures a Vault.
type Option func(*Vault)

// WithCacheTTL sets how long a key is used from memory before it is read
// again (default 1 minute): the longest another process may still read a
// person after their erasure without having read the erasure from the log.
func WithCacheTTL(d time.Duration) Option { return func(v *Vault) { v.ttl = d } }

// WithClock sets the clock of the cache.
func WithClock(now func() time.Time) Option { return func(v *Vault) { v.now = now } }

// NewVault returns the vault of store.
func NewVault(store KeyStore, opts ...Option) *Vault {
	v := &Vault{
		store: store, ttl: time.Minute, timeout: 5 * time.Second, now: time.Now, cache: map[string]cached{},
		sealed:      prometheus.NewCounter(prometheus.CounterOpts{Name: "prescripto_personal_fields_sealed_total", Help: "Personal fields sealed with a person's key before being stored."}),
		opened:      prometheus.NewCounter(prometheus.CounterOpts{Name: "prescripto_personal_fields_opened_total", Help: "Sealed personal fields read back."}),
		erasedReads: prometheus.NewCounter(prometheus.CounterOpts{Name: "prescripto_personal_fields_erased_total", Help: "Sealed personal fields read as [erased] (their person was erased)."}),
	}
	for _, o := range opts {
		o(v)
	}
	return v
}

// Collectors are the vault's metrics.
func (v *Vault) Collectors() []prometheus.Collector {
	return []prometheus.Collector{v.sealed, v.opened, v.erasedReads}
}

var _ domain.Cipher = (*Vault)(nil)

// Seal implements domain.Cipher: the subject's key is made on first use.
// A subject already erased gets domain.Erased: nothing new about them is
// stored.
func (v *Vault) Seal(subject, plaintext string) (string, error) {
	if !ValidSubject(subject) {
		return "", fmt.Errorf("%w: %q", ErrBadSubject, subject)
	}
	aead, err := v.key(subject, true)
	if errors.Is(err, ErrErased) {
		return domain.Erased, nil
	}
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, []byte(plaintext), []byte(subject))
	v.sealed.Inc()
	return domain.SealedValue(subject, base64.RawURLEncoding.EncodeToString(out)), nil
}

// Open implements domain.Cipher.
func (v *Vault) Open(sealed string) (string, error) {
	subject, payload, ok := domain.ParseSealed(sealed)
	if !ok || !ValidSubject(subject) {
		return "", errors.New("personal: not a sealed value")
	}
	aead, err := v.key(subject, false)
	switch {
	case errors.Is(err, ErrErased):
		v.erasedReads.Inc()
		return domain.Erased, nil
	case errors.Is(err, ErrNoKey):
		return "", fmt.Errorf("%w (subject %s)", ErrKeyMissing, subject)
	case err != nil:
		return "", err
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", fmt.Errorf("personal: sealed value of %s: %w", subject, err)
	}
	if len(raw) < aead.NonceSize() {
		return "", fmt.Errorf("personal: sealed value of %s is truncated", subject)
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(subject))
	if err != nil {
		return "", fmt.Errorf("personal: sealed value of %s does not open with its key (altered?): %w", subject, err)
	}
	v.opened.Inc()
	return string(pt), nil
}

// Erase shreds the subject's key: from now on every sealed field about
// them reads as domain.Erased, here at once and in other processes once
// their cached key expires or they read the erasure from the log.
func (v *Vault) Erase(ctx context.Context, subject string) error {
	if !ValidSubject(subject) {
		return fmt.Errorf("%w: %q", ErrBadSubject, subject)
	}
	if err := v.store.Erase(ctx, subject); err != nil {
		return err
	}
	v.put(subject, nil, nil)
	return nil
}

// IsErased reports whether the subject's key was erased (false when the
// key store cannot tell).
func (v *Vault) IsErased(subject string) bool {
	if !ValidSubject(subject) {
		return false
	}
	_, err := v.key(subject, false)
	return errors.Is(err, ErrErased)
}

// Forget drops the subject's key from memory: the next use reads the key
// store again.
func (v *Vault) Forget(subject string) {
	v.mu.Lock()
	delete(v.cache, subject)
	v.mu.Unlock()
}

// Warm makes sure the subject's key is in memory (made on first use, as
// Seal does), reading the store within ctx's deadline: a command calls it
// before the work that seals (a doctor's batch, whose Seal has no
// deadline of its own and would hold every command of that doctor while
// the store does not answer). An erased subject is no error (Seal then
// records domain.Erased).
func (v *Vault) Warm(ctx context.Context, subject string) error {
	if !ValidSubject(subject) {
		return fmt.Errorf("%w: %q", ErrBadSubject, subject)
	}
	_, err := v.keyWithin(ctx, subject, true)
	if errors.Is(err, ErrErased) {
		return nil
	}
	return err
}

// staleServe is how long a key past its cache time serves from memory
// after the store failed to answer for it, before the store is asked
// again: a store that is down costs one bounded wait per key every few
// seconds, not one per use.
const staleServe = 5 * time.Second

// key returns the AEAD of the subject's key, from memory or the store;
// create makes a key when there is none.
func (v *Vault) key(subject string, create bool) (cipher.AEAD, error) {
	return v.keyWithin(context.Background(), subject, create)
}

// keyWithin is key with the store read bounded by ctx as well as by the
// vault's timeout.
func (v *Vault) keyWithin(ctx context.Context, subject string, create bool) (cipher.AEAD, error) {
	now := v.now()
	v.mu.Lock()
	c, ok := v.cache[subject]
	v.mu.Unlock()
	if ok && now.Before(c.expiry) {
		if c.key == nil {
			return nil, ErrErased
		}
		return c.aead, nil
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	var key []byte
	var err error
	if create {
		key, err = getOrCreate(ctx, v.store, subject)
	} else {
		key, err = v.store.Get(ctx, subject)
	}
	switch {
	case errors.Is(err, ErrErased):
		v.put(subject, nil, nil)
		return nil, err
	case err != nil && !errors.Is(err, ErrNoKey) && ok && c.key != nil:
		// The store is out of reach: the key this process used before
		// serves until it answers again (an erasure needs the store, so
		// none can have been made through it meanwhile), and is not asked
		// for again for staleServe.
		v.mu.Lock()
		if cur, still := v.cache[subject]; still && cur.key != nil {
			cur.expiry = v.now().Add(staleServe)
			v.cache[subject] = cur
		}
		v.mu.Unlock()
		return c.aead, nil
	case err != nil:
		return nil, err
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("personal: the key of %s has %d bytes, want %d", subject, len(key), KeySize)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	v.put(subject, key, aead)
	return aead, nil
}

// put caches a key (nil: erased, kept for good: an erasure is final).
func (v *Vault) put(subject string, key []byte, aead cipher.AEAD) {
	expiry := v.now().Add(v.ttl)
	if key == nil {
		expiry = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= maxCached {
		n := 0
		for k := range v.cache { // map order: arbitrary entries
			delete(v.cache, k)
			if n++; n >= maxCached/10 {
				break
			}
		}
	}
	v.cache[subject] = cached{key: key, aead: aead, expiry: expiry}
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// IndexKeySubject names the server secret of the email index in the key
// store (see IndexKey).
const IndexKeySubject = "_email-index"

// IndexKey returns the server's secret for keyed hashes of emails (the
// email-uniqueness streams), made on first use and kept in the key store
// beside the data keys, never in the log.
func IndexKey(ctx context.Context, store KeyStore) ([]byte, error) {
	key, err := getOrCreate(ctx, store, IndexKeySubject)
	if err != nil {
		return nil, fmt.Errorf("personal: email index key: %w", err)
	}
	return key, nil
}

// getOrCreate returns subject's key, made (random) and stored if it has
// none; the key a concurrent creator stored first wins.
func getOrCreate(ctx context.Context, store KeyStore, subject string) ([]byte, error) {
	key, err := store.Get(ctx, subject)
	if !errors.Is(err, ErrNoKey) {
		return key, err
	}
	fresh := make([]byte, KeySize)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	return store.Create(ctx, subject, fresh)
}

// KeyedHash is the hex HMAC-SHA-256 of s under key.
func KeyedHash(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}
