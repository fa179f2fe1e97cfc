package grid

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
)

// BuildpackKind says where a buildpack's files come from.
type BuildpackKind int

const (
	// BuildpackBuiltin ships with the grid: "heroku/go".
	BuildpackBuiltin BuildpackKind = iota
	// BuildpackGit is a git repository over http(s), at its default
	// branch or at "#ref" (a branch, tag or commit).
	BuildpackGit
	// BuildpackTarball is a .tgz, .tar.gz or .tar over http(s) holding
	// bin/ at its root or under one top directory.
	BuildpackTarball
	// BuildpackLocal is a directory on the grid's machines, usable only
	// under the roots the operator allows.
	BuildpackLocal
)

// BuiltinBuildpacks are the names of the buildpacks the grid ships, in
// detection order.
var BuiltinBuildpacks = []string{"heroku/go", "heroku/nodejs", "heroku/python", "heroku/static", "heroku/procfile"}

// MaxBuildpacks bounds an app's buildpack list.
const MaxBuildpacks = 8

// BuildpackRef is a parsed buildpack reference, as users write them in
// `grid buildpacks:add`, the buildpack-installations API and .buildpacks.
type BuildpackRef struct {
	URL  string // as given, normalized: "heroku/go", "https://host/x.git#v2", "/srv/bp"
	Kind BuildpackKind
	// Fetch is what to download: the URL without its #ref (git, tarball)
	// or the directory (local).
	Fetch string
	Ref   string // git only: the #ref, empty for the default branch
}

// registryNameRE is how a name from Heroku's buildpack registry looks.
var registryNameRE = regexp.MustCompile(`^[a-z0-9-]+/[a-z0-9-]+$`)

var gitRefRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$`)

// ParseBuildpack checks a buildpack reference: a built-in's name
// ("heroku/go", also as "urn:buildpack:heroku/go"), an http(s) URL of a
// git repository with an optional "#ref" or of a tarball, or an absolute
// path ("/srv/bp" or "file:///srv/bp").
func ParseBuildpack(s string) (BuildpackRef, error) {
	bad := func(why string) (BuildpackRef, error) {
		return BuildpackRef{}, fmt.Errorf("buildpack %q: %s: %w", s, why, ErrInvalid)
	}
	if s == "" || len(s) > 1000 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad("give a name like heroku/nodejs, a URL or a path, with no spaces, of at most 1000 characters")
	}
	s = strings.TrimPrefix(s, "urn:buildpack:")
	if slices.Contains(BuiltinBuildpacks, s) {
		return BuildpackRef{URL: s, Kind: BuildpackBuiltin, Fetch: s}, nil
	}
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "file://") {
		p := strings.TrimPrefix(s, "file://")
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p {
			return bad("a local buildpack must be a clean absolute path")
		}
		return BuildpackRef{URL: p, Kind: BuildpackLocal, Fetch: p}, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		if registryNameRE.MatchString(s) {
			return bad("no such built-in buildpack; the built-ins are " + strings.Join(BuiltinBuildpacks, ", "))
		}
		return bad("use a built-in (" + strings.Join(BuiltinBuildpacks, ", ") + "), an http(s) URL of a git repository or a tarball, or an absolute path")
	}
	ref := u.Fragment
	u.Fragment, u.RawFragment = "", ""
	fetch := u.String()
	p := strings.ToLower(u.Path)
	if strings.HasSuffix(p, ".tgz") || strings.HasSuffix(p, ".tar.gz") || strings.HasSuffix(p, ".tar") {
		if ref != "" {
			return bad("a tarball takes no #ref")
		}
		return BuildpackRef{URL: fetch, Kind: BuildpackTarball, Fetch: fetch}, nil
	}
	if ref != "" && (!gitRefRE.MatchString(ref) || strings.Contains(ref, "..")) {
		return bad("the #ref must be a branch, tag or commit name")
	}
	norm := fetch
	if ref != "" {
		norm += "#" + ref
	}
	return BuildpackRef{URL: norm, Kind: BuildpackGit, Fetch: fetch, Ref: ref}, nil
}

// ParseBuildpacks parses a list, refusing duplicates and more than
// MaxBuildpacks.
func ParseBuildpacks(list []string) ([]BuildpackRef, error) {
	if len(list) > MaxBuildpacks {
		return nil, fmt.Errorf("%d buildpacks: an app may use at most %d: %w", len(list), MaxBuildpacks, ErrInvalid)
	}
	refs := make([]BuildpackRef, 0, len(list))
	for _, s := range list {
		r, err := ParseBuildpack(s)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(refs, func(o BuildpackRef) bool { return o.URL == r.URL }) {
			return nil, fmt.Errorf("buildpack %s is listed twice: %w", r.URL, ErrInvalid)
		}
		refs = append(refs, r)
	}
	return refs, nil
}
