package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	modulePath = "github.com/prescripto/prescripto"
	domainPath = modulePath + "/domain"
	uuidPath   = "github.com/google/uuid"
)

// allowed reports whether a package under domain/ may depend on path: the
// standard library, uuid, and domain itself.
func allowed(path string, standard bool) bool {
	return standard || path == uuidPath || path == domainPath || strings.HasPrefix(path, domainPath+"/")
}

// The domain is pure: the caller passes the clock, nothing does I/O or
// draws randomness. These standard packages and clock calls break that.
var (
	impureImports = []string{
		"os", "os/exec", "os/signal", "net", "net/http", "log", "log/slog", "math/rand", "math/rand/v2",
		"crypto/rand", "database/sql", "syscall", "unsafe", "io/ioutil", "runtime",
	}
	clockCalls = []string{"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "Tick", "NewTimer", "NewTicker"}
)

// scanImports parses every non-test Go file under root (skipping testdata)
// and returns what breaks the rules, and how many files it read.
func scanImports(root string) (problems []string, files int, err error) {
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
		timeName := ""
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			// a standard-library path has no dot in its first element
			first, _, _ := strings.Cut(p, "/")
			if !allowed(p, !strings.Contains(first, ".")) {
				report("%s imports %s: only the standard library, %s and %s/... are allowed", path, p, uuidPath, domainPath)
			}
			if slices.Contains(impureImports, p) {
				report("%s imports %s, which has no place in the pure domain", path, p)
			}
			if p == "C" {
				report("%s uses cgo", path)
			}
			if p == "time" {
				timeName = "time"
				if imp.Name != nil {
					timeName = imp.Name.Name
				}
			}
		}
		if timeName != "" {
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == timeName && slices.Contains(clockCalls, sel.Sel.Name) {
						report("%s: %s.%s: the domain takes the clock from its caller", fset.Position(sel.Pos()), timeName, sel.Sel.Name)
					}
				}
				return true
			})
		}
		return nil
	})
	return problems, files, err
}

// TestDomainImportsParsed checks the imports of every non-test Go file
// under domain/ (the package directory is the test's working directory).
func TestDomainImportsParsed(t *testing.T) {
	t.Parallel()
	problems, files, err := scanImports(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if files < 5 {
		t.Fatalf("found only %d Go files under domain/", files)
	}
}

// TestImportScannerCatchesViolations runs the scanner on a fixture that
// breaks every rule (testdata is never built).
func TestImportScannerCatchesViolations(t *testing.T) {
	t.Parallel()
	problems, files, err := scanImports(filepath.Join("testdata", "impure"))
	if err != nil {
		t.Fatal(err)
	}
	if files != 1 {
		t.Fatalf("scanned %d fixture files", files)
	}
	all := strings.Join(problems, "\n")
	for _, want := range []string{
		"imports github.com/go-chi/chi/v5: only", "imports github.com/prescripto/prescripto/eventstore: only",
		"imports os, which", "imports math/rand, which", "clock.Now", "clock.Since",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem mentions %q; got:\n%s", want, all)
		}
	}
	if len(problems) != 6 {
		t.Errorf("%d problems, want 6:\n%s", len(problems), all)
	}
}

// TestDomainImportsGoList asks the go tool for the full dependency graph
// of domain/... (test files excluded) and checks every package in it.
func TestDomainImportsGoList(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH; TestDomainImportsParsed still checks direct imports")
	}
	cmd := exec.Command(goTool, "list", "-deps", "-json=ImportPath,Standard,Imports,Error", "./...")
	cmd.Dir = "."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	type pkg struct {
		ImportPath string
		Standard   bool
		Imports    []string
		Error      *struct{ Err string }
	}
	standard := map[string]bool{}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
		standard[p.ImportPath] = p.Standard
	}
	var domainPkgs []string
	for _, p := range pkgs {
		if p.Error != nil {
			t.Errorf("%s: %s", p.ImportPath, p.Error.Err)
		}
		if !allowed(p.ImportPath, p.Standard) {
			t.Errorf("domain/... depends on %s", p.ImportPath)
		}
		if p.ImportPath == domainPath || strings.HasPrefix(p.ImportPath, domainPath+"/") {
			domainPkgs = append(domainPkgs, p.ImportPath)
			for _, imp := range p.Imports {
				if !allowed(imp, standard[imp]) {
					t.Errorf("%s imports %s", p.ImportPath, imp)
				}
			}
		}
	}
	for _, want := range []string{domainPath, domainPath + "/doctor", domainPath + "/account", domainPath + "/catalog"} {
		if !slices.Contains(domainPkgs, want) {
			t.Errorf("go list did not report %s (got %v)", want, domainPkgs)
		}
	}
}
