package api_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prescripto/prescripto/api"
	"github.com/prescripto/prescripto/api/apitest"
)

// docsPath is the user-facing contract, relative to this package.
const docsPath = "../docs/api.md"

// docRoute is a route a table row of docs/api.md names in its first cell:
// "METHOD /path[?query] [*(planned)*|*(501)*]".
type docRoute struct {
	method, path string // path with parameters normalised to {}
	planned      bool
	line         int
}

var (
	rowRoute  = regexp.MustCompile(`^\|\s*(GET|POST|PUT|PATCH|DELETE|HEAD) (/[^\s?|]*)(\?[^\s|]*)?([^|]*)\|`)
	pathParam = regexp.MustCompile(`\{[^}/]*\}`)
	// A problem code: backquoted after a status (409 `slot_unavailable`),
	// possibly one of a list (422 `a`, `b` or `c`).
	statusCodes = regexp.MustCompile("\\b[45]\\d\\d ((?:`[a-z][a-z0-9_]*`(?:, | or | and |,? or )?)+)")
	backquoted  = regexp.MustCompile("`([a-z][a-z0-9_]*)`")
)

func normalise(path string) string { return pathParam.ReplaceAllString(path, "{}") }

// docBlock is a table row or a paragraph (a list item counts as one).
type docBlock struct {
	text string
	line int
}

// readDocs parses docs/api.md into its routes and its blocks of text.
func readDocs(t *testing.T) ([]docRoute, []docBlock) {
	t.Helper()
	f, err := os.Open(docsPath)
	if err != nil {
		t.Fatalf("the contract %s: %v", docsPath, err)
	}
	defer f.Close()
	var routes []docRoute
	var blocks []docBlock
	var cur *docBlock
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "|"):
			blocks = append(blocks, docBlock{trimmed, n})
			cur = nil
			if m := rowRoute.FindStringSubmatch(trimmed); m != nil {
				routes = append(routes, docRoute{method: m[1], path: normalise(m[2]), planned: strings.Contains(m[4], "(planned)"), line: n})
			}
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
			cur = nil
		case cur == nil || strings.HasPrefix(trimmed, "- "):
			blocks = append(blocks, docBlock{trimmed, n})
			cur = &blocks[len(blocks)-1]
		default:
			cur.text += " " + trimmed
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return routes, blocks
}

// TestDocsMatchOpenAPI keeps docs/api.md and openapi.yaml in step: every
// operation of the OpenAPI document is a route of docs/api.md, and every
// route docs/api.md lists is in the OpenAPI document, unless it is marked
// *(planned)*, which then must not be there yet.
func TestDocsMatchOpenAPI(t *testing.T) {
	t.Parallel()
	routes, _ := readDocs(t)
	if len(routes) < 40 {
		t.Fatalf("%s: only %d routes found in its tables; did the table format change? (rows start with \"| METHOD /path\")", docsPath, len(routes))
	}
	doc := apitest.NewValidator(t).Document()
	inOpenAPI := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inOpenAPI[method+" "+normalise(path)] = true
		}
	}
	documented := map[string]docRoute{}
	for _, r := range routes {
		key := r.method + " " + r.path
		if prev, dup := documented[key]; dup {
			t.Errorf("%s:%d: %s is listed twice (also line %d)", docsPath, r.line, key, prev.line)
		}
		documented[key] = r
		switch {
		case r.planned && inOpenAPI[key]:
			t.Errorf("%s:%d: %s is marked (planned) but api/openapi.yaml documents it: drop the mark", docsPath, r.line, key)
		case !r.planned && !inOpenAPI[key]:
			t.Errorf("%s:%d: %s is not in api/openapi.yaml: add it there, or mark the route *(planned)* if this release does not serve it", docsPath, r.line, key)
		}
	}
	var missing []string
	for key := range inOpenAPI {
		if _, ok := documented[key]; !ok {
			missing = append(missing, key)
		}
	}
	slices.Sort(missing)
	for _, key := range missing {
		t.Errorf("api/openapi.yaml has %s, which %s does not list: add a table row for it", key, docsPath)
	}
}

// TestDocsProblemCodesAreKnown: every problem code docs/api.md names after
// a status (409 `slot_unavailable`) outside a *(planned)* row or paragraph
// is one the server has (a string in its Go sources: a domain error, a code
// of package api) or the OpenAPI document names.
func TestDocsProblemCodesAreKnown(t *testing.T) {
	t.Parallel()
	known := knownCodes(t)
	_, blocks := readDocs(t)
	seen := 0
	for _, b := range blocks {
		if strings.Contains(b.text, "(planned)") {
			continue
		}
		for _, m := range statusCodes.FindAllStringSubmatch(b.text, -1) {
			for _, c := range backquoted.FindAllStringSubmatch(m[1], -1) {
				seen++
				if !known[c[1]] {
					t.Errorf("%s:%d: problem code %q is neither in the server's sources nor in api/openapi.yaml; mark it *(planned)* or fix the name", docsPath, b.line, c[1])
				}
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d problem codes found in %s; did the notation change? (a status, then the code in backquotes: 409 `slot_unavailable`)", seen, docsPath)
	}
}

// knownCodes gathers the snake_case strings of the module's non-test Go
// sources and the backquoted names of openapi.yaml.
func knownCodes(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	literal := regexp.MustCompile(`"([a-z][a-z0-9_]*)"`)
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllSubmatch(b, -1) {
			known[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the sources: %v", err)
	}
	for _, m := range backquoted.FindAllSubmatch(api.OpenAPIDocument(), -1) {
		known[string(m[1])] = true
	}
	if !known["slot_unavailable"] || !known["not_implemented"] {
		t.Fatalf("the sources name no slot_unavailable or not_implemented: wrong directory? (%d strings)", len(known))
	}
	return known
}
