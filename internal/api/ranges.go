package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Range paging, as the Platform API does it:
//
//	Range: <field> [<start>]..[<end>][; max=<n>][, order=asc|desc]
//
// The Heroku CLI sends variants such as "version ..; max=15, order=desc",
// "version ..; order=desc,max=1" and "id ..; max=1000;", so parameters are
// split on both ';' and ','. A start written "]x" is exclusive; that is how
// Next-Range continues after the last item of a page. Start and end are
// bounds in the requested order, so with order=desc the start is the
// highest value.
const (
	defaultPageSize = 200
	maxPageSize     = 1000
)

// pageRange is a parsed Range header.
type pageRange struct {
	Field          string
	Start, End     string // raw bounds; empty means open
	StartExclusive bool
	Max            int
	Desc           bool
}

// parseRange parses h; an empty header means defField ascending, from the
// start, defaultPageSize items. It is tolerant of spacing, empty
// parameters and unknown parameters, strict about values it uses.
func parseRange(h, defField string) (pageRange, error) {
	pr := pageRange{Field: defField, Max: defaultPageSize}
	h = strings.TrimSpace(h)
	if h == "" || h == "''" || h == `""` {
		return pr, nil
	}
	spec, params, _ := strings.Cut(h, ";")
	spec = strings.TrimSpace(spec)
	// Parameters may follow the bounds after ',' with no ';' at all.
	if i := strings.IndexByte(spec, ','); i >= 0 {
		spec, params = strings.TrimSpace(spec[:i]), spec[i+1:]+";"+params
	}
	field, bounds, hasBounds := strings.Cut(spec, " ")
	if !strings.Contains(field, "..") && field != "" {
		pr.Field = field
	} else {
		bounds, hasBounds = spec, true
	}
	if hasBounds {
		if err := pr.parseBounds(strings.TrimSpace(bounds)); err != nil {
			return pageRange{}, err
		}
	}
	for _, p := range strings.FieldsFunc(params, func(r rune) bool { return r == ';' || r == ',' }) {
		if err := pr.parseParam(strings.TrimSpace(p)); err != nil {
			return pageRange{}, err
		}
	}
	return pr, nil
}

func (pr *pageRange) parseBounds(b string) error {
	if b == "" {
		return nil
	}
	start, end, ok := strings.Cut(b, "..")
	if !ok {
		return fmt.Errorf("range %q: bounds must look like [start]..[end]: %w", b, errBadRange)
	}
	if strings.HasPrefix(start, "]") {
		start, pr.StartExclusive = start[1:], true
	}
	pr.Start, pr.End = strings.TrimSpace(start), strings.TrimSpace(end)
	return nil
}

func (pr *pageRange) parseParam(p string) error {
	k, v, _ := strings.Cut(p, "=")
	k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
	switch k {
	case "max":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("range max=%q: must be a whole number from 1 to %d: %w", v, maxPageSize, errBadRange)
		}
		pr.Max = min(n, maxPageSize)
	case "order":
		switch strings.ToLower(v) {
		case "asc":
			pr.Desc = false
		case "desc":
			pr.Desc = true
		default:
			return fmt.Errorf("range order=%q: must be asc or desc: %w", v, errBadRange)
		}
	}
	return nil
}

// String renders the range the way Next-Range carries it.
func (pr pageRange) String() string {
	var b strings.Builder
	b.WriteString(pr.Field + " ")
	if pr.StartExclusive {
		b.WriteByte(']')
	}
	b.WriteString(pr.Start + ".." + pr.End)
	fmt.Fprintf(&b, "; max=%d", pr.Max)
	if pr.Desc {
		b.WriteString(", order=desc")
	}
	return b.String()
}

// rangeField is a sortable field of a listed resource.
type rangeField[T any] struct {
	name string
	// value is the field as clients see it in Content-Range and Next-Range.
	value func(T) string
	// key turns a value (from an item or from a Range bound) into a string
	// that sorts correctly byte-wise; ok is false for a bound that is not a
	// valid value of the field.
	key func(string) (string, bool)
}

// textKey sorts text as is.
func textKey(s string) (string, bool) { return s, true }

// intKey sorts non-negative integers numerically.
func intKey(s string) (string, bool) {
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "v"), 10, 63)
	if err != nil {
		return "", false
	}
	return fmt.Sprintf("%020d", n), true
}

// page selects the items r's Range header asks for and sets the paging
// headers. It returns the status to answer with: 206 when more items
// follow (with Next-Range), else 200.
func page[T any](w http.ResponseWriter, r *http.Request, items []T, fields []rangeField[T]) ([]T, int, error) {
	pr, err := parseRange(r.Header.Get("Range"), fields[0].name)
	if err != nil {
		return nil, 0, err
	}
	i := slices.IndexFunc(fields, func(f rangeField[T]) bool { return f.name == pr.Field })
	if i < 0 {
		return nil, 0, fmt.Errorf("cannot sort by %q; sortable fields are %s: %w", pr.Field, fieldNames(fields), errBadRange)
	}
	f := fields[i]
	out, more, err := selectRange(items, f, pr)
	if err != nil {
		return nil, 0, err
	}
	h := w.Header()
	h.Set("Accept-Ranges", fieldNames(fields))
	if len(out) > 0 {
		h.Set("Content-Range", fmt.Sprintf("%s %s..%s", f.name, f.value(out[0]), f.value(out[len(out)-1])))
	}
	if !more {
		return out, http.StatusOK, nil
	}
	next := pr
	next.Start, next.StartExclusive, next.End = f.value(out[len(out)-1]), true, pr.End
	h.Set("Next-Range", next.String())
	return out, http.StatusPartialContent, nil
}

type keyed[T any] struct {
	key  string
	item T
}

// selectRange sorts items by f in pr's order and returns at most pr.Max
// of them within pr's bounds, and whether more follow.
func selectRange[T any](items []T, f rangeField[T], pr pageRange) ([]T, bool, error) {
	bound := func(s string) (string, error) {
		k, ok := f.key(s)
		if !ok {
			return "", fmt.Errorf("range bound %q is not a valid %s: %w", s, f.name, errBadRange)
		}
		return k, nil
	}
	var start, end string
	var err error
	if pr.Start != "" {
		if start, err = bound(pr.Start); err != nil {
			return nil, false, err
		}
	}
	if pr.End != "" {
		if end, err = bound(pr.End); err != nil {
			return nil, false, err
		}
	}
	ks := make([]keyed[T], 0, len(items))
	for _, it := range items {
		k, _ := f.key(f.value(it))
		ks = append(ks, keyed[T]{k, it})
	}
	cmp := func(a, b string) int { return strings.Compare(a, b) }
	if pr.Desc {
		// Items come oldest first; among equal keys (times are in whole
		// seconds) the newest must come first too.
		slices.Reverse(ks)
		cmp = func(a, b string) int { return strings.Compare(b, a) }
	}
	slices.SortStableFunc(ks, func(a, b keyed[T]) int { return cmp(a.key, b.key) })
	var out []T
	for _, k := range ks {
		if pr.Start != "" && (cmp(k.key, start) < 0 || pr.StartExclusive && cmp(k.key, start) == 0) {
			continue
		}
		if pr.End != "" && cmp(k.key, end) > 0 {
			break
		}
		if len(out) == pr.Max {
			return out, true, nil
		}
		out = append(out, k.item)
	}
	return out, false, nil
}

func fieldNames[T any](fields []rangeField[T]) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return strings.Join(names, ", ")
}

// timeKey sorts RFC 3339 times chronologically.
func timeKey(s string) (string, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", false
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z"), true
}

// timeValue renders a time as the API does, in whole seconds of UTC.
func timeValue(t time.Time) string { return apiTime(t).Format(time.RFC3339) }
