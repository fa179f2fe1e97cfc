package api

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		name, header string
		want         pageRange
	}{
		{"empty", "", pageRange{Field: "id", Max: 200}},
		{"quoted empty", "''", pageRange{Field: "id", Max: 200}},
		{"cli releases", "version ..; max=15, order=desc", pageRange{Field: "version", Max: 15, Desc: true}},
		{"cli config:set", "version ..; order=desc,max=1", pageRange{Field: "version", Max: 1, Desc: true}},
		{"cli domains", "id ..; max=1000;", pageRange{Field: "id", Max: 1000}},
		{"cli builds", "created_at ..; max=15, order=desc", pageRange{Field: "created_at", Max: 15, Desc: true}},
		{"bounds", "version 3..7", pageRange{Field: "version", Start: "3", End: "7", Max: 200}},
		{"exclusive start", "version ]3..; max=2", pageRange{Field: "version", Start: "3", StartExclusive: true, Max: 2}},
		{"no field", "]web..; max=5", pageRange{Field: "id", Start: "web", StartExclusive: true, Max: 5}},
		{"field only", "name", pageRange{Field: "name", Max: 200}},
		{"comma after bounds", "version .., order=desc", pageRange{Field: "version", Max: 200, Desc: true}},
		{"max clamped", "id ..; max=5000", pageRange{Field: "id", Max: 1000}},
		{"spacing and case", "  name   ..  ;  MAX = 3 ;ORDER=DESC ", pageRange{Field: "name", Max: 3, Desc: true}},
		{"unknown param", "id ..; foo=bar", pageRange{Field: "id", Max: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRange(tt.header, "id")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseRange(%q) (-want +got):\n%s", tt.header, diff)
			}
		})
	}
}

func TestParseRangeErrors(t *testing.T) {
	for _, h := range []string{"id ..; max=0", "id ..; max=-1", "id ..; max=x", "id ..; order=sideways", "id 5"} {
		t.Run(h, func(t *testing.T) {
			if _, err := parseRange(h, "id"); err == nil {
				t.Errorf("parseRange(%q) succeeded", h)
			} else if status, id, _ := classify(err); status != http.StatusRequestedRangeNotSatisfiable || id != "requested_range_not_satisfiable" {
				t.Errorf("parseRange(%q): %v classified %d %s", h, err, status, id)
			}
		})
	}
}

type item struct {
	V    int
	Name string
}

var itemFields = []rangeField[item]{
	{"version", func(i item) string { return strconv.Itoa(i.V) }, intKey},
	{"name", func(i item) string { return i.Name }, textKey},
}

func items(n int) []item {
	var out []item
	for v := n; v >= 1; v-- { // unsorted on purpose
		out = append(out, item{V: v, Name: "n" + strconv.Itoa(v)})
	}
	return out
}

func TestPage(t *testing.T) {
	tests := []struct {
		name, rng    string
		n            int
		want         []int
		status       int
		next, cRange string
	}{
		{"default all", "", 3, []int{1, 2, 3}, 200, "", "version 1..3"},
		{"newest only", "version ..; order=desc,max=1", 12, []int{12}, 206, "version ]12..; max=1, order=desc", "version 12..12"},
		{"second page desc", "version ]12..; max=3, order=desc", 12, []int{11, 10, 9}, 206, "version ]9..; max=3, order=desc", "version 11..9"},
		{"last page", "version ]3..; max=5, order=desc", 12, []int{2, 1}, 200, "", "version 2..1"},
		{"exact fit", "version ..; max=3", 3, []int{1, 2, 3}, 200, "", "version 1..3"},
		{"numeric not lexical", "version ]9..; max=2", 12, []int{10, 11}, 206, "version ]11..; max=2", "version 10..11"},
		{"bounded", "version 4..6", 12, []int{4, 5, 6}, 200, "", "version 4..6"},
		{"v prefix", "version v11..", 12, []int{11, 12}, 200, "", "version 11..12"},
		{"empty list", "", 0, nil, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("Range", tt.rng)
			w := httptest.NewRecorder()
			got, status, err := page(w, r, items(tt.n), itemFields)
			if err != nil {
				t.Fatal(err)
			}
			var vs []int
			for _, it := range got {
				vs = append(vs, it.V)
			}
			if diff := cmp.Diff(tt.want, vs); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if status != tt.status {
				t.Errorf("status %d, want %d", status, tt.status)
			}
			if got := w.Header().Get("Next-Range"); got != tt.next {
				t.Errorf("Next-Range %q, want %q", got, tt.next)
			}
			if got := w.Header().Get("Content-Range"); got != tt.cRange {
				t.Errorf("Content-Range %q, want %q", got, tt.cRange)
			}
			if got := w.Header().Get("Accept-Ranges"); got != "version, name" {
				t.Errorf("Accept-Ranges %q", got)
			}
		})
	}
}

// TestPageFollowsNextRange walks every page as the Heroku CLI does and
// checks each item comes exactly once.
func TestPageFollowsNextRange(t *testing.T) {
	for _, order := range []string{"asc", "desc"} {
		rng := "name ..; max=7, order=" + order
		var seen []string
		for pages := 0; rng != ""; pages++ {
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("Range", rng)
			w := httptest.NewRecorder()
			got, _, err := page(w, r, items(30), itemFields)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range got {
				seen = append(seen, it.Name)
			}
			rng = w.Header().Get("Next-Range")
		}
		if len(seen) != 30 {
			t.Errorf("order %s: saw %d items: %v", order, len(seen), seen)
		}
		for i := 1; i < len(seen); i++ {
			if (order == "asc") != (seen[i-1] < seen[i]) {
				t.Errorf("order %s: %s then %s", order, seen[i-1], seen[i])
			}
		}
	}
}

func TestPageUnknownField(t *testing.T) {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Range", "colour ..")
	_, _, err := page(httptest.NewRecorder(), r, items(3), itemFields)
	if status, _, _ := classify(err); status != http.StatusRequestedRangeNotSatisfiable || !strings.Contains(err.Error(), "version, name") {
		t.Errorf("unknown field: %v (%d)", err, status)
	}
}

func FuzzRange(f *testing.F) {
	for _, s := range []string{"", "version ..; max=15, order=desc", "version ..; order=desc,max=1", "id ..; max=1000;", "version ]3..5; max=2", "]..", ";;,,", "name a..b, order=asc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		pr, err := parseRange(h, "version")
		if err != nil {
			return
		}
		if pr.Max < 1 || pr.Max > maxPageSize {
			t.Fatalf("parseRange(%q): max %d out of bounds", h, pr.Max)
		}
		// Whatever parses must page without panicking, and a Next-Range
		// must parse back.
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Range", h)
		w := httptest.NewRecorder()
		got, status, err := page(w, r, items(25), itemFields)
		if err != nil {
			return
		}
		if len(got) > pr.Max {
			t.Fatalf("%q: %d items for max %d", h, len(got), pr.Max)
		}
		if next := w.Header().Get("Next-Range"); next != "" {
			if status != http.StatusPartialContent {
				t.Fatalf("%q: Next-Range with status %d", h, status)
			}
			if _, err := parseRange(next, "version"); err != nil {
				t.Fatalf("Next-Range %q does not parse: %v", next, err)
			}
		}
	})
}
