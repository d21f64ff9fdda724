package domain

// Strings shares equal strings: Share returns s, or an equal string it
// already holds. A decoded event holds its own copy of every string, so a
// model that keeps many appointments would keep a copy of each patient id,
// name, status and currency per appointment, and the garbage collector
// would mark each at every cycle. Past Max distinct strings new ones are
// returned as they are. The zero value shares nothing; not safe for
// concurrent use (its owner's lock guards it).
type Strings struct {
	Max int
	m   map[string]string
}

// Share returns s or an equal string already held.
func (p *Strings) Share(s string) string {
	if v, ok := p.m[s]; ok {
		return v
	}
	if len(p.m) < p.Max && s != "" {
		if p.m == nil {
			p.m = map[string]string{}
		}
		p.m[s] = s
	}
	return s
}
