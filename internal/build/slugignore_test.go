package build

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSlugignorePatterns(t *testing.T) {
	pats, warnings := parseSlugignore("# docs\n\n*.psd\n/secret.txt\nlog/\nassets/**/*.map\n!keep.psd\nvendor/cache\n/\n")
	if len(pats) != 5 || len(warnings) != 2 {
		t.Fatalf("%d patterns, warnings %q", len(pats), warnings)
	}
	for _, c := range []struct {
		rel   string
		dir   bool
		match bool
	}{
		{"art.psd", false, true},
		{"a/b/art.psd", false, true},
		{"art.psd.txt", false, false},
		{"secret.txt", false, true},
		{"sub/secret.txt", false, false},
		{"log", true, true},
		{"app/log", true, true},
		{"log", false, false}, // a file named log: the pattern wants directories
		{"assets/app.map", false, true},
		{"assets/js/deep/app.map", false, true},
		{"other/app.map", false, false},
		{"vendor/cache", true, true},
		{"x/vendor/cache", true, false},
		{"keep.psd", false, true}, // no negation: still ignored
	} {
		got := slices.ContainsFunc(pats, func(p ignorePattern) bool { return p.matches(c.rel, c.dir) })
		if got != c.match {
			t.Errorf("%s (dir %v): matched %v, want %v", c.rel, c.dir, got, c.match)
		}
	}
}

func TestApplySlugignore(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"Procfile", "docs/a.md", "docs/b/c.md", "img/x.psd", "img/y.png", "secret.txt"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".slugignore"), []byte("docs/\n*.psd\n/secret.txt\nlink\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	removed, warnings, err := applySlugignore(dir)
	if err != nil || len(warnings) != 0 {
		t.Fatal(err, warnings)
	}
	var left []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			left = append(left, rel)
		}
		return nil
	})
	if want := []string{".slugignore", "Procfile", "img/y.png"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	if removed != 7 { // docs, docs/a.md, docs/b, docs/b/c.md, img/x.psd, secret.txt, link
		t.Errorf("removed %d, want 7", removed)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("a symlink's target was removed: %v", err)
	}
	if n, w, err := applySlugignore(t.TempDir()); n != 0 || w != nil || err != nil {
		t.Errorf("without .slugignore: %d %v %v", n, w, err)
	}
}
