package commands

import (
	"context"
	"sync"
	"time"

	"github.com/prescripto/prescripto/domain"
)

// nameTTL bounds how stale a cached patient name may be when another
// process renamed the patient; renames through this process update the
// cache at once.
const nameTTL = time.Minute

const maxCachedNames = 100_000

// names caches patients' current names, which every booking records, so a
// booking does not read the patient's stream each time.
type names struct {
	mu sync.Mutex
	m  map[string]cachedName
}

type cachedName struct {
	name string
	at   time.Time
}

func (n *names) get(id string, now time.Time) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.m[id]
	if !ok || now.Sub(c.at) >= nameTTL || now.Before(c.at) {
		return "", false
	}
	return c.name, true
}

func (n *names) put(id, name string, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil || len(n.m) >= maxCachedNames {
		n.m = map[string]cachedName{}
	}
	n.m[id] = cachedName{name, now}
}

// patientName is the patient's current name (cached for up to nameTTL).
func (h *Handler) patientName(ctx context.Context, id string) (string, error) {
	now := h.clock()
	if name, ok := h.names.get(id, now); ok {
		return name, nil
	}
	a, err := h.Account(ctx, domain.RolePatient, id)
	if err != nil {
		return "", err
	}
	h.names.put(id, a.Profile.Name, now)
	return a.Profile.Name, nil
}
