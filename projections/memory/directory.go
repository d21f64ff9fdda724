// Package memory holds the in-memory read models of the embedded default:
// rebuilt from the log at start-up, each behind a read-write lock.
package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/prescripto/prescripto/domain/doctor"
	"github.com/prescripto/prescripto/projections"
)

// Directory is the doctors directory ("doctors").
type Directory struct {
	projections.Progress
	mu      sync.RWMutex
	doctors map[string]*projections.Doctor
}

// NewDirectory returns an empty directory.
func NewDirectory() *Directory { return &Directory{doctors: map[string]*projections.Doctor{}} }

// Name implements projections.Projection.
func (*Directory) Name() string { return "doctors" }

// Checkpoint implements projections.Projection.
func (d *Directory) Checkpoint(context.Context) (uint64, error) { return d.Position(), nil }

// Apply implements projections.Projection.
func (d *Directory) Apply(_ context.Context, e projections.Event) error {
	if e.Position <= d.Position() {
		return nil
	}
	d.mu.Lock()
	switch ev := e.Data.(type) {
	case doctor.DoctorRegistered:
		if d.doctors[ev.DoctorID] == nil {
			d.doctors[ev.DoctorID] = &projections.Doctor{ID: ev.DoctorID}
		}
		d.setProfile(ev.DoctorID, ev.Profile, e.Position)
	case doctor.ProfileUpdated:
		d.setProfile(ev.DoctorID, ev.Profile, e.Position)
	case doctor.ScheduleSet:
		if doc := d.doctors[ev.DoctorID]; doc != nil && e.Position > doc.Position {
			doc.Timezone, doc.Position = ev.Schedule.Timezone, e.Position
		}
	}
	d.mu.Unlock()
	d.Advance(e.Position)
	return nil
}

func (d *Directory) setProfile(id string, p doctor.Profile, pos uint64) {
	doc := d.doctors[id]
	if doc == nil || pos <= doc.Position {
		return
	}
	tz := doc.Timezone
	*doc = projections.Doctor{
		ID: id, Name: p.Name, Speciality: p.Speciality, Degree: p.Degree, ExperienceYears: p.ExperienceYears,
		About: p.About, Fees: p.Fees, Currency: p.Currency, Address: p.Address, Available: p.Available,
		ImageURL: p.ImageURL, Timezone: tz, Position: pos,
	}
}

// Doctors implements projections.Directory: sorted by name, then id.
func (d *Directory) Doctors(_ context.Context, f projections.DoctorFilter) ([]projections.Doctor, error) {
	q := strings.ToLower(strings.TrimSpace(f.Query))
	d.mu.RLock()
	out := make([]projections.Doctor, 0, len(d.doctors))
	for _, doc := range d.doctors {
		if f.Speciality != "" && !strings.EqualFold(doc.Speciality, strings.TrimSpace(f.Speciality)) {
			continue
		}
		if f.Available != nil && doc.Available != *f.Available {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(doc.Name), q) &&
			!strings.Contains(strings.ToLower(doc.Speciality), q) && !strings.Contains(strings.ToLower(doc.Degree), q) {
			continue
		}
		out = append(out, *doc)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b projections.Doctor) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Doctor implements projections.Directory.
func (d *Directory) Doctor(_ context.Context, id string) (projections.Doctor, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	doc, ok := d.doctors[id]
	if !ok {
		return projections.Doctor{}, projections.ErrNotFound
	}
	return *doc, nil
}

// Specialities implements projections.Directory: every speciality with its
// number of doctors, by name.
func (d *Directory) Specialities(context.Context) ([]projections.Speciality, error) {
	d.mu.RLock()
	count := map[string]*projections.Speciality{} // by lower-case name, as the filter matches
	for _, doc := range d.doctors {
		k := strings.ToLower(doc.Speciality)
		sp := count[k]
		if sp == nil {
			sp = &projections.Speciality{Name: doc.Speciality}
			count[k] = sp
		}
		if doc.Speciality < sp.Name { // a stable spelling whatever the map order
			sp.Name = doc.Speciality
		}
		sp.Doctors++
	}
	d.mu.RUnlock()
	out := make([]projections.Speciality, 0, len(count))
	for _, sp := range count {
		out = append(out, *sp)
	}
	slices.SortFunc(out, func(a, b projections.Speciality) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}
