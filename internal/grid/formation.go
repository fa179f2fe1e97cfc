package grid

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// MaxDynosPerApp bounds the total quantity across an app's process types.
const MaxDynosPerApp = 100

// Formation is the wanted shape of an app: how many dynos of each process
// type, and of what size. It is stored under one key per app and changed
// only by compare-and-set.
type Formation struct {
	App   string                   `json:"app"`
	Types map[string]FormationType `json:"types"`
}

// FormationType is one process type's entry in a formation.
type FormationType struct {
	Quantity int    `json:"quantity"`
	Size     string `json:"size"`    // dyno size name; empty means DefaultSize
	Command  string `json:"command"` // from the current slug's process types
	// Epoch counts restarts of this type (ps:restart). Dynos started under
	// an older epoch are replaced, start-before-stop.
	Epoch int `json:"epoch"`
}

// DefaultSize is the dyno size used when none is given.
const DefaultSize = "standard-1x"

var processTypeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// ValidateProcessType reports whether t is a usable process type name.
func ValidateProcessType(t string) error {
	if !processTypeRE.MatchString(t) {
		return fmt.Errorf("process type %q may contain only letters, digits, dashes and underscores (1 to 63): %w", t, ErrInvalid)
	}
	return nil
}

// Scale is one requested change to a process type: absolute (Quantity set,
// Relative false) or relative (+N/-N). Quantity nil leaves the count alone.
type Scale struct {
	Type     string
	Quantity *int
	Relative bool
	Size     string
}

// ParseQuantity parses a quantity as the Heroku CLI sends it: "2", "+1",
// "-1" (strings) or a JSON number already turned into text.
func ParseQuantity(s string) (n int, relative bool, err error) {
	s = strings.TrimSpace(s)
	relative = strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-")
	n, err = strconv.Atoi(s)
	if err != nil {
		return 0, false, fmt.Errorf("quantity %q is not a whole number: %w", s, ErrInvalid)
	}
	return n, relative, nil
}

// ParseScaleArg parses one CLI argument such as "web=3", "worker+1" or
// "web=2:standard-2x".
func ParseScaleArg(arg string) (Scale, error) {
	i := strings.IndexAny(arg, "=+-")
	if i <= 0 {
		return Scale{}, fmt.Errorf("%q: expected TYPE=N, TYPE+N or TYPE-N: %w", arg, ErrInvalid)
	}
	sc := Scale{Type: arg[:i]}
	rest := arg[i:]
	if rest[0] == '=' {
		rest = rest[1:]
	}
	if q, size, ok := strings.Cut(rest, ":"); ok {
		rest, sc.Size = q, strings.ToLower(size)
	}
	if rest != "" {
		n, rel, err := ParseQuantity(rest)
		if err != nil {
			return Scale{}, err
		}
		sc.Quantity, sc.Relative = &n, rel
	}
	return sc, ValidateProcessType(sc.Type)
}

// Apply returns f with the scales applied. A type the formation does not
// have is an error, as are negative results and exceeding MaxDynosPerApp.
func (f Formation) Apply(scales []Scale) (Formation, error) {
	next := Formation{App: f.App, Types: make(map[string]FormationType, len(f.Types))}
	for t, ft := range f.Types {
		next.Types[t] = ft
	}
	for _, sc := range scales {
		ft, ok := next.Types[sc.Type]
		if !ok {
			return Formation{}, fmt.Errorf("no %s process type on app %s; the Procfile declares %s: %w", sc.Type, f.App, f.typeList(), ErrNotFound)
		}
		if sc.Quantity != nil {
			q := *sc.Quantity
			if sc.Relative {
				q += ft.Quantity
			}
			if q < 0 {
				return Formation{}, fmt.Errorf("%s cannot be scaled below 0 dynos: %w", sc.Type, ErrInvalid)
			}
			ft.Quantity = q
		}
		if sc.Size != "" {
			if _, err := LookupSize(sc.Size); err != nil {
				return Formation{}, err
			}
			ft.Size = strings.ToLower(sc.Size)
		}
		next.Types[sc.Type] = ft
	}
	if total := next.Total(); total > MaxDynosPerApp {
		return Formation{}, fmt.Errorf("%d dynos is more than the %d allowed per app: %w", total, MaxDynosPerApp, ErrInvalid)
	}
	return next, nil
}

// Total is the number of dynos the formation asks for.
func (f Formation) Total() int {
	n := 0
	for _, ft := range f.Types {
		n += ft.Quantity
	}
	return n
}

// SortedTypes returns the process type names in a stable order: web first,
// then alphabetical.
func (f Formation) SortedTypes() []string {
	ts := make([]string, 0, len(f.Types))
	for t := range f.Types {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool {
		if (ts[i] == "web") != (ts[j] == "web") {
			return ts[i] == "web"
		}
		return ts[i] < ts[j]
	})
	return ts
}

func (f Formation) typeList() string {
	if len(f.Types) == 0 {
		return "no process types (push code with a Procfile first)"
	}
	return strings.Join(f.SortedTypes(), ", ")
}

// WithProcessTypes returns f updated for a new slug's process types:
// commands follow the slug, types keep their quantity and size, new types
// start at 0 dynos (web at 1 when the app had no formation yet), and types
// the slug no longer declares are dropped, as on Heroku. The release type
// is not a formation entry: it runs once per release.
func (f Formation) WithProcessTypes(types map[string]string) Formation {
	first := len(f.Types) == 0
	next := Formation{App: f.App, Types: make(map[string]FormationType, len(types))}
	for t, ft := range f.Types {
		if _, ok := types[t]; ok {
			next.Types[t] = ft
		}
	}
	for t, cmd := range types {
		if t == "release" {
			continue
		}
		ft, ok := next.Types[t]
		if !ok {
			ft = FormationType{Size: DefaultSize}
			if first && t == "web" {
				ft.Quantity = 1
			}
		}
		ft.Command = cmd
		next.Types[t] = ft
	}
	return next
}
