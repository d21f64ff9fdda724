// Package goldentest pins the stored shape of events: every registered
// event type has a sample whose encoding equals a golden JSON file, and
// the golden data still decodes to the sample. The aggregate packages of
// domain/ share it from their tests (it lives outside domain/, which may
// not do I/O).
package goldentest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prescripto/prescripto/domain"
)

// Dir holds the golden files, relative to the package under test.
const Dir = "testdata/golden"

// Run checks, for every type in registered, that samples has exactly one
// event of it and that its encoding equals Dir/<type>.json (modulo
// indentation; rewritten first when update is set), that the golden data
// and the encoding decode back to the sample through reg, and that no
// golden file is left without a registered type.
func Run(t *testing.T, reg *domain.Registry, registered []domain.Registration, samples []domain.Event, update bool) {
	t.Helper()
	r := domain.NewEmptyRegistry()
	if err := r.Register(registered...); err != nil {
		t.Fatal(err)
	}
	names := r.Types()
	sort.Strings(names)
	byType := map[string]domain.Event{}
	for _, e := range samples {
		if _, dup := byType[e.EventType()]; dup {
			t.Fatalf("two samples of %s", e.EventType())
		}
		byType[e.EventType()] = e
	}
	if len(names) != len(byType) {
		t.Errorf("%d registered types, %d samples", len(names), len(byType))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			e, ok := byType[name]
			if !ok {
				t.Fatalf("no golden sample for registered type %s", name)
			}
			check(t, reg, e, update)
		})
	}
	files, _ := filepath.Glob(filepath.Join(Dir, "*.json"))
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".json"); !slices.Contains(names, name) {
			t.Errorf("golden file %s has no registered type", f)
		}
	}
}

// check pins the stored form of e.
func check(t *testing.T, reg *domain.Registry, e domain.Event, update bool) {
	t.Helper()
	data, err := domain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, data, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join(Dir, e.EventType()+".json")
	if update {
		if err := os.MkdirAll(Dir, 0o755); err != nil {
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
		t.Fatalf("golden file %s: %v", path, err)
	}
	if !bytes.Equal(compact.Bytes(), data) {
		t.Errorf("the stored shape of %s changed (add a new version and an upcaster, or run -update if intended)\n shape diff:\n%s\n got  %s\n want %s",
			e.EventType(), shapeDiff(t, data, compact.Bytes()), data, compact.Bytes())
	}
	// stored data of the golden shape still decodes to the same value
	back, err := reg.Decode(e.EventType(), golden)
	if err != nil {
		t.Fatalf("decoding the golden file: %v", err)
	}
	if !reflect.DeepEqual(back, e) {
		t.Errorf("golden decodes to\n %#v\nwant\n %#v", back, e)
	}
	// and the value round-trips
	back, err = reg.Decode(e.EventType(), data)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.TypeOf(back) != reflect.TypeOf(e) || !reflect.DeepEqual(back, e) {
		t.Errorf("round trip gives %T %#v, want %T %#v", back, back, e, e)
	}
}

// shape maps every JSON path of data to its JSON kind.
func shape(t *testing.T, data []byte) map[string]string {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			out[path] = "object"
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			out[path] = "array"
			for _, e := range x {
				walk(path+"[]", e)
			}
		case string:
			out[path] = "string"
		case float64:
			out[path] = "number"
		case bool:
			out[path] = "bool"
		case nil:
			out[path] = "null"
		}
	}
	walk("$", v)
	return out
}

// shapeDiff lists the JSON paths whose kind differs between got and want.
func shapeDiff(t *testing.T, got, want []byte) string {
	g, w := shape(t, got), shape(t, want)
	var lines []string
	for k, v := range w {
		if g[k] != v {
			got := g[k]
			if got == "" {
				got = "absent"
			}
			lines = append(lines, fmt.Sprintf("  %s: %s, golden %s", k, got, v))
		}
	}
	for k, v := range g {
		if _, ok := w[k]; !ok {
			lines = append(lines, fmt.Sprintf("  %s: %s, not in golden", k, v))
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return "  (same fields and kinds; values differ)"
	}
	return strings.Join(lines, "\n")
}
