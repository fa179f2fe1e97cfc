// Package deptest keeps the dependency arrows of docs/ARCHITECTURE.md
// pointing one way: it fails when a package imports one it may not.
package deptest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/dynogrid/grid/internal/"

// allowed lists, for each package, the project packages its non-test code
// may import. A package missing here may import no project package.
var allowed = map[string][]string{
	"grid":      {},
	"cgroupfs":  {},
	"mounts":    {},
	"slug":      {"grid"},
	"sandbox":   {"grid", "cgroupfs", "mounts"},
	"scheduler": {"grid"},
	"provider":  {"grid", "cgroupfs", "mounts"},
	"schema":    {},
	"localca":   {},
	"session":   {},
	"proc":      {},
	"postgres":  {"grid", "proc"},
	"redis":     {"grid", "proc"},
	"store":     {"grid"},
	"logs":      {"grid", "store"},
	"drain":     {"grid", "store", "logs"},
	"router":    {"grid", "store", "logs"},
	"build":     {"grid", "store", "logs", "slug", "sandbox"},
	"gitrecv":   {"grid"},
	"manager":   {"grid", "store", "scheduler"},
	"host":      {"grid", "store", "logs", "slug", "sandbox", "session"},
	"api":       {"grid", "store", "logs", "drain", "schema", "session"},
	"cli":       {"grid", "schema", "session"},
}

func TestImportRules(t *testing.T) {
	dirs, err := os.ReadDir("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == "deptest" || strings.HasSuffix(d.Name(), "test") {
			continue
		}
		pkg := d.Name()
		ok, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not in the import rules; add it to allowed and to docs/ARCHITECTURE.md", pkg)
			continue
		}
		for _, imp := range imports(t, filepath.Join("..", pkg)) {
			dep := strings.SplitN(strings.TrimPrefix(imp, module), "/", 2)[0]
			if dep == pkg || contains(ok, dep) {
				continue
			}
			t.Errorf("%s imports %s: not allowed by docs/ARCHITECTURE.md", pkg, imp)
		}
	}
}

// imports returns the project imports of the non-test Go files in dir and
// its subdirectories that are not test helpers.
func imports(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == "testdata" || strings.HasSuffix(e.Name(), "test")) && path != dir {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if strings.HasPrefix(p, module) {
				out = append(out, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
