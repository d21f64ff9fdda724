package doctor

import (
	"net/url"
	"strings"

	"github.com/prescripto/prescripto/domain"
)

// Profile is what patients see of a doctor.
type Profile struct {
	Name            string `json:"name"`
	Speciality      string `json:"speciality"`
	Degree          string `json:"degree"`
	ExperienceYears int    `json:"experienceYears"`
	About           string `json:"about"`
	Fees            int64  `json:"fees"` // minor units of Currency
	Currency        string `json:"currency"`
	Address         string `json:"address"`
	ImageURL        string `json:"imageUrl"`
	Available       bool   `json:"available"`
}

// MaxFees bounds a fee in minor units (10 million major units).
const MaxFees = 1_000_000_000

// Normalize trims the text fields and upper-cases the currency.
func (p Profile) Normalize() Profile {
	p.Name = strings.TrimSpace(p.Name)
	p.Speciality = strings.TrimSpace(p.Speciality)
	p.Degree = strings.TrimSpace(p.Degree)
	p.About = strings.TrimSpace(p.About)
	p.Address = strings.TrimSpace(p.Address)
	p.ImageURL = strings.TrimSpace(p.ImageURL)
	p.Currency = strings.ToUpper(strings.TrimSpace(p.Currency))
	return p
}

// Validate checks a normalized profile.
func (p Profile) Validate() error {
	bad := func(format string, args ...any) error {
		return domain.Detail(ErrInvalidProfile, format, args...)
	}
	switch {
	case !domain.TextOK(p.Name, 1, 100):
		return bad("name must be 1 to 100 characters of plain text (no control characters)")
	case !domain.TextOK(p.Speciality, 1, 60):
		return bad("speciality must be 1 to 60 characters of plain text (no control characters)")
	case !domain.TextOK(p.Degree, 0, 60):
		return bad("degree must be at most 60 characters of plain text (no control characters)")
	case p.ExperienceYears < 0 || p.ExperienceYears > 80:
		return bad("experienceYears must be between 0 and 80")
	case !domain.TextOK(p.About, 0, 4000):
		return bad("about must be at most 4000 characters of plain text (no control characters)")
	case p.Fees < 0 || p.Fees > MaxFees:
		return bad("fees must be between 0 and %d minor units", MaxFees)
	case !validCurrency(p.Currency):
		return bad("currency must be a three-letter ISO 4217 code")
	case !domain.TextOK(p.Address, 0, 300):
		return bad("address must be at most 300 characters of plain text (no control characters)")
	case !validImageURL(p.ImageURL):
		return bad("imageUrl must be an http or https URL")
	}
	return nil
}

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func validImageURL(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > 2048 {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
