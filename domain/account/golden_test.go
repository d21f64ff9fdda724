package account_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prescripto/prescripto/domain"
	"github.com/prescripto/prescripto/domain/account"
	"github.com/prescripto/prescripto/domain/catalog"
)

// go test ./domain/account -run Golden -update rewrites testdata/golden.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const goldenDir = "testdata/golden"

// goldenSamples is one instance of every account event type, every field set.
func goldenSamples() []domain.Event {
	at := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	return []domain.Event{
		account.Registered{
			AccountID: "acc-1", Name: "Asha Rao", Email: "asha@example.com", PasswordHash: "$2a$10$abcdefghijklmnopqrstuv",
			Role: domain.RoleDoctor, DoctorID: "doc-1", RegisteredAt: at,
		},
		account.ProfileUpdated{AccountID: "acc-1", Profile: account.Profile{
			Name: "Asha Rao", Phone: "+91 80 1234 5678", Address: "12 MG Road, Bengaluru", Gender: "female", DOB: "1990-05-17",
		}},
		account.EmailClaimed{
			Email: "asha@example.com", AccountID: "acc-1", Role: domain.RoleDoctor, Name: "Asha Rao",
			PasswordHash: "$2a$10$abcdefghijklmnopqrstuv", DoctorID: "doc-1", ClaimedAt: at,
		},
	}
}

func TestGolden(t *testing.T) {
	t.Parallel()
	r := domain.NewEmptyRegistry()
	if err := r.Register(account.Events()...); err != nil {
		t.Fatal(err)
	}
	names := r.Types()
	sort.Strings(names)
	samples := map[string]domain.Event{}
	for _, e := range goldenSamples() {
		samples[e.EventType()] = e
	}
	if len(names) != len(samples) {
		t.Errorf("%d registered types, %d samples", len(names), len(samples))
	}
	reg, err := catalog.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			e, ok := samples[name]
			if !ok {
				t.Fatalf("no golden sample for registered type %s", name)
			}
			data, err := domain.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, data, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join(goldenDir, name+".json")
			if *update {
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("missing golden file (run with -update to create): %v", err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, golden); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(compact.Bytes(), data) {
				t.Errorf("the stored shape of %s changed (add a new version and an upcaster, or run -update if intended)\n got  %s\n want %s",
					name, data, compact.Bytes())
			}
			for _, in := range [][]byte{golden, data} {
				back, err := reg.Decode(name, in)
				if err != nil {
					t.Fatal(err)
				}
				if reflect.TypeOf(back) != reflect.TypeOf(e) || !reflect.DeepEqual(back, e) {
					t.Errorf("decodes to %T %#v, want %#v", back, back, e)
				}
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".json"); !slices.Contains(names, name) {
			t.Errorf("golden file %s has no registered type", f)
		}
	}
}

// TestOmittedDoctorID: a non-doctor account stores no doctorId at all.
func TestOmittedDoctorID(t *testing.T) {
	t.Parallel()
	data, err := domain.Encode(account.Registered{AccountID: "acc-2", Role: domain.RolePatient})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("doctorId")) {
		t.Errorf("a patient registration stores a doctorId: %s", data)
	}
}
