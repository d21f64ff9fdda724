package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prescripto/prescripto/commands"
	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/doctor"
)

// DemoDoctor is one doctor of the demo catalogue.
type DemoDoctor struct {
	Name, Email, Speciality, Degree, About string
	Experience                             int
	Fees                                   int64
}

// DemoCatalogue is the original Prescripto catalogue: fifteen doctors in six
// specialities.
var DemoCatalogue = []DemoDoctor{
	{"Dr. Richard James", "richard.james", "General physician", "MBBS", "Dr. James has a strong commitment to delivering comprehensive medical care, focusing on preventive medicine, early diagnosis, and effective treatment strategies.", 4, 50000},
	{"Dr. Emily Larson", "emily.larson", "Gynecologist", "MBBS", "Dr. Larson cares for women's health through every stage of life, from routine screening to pregnancy care.", 3, 60000},
	{"Dr. Sarah Patel", "sarah.patel", "Dermatologist", "MBBS", "Dr. Patel treats conditions of the skin, hair and nails, with a focus on evidence-based care.", 1, 30000},
	{"Dr. Christopher Lee", "christopher.lee", "Pediatricians", "MBBS", "Dr. Lee looks after children from birth through adolescence, from vaccinations to acute care.", 2, 40000},
	{"Dr. Jennifer Garcia", "jennifer.garcia", "Neurologist", "MBBS", "Dr. Garcia diagnoses and treats disorders of the brain, spine and nerves.", 4, 50000},
	{"Dr. Andrew Williams", "andrew.williams", "Neurologist", "MBBS", "Dr. Williams specialises in headache, epilepsy and movement disorders.", 4, 50000},
	{"Dr. Christopher Davis", "christopher.davis", "General physician", "MBBS", "Dr. Davis provides primary care for adults, with attention to long-term conditions.", 4, 50000},
	{"Dr. Timothy White", "timothy.white", "Gynecologist", "MBBS", "Dr. White offers gynaecological consultations and family-planning advice.", 3, 60000},
	{"Dr. Ava Mitchell", "ava.mitchell", "Dermatologist", "MBBS", "Dr. Mitchell treats acne, eczema and psoriasis, and screens for skin cancer.", 1, 30000},
	{"Dr. Jeffrey King", "jeffrey.king", "Pediatricians", "MBBS", "Dr. King cares for newborns and children, and supports parents with growth and nutrition.", 2, 40000},
	{"Dr. Zoe Kelly", "zoe.kelly", "Gastroenterologist", "MBBS", "Dr. Kelly diagnoses and treats conditions of the digestive system and liver.", 4, 50000},
	{"Dr. Patrick Harris", "patrick.harris", "Gastroenterologist", "MBBS", "Dr. Harris specialises in endoscopy and inflammatory bowel disease.", 4, 50000},
	{"Dr. Chloe Evans", "chloe.evans", "General physician", "MBBS", "Dr. Evans focuses on preventive care and health check-ups for the whole family.", 4, 50000},
	{"Dr. Ryan Martinez", "ryan.martinez", "Gynecologist", "MBBS", "Dr. Martinez provides prenatal care and treats menstrual and hormonal disorders.", 3, 60000},
	{"Dr. Amelia Hill", "amelia.hill", "Dermatologist", "MBBS", "Dr. Amelia Hill treats skin allergies and offers cosmetic dermatology consultations.", 1, 30000},
}

// demoPolicy is the payment policy of a demo doctor when payments are
// configured (the sandbox in --demo): two general practice doctors
// require payment (held 15 minutes), two take it optionally, the rest at
// the clinic. Without payments every doctor's is "none".
func demoPolicy(email string, payments bool) (doctor.PaymentPolicy, int) {
	switch {
	case !payments:
		return doctor.PaymentNone, 0
	case email == "richard.james" || email == "emily.larson":
		return doctor.PaymentRequired, 15
	case email == "christopher.lee" || email == "jennifer.garcia":
		return doctor.PaymentOptional, 0
	}
	return doctor.PaymentNone, 0
}

// DemoZone is the demo doctors' zone.
const DemoZone = "Asia/Kolkata"

// DemoCredentials are the logins the demo prints.
type DemoCredentials struct {
	AdminEmail, AdminPassword string
	DoctorPassword            string
}

// DemoSeed says what SeedDemo did.
type DemoSeed struct {
	DemoCredentials
	// Seeded counts the accounts (admin and doctors) created by this run:
	// zero when the catalogue was there already.
	Seeded int
}

// SeedDemo seeds the demo catalogue, once and idempotently: what exists
// already is left alone (looked up by email, so a restart hashes no
// password), and every step carries an Idempotency-Key, so a run stopped
// half-way is completed by the next one. Passwords are generated on the
// first run and kept (0600) in the data dir.
func (a *App) SeedDemo(ctx context.Context, dataDir string) (DemoSeed, error) {
	creds, err := demoCredentials(dataDir)
	out := DemoSeed{DemoCredentials: creds}
	if err != nil {
		return out, err
	}
	sys := func(key string) commands.Meta {
		return commands.Meta{Actor: domain.System, CorrelationID: "demo-seed", IdempotencyKey: "demo-seed/" + key}
	}
	missing := func(email string) (bool, error) {
		_, ok, err := a.Commands.EmailOwner(ctx, email)
		return !ok, err
	}
	if ok, err := missing(creds.AdminEmail); err != nil {
		return out, err
	} else if ok {
		if _, err := a.Commands.CreateStaff(ctx, sys("admin"), commands.NewAccount{Name: "Prescripto Admin", Email: creds.AdminEmail, Password: creds.AdminPassword, Role: domain.RoleAdmin}); err != nil {
			return out, fmt.Errorf("seed admin: %w", err)
		}
		out.Seeded++
	}
	for _, d := range DemoCatalogue {
		email := d.Email + "@prescripto.demo"
		if ok, err := missing(email); err != nil {
			return out, err
		} else if !ok {
			continue
		}
		policy, hold := demoPolicy(d.Email, a.gateway != nil)
		s := doctor.Schedule{
			Timezone: DemoZone, SlotMinutes: 30, BookingWindowDays: 30, MinNoticeMinutes: 30,
			PaymentPolicy: policy, HoldMinutes: hold, RefundCutoffHours: doctor.DefaultRefundCutoffHours,
		}
		for wd := 1; wd <= 7; wd++ {
			s.Weekly = append(s.Weekly, doctor.WeeklyHours{Weekday: wd, Start: "10:00", End: "21:00"})
		}
		_, err := a.Commands.RegisterDoctor(ctx, sys("doctor/"+d.Email), commands.RegisterDoctor{
			Profile: doctor.Profile{
				Name: d.Name, Speciality: d.Speciality, Degree: d.Degree, ExperienceYears: d.Experience, About: d.About,
				Fees: d.Fees, Currency: "INR", Address: "57th Cross, Richmond Circle, Bengaluru", Available: true,
				ImageURL: "https://prescripto.example/images/" + d.Email + ".png",
			},
			Email: email, Password: creds.DoctorPassword, Schedule: &s,
		})
		if err != nil {
			return out, fmt.Errorf("seed %s: %w", d.Name, err)
		}
		out.Seeded++
	}
	return out, nil
}

func demoCredentials(dataDir string) (DemoCredentials, error) {
	path := filepath.Join(dataDir, "demo-credentials")
	c := DemoCredentials{AdminEmail: "admin@prescripto.demo"}
	if b, err := os.ReadFile(path); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, "=")
			switch k {
			case "admin_password":
				c.AdminPassword = v
			case "doctor_password":
				c.DoctorPassword = v
			}
		}
		if c.AdminPassword == "" || c.DoctorPassword == "" {
			return c, fmt.Errorf("%s is incomplete; delete it together with the data dir to reseed", path)
		}
		return c, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return c, err
	}
	c.AdminPassword, c.DoctorPassword = randomPassword(), randomPassword()
	body := fmt.Sprintf("admin_email=%s\nadmin_password=%s\ndoctor_password=%s\n", c.AdminEmail, c.AdminPassword, c.DoctorPassword)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return c, err
	}
	return c, nil
}

func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// EnsureAdmin creates an admin with email unless the email already has an
// account: created is false then, and nothing is hashed or appended. It is
// idempotent across restarts and concurrent calls.
func (a *App) EnsureAdmin(ctx context.Context, name, email, password string) (created bool, err error) {
	if _, ok, err := a.Commands.EmailOwner(ctx, email); err != nil || ok {
		return false, err
	}
	m := commands.Meta{Actor: domain.System, CorrelationID: "bootstrap-admin", IdempotencyKey: "bootstrap-admin/" + account.NormalizeEmail(email)}
	_, err = a.Commands.CreateStaff(ctx, m, commands.NewAccount{Name: name, Email: email, Password: password, Role: domain.RoleAdmin})
	if errors.Is(err, account.ErrEmailTaken) || errors.Is(err, commands.ErrIdempotencyKeyReused) {
		// Taken meanwhile (another password or name than this call's is
		// not a new admin).
		return false, nil
	}
	return err == nil, err
}
