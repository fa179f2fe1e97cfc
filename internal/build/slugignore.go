package build

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// A top-level .slugignore lists paths to leave out of the slug, as on
// Heroku: removed from the source after the push and before the
// buildpacks run, so they cost neither build time nor slug size. The
// syntax is .gitignore's without negation: a pattern without a slash
// matches a name at any depth, one with a slash (a leading one included)
// is relative to the app's root, a trailing slash matches directories
// only, and *, ?, [...] and ** glob.

// maxIgnorePatterns bounds a .slugignore: a list of paths, not a program.
const maxIgnorePatterns = 1000

type ignorePattern struct {
	segs    []string // the pattern split at "/"
	rooted  bool     // contains a slash: matched from the root
	dirOnly bool
}

// parseSlugignore reads the patterns of a .slugignore. Negations are
// reported, as Heroku does not support them.
func parseSlugignore(text string) (pats []ignorePattern, warnings []string) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "!"):
			warnings = append(warnings, fmt.Sprintf(".slugignore line %d: %q: negation is not supported; ignored", n, line))
			continue
		case len(pats) == maxIgnorePatterns:
			warnings = append(warnings, fmt.Sprintf(".slugignore: only the first %d patterns are used", maxIgnorePatterns))
			return pats, warnings
		}
		p := ignorePattern{dirOnly: strings.HasSuffix(line, "/")}
		line = strings.TrimSuffix(line, "/")
		p.rooted = strings.Contains(line, "/")
		line = strings.TrimPrefix(line, "/")
		if line == "" || line == "." || line == ".." {
			warnings = append(warnings, fmt.Sprintf(".slugignore line %d: %q matches nothing; ignored", n, sc.Text()))
			continue
		}
		p.segs = strings.Split(line, "/")
		pats = append(pats, p)
	}
	return pats, warnings
}

// matches reports whether rel (slash-separated, relative to the root)
// is ignored by p.
func (p ignorePattern) matches(rel string, isDir bool) bool {
	if p.dirOnly && !isDir {
		return false
	}
	parts := strings.Split(rel, "/")
	if !p.rooted {
		ok, _ := path.Match(p.segs[0], parts[len(parts)-1])
		return ok
	}
	return matchSegs(p.segs, parts)
}

// matchSegs matches path segments against pattern segments, "**"
// standing for any number of segments (none included).
func matchSegs(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if matchSegs(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	ok, _ := path.Match(pat[0], parts[0])
	return ok && matchSegs(pat[1:], parts[1:])
}

// applySlugignore removes from dir what its .slugignore lists and
// returns how many files and directories went (a directory's contents
// counted with it) and any warnings about the file. Symbolic links are
// removed, never followed.
func applySlugignore(dir string) (removed int, warnings []string, err error) {
	text, err := os.ReadFile(filepath.Join(dir, ".slugignore"))
	if os.IsNotExist(err) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf(".slugignore: %w", err)
	}
	pats, warnings := parseSlugignore(string(text))
	if len(pats) == 0 {
		return 0, warnings, nil
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == ".slugignore" {
			return nil
		}
		for _, pat := range pats {
			if pat.matches(rel, d.IsDir()) {
				removed += countTree(p, d)
				if err := os.RemoveAll(p); err != nil {
					return err
				}
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		return nil
	})
	return removed, warnings, err
}

// countTree counts p and, for a directory, everything below it.
func countTree(p string, d fs.DirEntry) int {
	if !d.IsDir() {
		return 1
	}
	n := 0
	_ = filepath.WalkDir(p, func(string, fs.DirEntry, error) error { n++; return nil })
	return n
}
