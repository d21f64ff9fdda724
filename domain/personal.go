package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Erased is what a personal field reads as once the person's key is gone.
const Erased = "[erased]"

// Personal is implemented, on the pointer, by the events that carry
// personal data (names, email, phone, address, free text a patient wrote).
// PersonalData names the person the data is about and points at the
// fields that hold it. Stored, those fields are sealed with that person's
// key (see Cipher); erasing the key makes every stored copy unreadable
// while ids, times and amounts stay.
type Personal interface {
	PersonalData() (subject string, fields []*string)
}

// Cipher seals and opens personal fields. Seal returns the stored form of
// plaintext (or Erased, when the subject's key was erased and nothing new
// about them may be stored); Open returns the plaintext of a sealed value,
// Erased when the subject's key is gone, and an error only when the keys
// cannot be reached (retry later: that is not an erasure).
type Cipher interface {
	Seal(subject, plaintext string) (string, error)
	Open(sealed string) (string, error)
}

// Erasure is implemented by the fact that a person's data was erased. A
// registry that decodes it tells its cipher to forget the person's key at
// once (if the cipher keeps keys: see Forgetter).
type Erasure interface {
	ErasedSubject() string
}

// Forgetter is a Cipher that keeps keys in memory.
type Forgetter interface {
	Forget(subject string)
}

// sealedPrefix starts every sealed value: "pd1." subject "." base64url.
const sealedPrefix = "pd1."

// SealedValue builds the stored form of a sealed field.
func SealedValue(subject, payload string) string {
	return sealedPrefix + subject + "." + payload
}

// ParseSealed splits a stored value into subject and payload; ok is false
// for a value that is not sealed (plaintext written before sealing existed,
// or an empty field).
func ParseSealed(v string) (subject, payload string, ok bool) {
	rest, found := strings.CutPrefix(v, sealedPrefix)
	if !found {
		return "", "", false
	}
	subject, payload, ok = strings.Cut(rest, ".")
	return subject, payload, ok && subject != "" && payload != ""
}

// ErrNoCipher: an event with personal data was encoded by a registry that
// has no cipher (a programming error: personal data never goes to the log
// in the clear).
var ErrNoCipher = errors.New("domain: personal data without a cipher")

// SetCipher makes the registry seal personal fields on Encode and open them
// on Decode. A registry without a cipher leaves them as they are.
func (r *Registry) SetCipher(c Cipher) { r.cipher = c }

// Cipher is the registry's cipher (nil without one).
func (r *Registry) Cipher() Cipher { return r.cipher }

// Encode marshals an event's data, its personal fields sealed when the
// registry has a cipher.
func (r *Registry) Encode(e Event) ([]byte, error) {
	if r.cipher != nil {
		if seal, ok := r.sealers[e.EventType()]; ok {
			sealed, err := seal(e, r.cipher)
			if err != nil {
				return nil, fmt.Errorf("domain: seal %s: %w", e.EventType(), err)
			}
			e = sealed
		}
	}
	return Encode(e)
}

// Open returns e with its personal fields opened by the registry's cipher
// (e itself for an event without personal data, or without a cipher).
// Decode leaves them sealed: only the code that shows or mails personal
// data opens them, so that nothing else depends on the keys.
func (r *Registry) Open(e Event) (Event, error) {
	if r.cipher == nil || e == nil {
		return e, nil
	}
	open, ok := r.openers[e.EventType()]
	if !ok {
		return e, nil
	}
	out, err := open(e, r.cipher)
	if err != nil {
		return nil, fmt.Errorf("domain: open %s: %w", e.EventType(), err)
	}
	return out, nil
}

// IsErased reports whether the cipher knows subject's data as erased.
func (r *Registry) IsErased(subject string) bool {
	e, ok := r.cipher.(interface{ IsErased(string) bool })
	return ok && e.IsErased(subject)
}

// OpenValue opens one stored field (a value that is not sealed is
// returned as it is).
func (r *Registry) OpenValue(v string) (string, error) {
	if _, _, sealed := ParseSealed(v); !sealed || r.cipher == nil {
		return v, nil
	}
	return r.cipher.Open(v)
}

// sealFields seals (or opens) each non-empty field of p in place.
func sealFields(p Personal, c Cipher, open bool) error {
	subject, fields := p.PersonalData()
	for _, f := range fields {
		if *f == "" || *f == Erased {
			continue
		}
		var err error
		if open {
			if _, _, sealed := ParseSealed(*f); sealed {
				*f, err = c.Open(*f)
			}
		} else {
			if _, _, sealed := ParseSealed(*f); sealed {
				continue // sealed by the aggregate already
			}
			if subject == "" {
				return errors.New("personal data without a subject")
			}
			*f, err = c.Seal(subject, *f)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
