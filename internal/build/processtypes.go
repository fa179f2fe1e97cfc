package build

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/slug"
)

// ReleaseInfo is what a buildpack's bin/release says about the app.
type ReleaseInfo struct {
	ProcessTypes map[string]string // default_process_types
	// ConfigVars (config_vars, a legacy key) are set on the app's release
	// when the app has no var of that name.
	ConfigVars map[string]string
}

// ParseRelease reads a bin/release answer. It understands the YAML
// buildpacks actually print: top-level "default_process_types:" and
// "config_vars:" keys, each followed by an indented block of "name:
// value" lines (values plain, 'single' or "double" quoted) or an empty
// flow map "{}". Other top-level keys (addons) are ignored. Anything else
// under those keys is ErrInvalid.
func ParseRelease(out []byte) (ReleaseInfo, error) {
	info := ReleaseInfo{ProcessTypes: map[string]string{}, ConfigVars: map[string]string{}}
	var section map[string]string
	sectionName := ""
	for i, line := range strings.Split(string(out), "\n") {
		line = strings.TrimRight(line, " \t\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || trimmed == "---" {
			continue
		}
		indented := line[0] == ' ' || line[0] == '\t'
		if !indented {
			key, rest, _ := strings.Cut(line, ":")
			sectionName, section = key, map[string]map[string]string{
				"default_process_types": info.ProcessTypes, "config_vars": info.ConfigVars}[key]
			if rest = strings.TrimSpace(rest); section != nil && rest != "" && rest != "{}" {
				return ReleaseInfo{}, releaseErr(i+1, sectionName+" must be a block of \"name: value\" lines")
			}
			continue
		}
		if section == nil {
			continue
		}
		name, value, ok := strings.Cut(trimmed, ":")
		if !ok {
			return ReleaseInfo{}, releaseErr(i+1, "expected \"name: value\"")
		}
		name = strings.TrimSpace(name)
		validate := grid.ValidateProcessType
		if sectionName == "config_vars" {
			validate = grid.ValidateConfigKey
		}
		if err := validate(name); err != nil {
			return ReleaseInfo{}, fmt.Errorf("bin/release line %d: %w", i+1, err)
		}
		value, err := yamlScalar(strings.TrimSpace(value))
		if err != nil || value == "" && sectionName == "default_process_types" {
			return ReleaseInfo{}, releaseErr(i+1, "bad value for "+name)
		}
		section[name] = value
	}
	return info, nil
}

func releaseErr(line int, what string) error {
	return fmt.Errorf("bin/release line %d: %s: %w", line, what, grid.ErrInvalid)
}

// yamlScalar unquotes a YAML scalar in the forms buildpacks print.
func yamlScalar(s string) (string, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		return strconv.Unquote(s)
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return "", grid.ErrInvalid
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	}
	return s, nil
}

// readProcfile parses dir/Procfile; ok is false when there is none. The
// file is opened through an os.Root, so a Procfile symlinked out of the
// tree is refused, and non-blocking, so a fifo cannot hang the build.
func readProcfile(dir string) (types map[string]string, ok bool, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, false, err
	}
	defer root.Close()
	f, err := root.OpenFile("Procfile", os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("Procfile: %v: %w", err, grid.ErrInvalid)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("Procfile is not a regular file: %w", grid.ErrInvalid)
	}
	types, err = slug.ParseProcfile(io.Reader(f))
	return types, true, err
}

// mergeTypes lays the Procfile's types over the buildpack's defaults: the
// Procfile wins.
func mergeTypes(defaults, procfile map[string]string) map[string]string {
	out := make(map[string]string, len(defaults)+len(procfile))
	for t, c := range defaults {
		out[t] = c
	}
	for t, c := range procfile {
		out[t] = c
	}
	return out
}

// typeNames lists process types web first, then alphabetically.
func typeNames(types map[string]string) string {
	f := grid.Formation{Types: map[string]grid.FormationType{}}
	for t := range types {
		f.Types[t] = grid.FormationType{}
	}
	return strings.Join(f.SortedTypes(), ", ")
}

// scaledTo renders a formation as the "Scaled to" API log line does:
// "web@1:Standard-1X worker@0:Standard-1X", sorted by type.
func scaledTo(f grid.Formation) string {
	var parts []string
	for t, ft := range f.Types {
		size := ft.Size
		if s, err := grid.LookupSize(ft.Size); err == nil {
			size = s.DisplayName
		}
		parts = append(parts, fmt.Sprintf("%s@%d:%s", t, ft.Quantity, size))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
