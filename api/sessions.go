package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
)

// Token revocation.
//
// A token is signed and stateless, so revoking one needs state that every
// request checks. The state lives where everything else does, in the
// account's own stream: each account has a token version, which a password
// change, a password reset and a deactivation bump (account.PasswordChanged,
// PasswordReset, Deactivated: every older token stops working), an active
// flag (Deactivated, Activated), and the ids (jti) of the tokens logged out
// (account.LoggedOut, remembered until each token's own expiry). Tokens
// carry the version they were issued under (the "tv" claim); a request's
// token must name an active account, carry its current version and not be
// logged out.
//
// Why this and not short access tokens plus refresh tokens: it needs no
// second kind of token and no client change, revokes at once instead of at
// the next refresh, keeps the event log the only source of truth (no
// session table to keep in step with it), and its per-request cost is a
// map lookup (below).
//
// The check reads the account's state through sessionCache: the state as
// the account stream stood at most SessionTTL ago (default 1 s), read
// through the command handler's cached aggregate (one store read of the
// stream's newer events per account per TTL, concurrent misses sharing
// one). A revocation decided in this process drops the entry at once, so it
// holds from the very next request here; another api process learns it when
// its entry expires: within SessionTTL (plus one stream read). That is the
// bound for "also in other api processes".

// SessionSource reads an account's session state (commands.Handler).
type SessionSource interface {
	Session(ctx context.Context, role domain.Role, id string) (commands.Session, bool, error)
}

// DefaultSessionTTL is how long a process trusts an account's session state
// before reading it again.
const DefaultSessionTTL = time.Second

// maxSessions bounds the cache; past it, expired entries go, and if that is
// not enough, all of them.
const maxSessions = 100_000

// ErrTokenRevoked: the token was logged out, its account's password changed
// or the account was deactivated.
var ErrTokenRevoked = ErrTokenInvalid.WithDetail("The token was revoked (logged out, password changed, or account deactivated).")

type sessionEntry struct {
	s     commands.Session
	found bool
	at    time.Time // monotonic
}

// sessionCache caches session states per account for ttl.
type sessionCache struct {
	src   SessionSource
	ttl   time.Duration
	group singleflight.Group

	mu sync.RWMutex
	m  map[string]sessionEntry
	// gen counts forgets: a read that started before one is not cached
	// (it may hold the state from before the revocation).
	gen uint64
}

func newSessionCache(src SessionSource, ttl time.Duration) *sessionCache {
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	return &sessionCache{src: src, ttl: ttl, m: map[string]sessionEntry{}}
}

// get returns the session state of the account, read at most ttl ago.
func (c *sessionCache) get(ctx context.Context, role domain.Role, id string) (commands.Session, bool, error) {
	key := account.StreamID(role, id)
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if ok && time.Since(e.at) < c.ttl {
		return e.s, e.found, nil
	}
	// One read per account at a time, shared by every request waiting for
	// it. The read outlives a waiter that leaves (WithoutCancel: one
	// client's cancellation must not fail the others), bounded by
	// sessionReadTimeout; each waiter leaves at its own deadline, so a
	// store that stops answering turns into 503s, not requests queued on
	// the read (the network-fault test found 1,122 of them at 500 ms of
	// latency).
	ch := c.group.DoChan(key, func() (any, error) {
		c.mu.RLock()
		gen := c.gen
		c.mu.RUnlock()
		at := time.Now()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionReadTimeout)
		defer cancel()
		s, found, err := c.src.Session(rctx, role, id)
		if err != nil {
			return nil, err
		}
		e := sessionEntry{s: s, found: found, at: at}
		c.put(key, e, gen)
		return e, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return commands.Session{}, false, r.Err
		}
		e = r.Val.(sessionEntry)
		return e.s, e.found, nil
	case <-ctx.Done():
		return commands.Session{}, false, ctx.Err()
	}
}

// sessionReadTimeout bounds a shared read of an account's session state:
// no request waits longer for it anyway (api.DefaultRequestTimeout), and
// a read that never ends would hold the account's later requests behind it.
const sessionReadTimeout = DefaultRequestTimeout

func (c *sessionCache) put(key string, e sessionEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= maxSessions {
		for k, old := range c.m {
			if time.Since(old.at) >= c.ttl {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxSessions {
			clear(c.m)
		}
	}
	c.m[key] = e
}

// forget drops the account's entry: its state changed in this process.
func (c *sessionCache) forget(role domain.Role, id string) {
	key := account.StreamID(role, id)
	c.mu.Lock()
	delete(c.m, key)
	c.gen++
	c.mu.Unlock()
	c.group.Forget(key)
}

// checkSession refuses, with 401 invalid_token, an authenticated request
// whose token was revoked (see the comment at the top of this file).
// Anonymous requests pass. Mount it right after Authenticate.
func (s *Server) checkSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		st, found, err := s.sessions.get(r.Context(), p.Role, p.UserID)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if _, revoked := st.Revoked[p.TokenID]; !found || !st.Active || st.TokenVersion != p.TokenVersion || revoked {
			WriteError(w, r, ErrTokenRevoked)
			return
		}
		next.ServeHTTP(w, r)
	})
}
