package api

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

func intp(n int) *int { return &n }

func TestScalesAcceptsBothForms(t *testing.T) {
	tests := []struct {
		name, body string
		want       []grid.Scale
	}{
		{"heroku cli", `{"updates":[{"quantity":"2","size":"Standard-2X","type":"web"},{"quantity":"+1","type":"worker"}]}`,
			[]grid.Scale{{Type: "web", Quantity: intp(2), Size: "standard-2x"}, {Type: "worker", Quantity: intp(1), Relative: true}}},
		{"schema", `{"updates":[{"type":"web","quantity":3,"dyno_size":{"name":"performance-m"}}]}`,
			[]grid.Scale{{Type: "web", Quantity: intp(3), Size: "performance-m"}}},
		{"size by id", `{"updates":[{"type":"web","dyno_size":{"id":"` + sizeID("standard-2x") + `"}}]}`,
			[]grid.Scale{{Type: "web", Size: "standard-2x"}}},
		{"decrement", `{"updates":[{"type":"web","quantity":"-1"}]}`,
			[]grid.Scale{{Type: "web", Quantity: intp(-1), Relative: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b schema.FormationBatchUpdate
			if err := json.Unmarshal([]byte(tt.body), &b); err != nil {
				t.Fatal(err)
			}
			got, err := scales(b.Updates, "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestScalesErrors(t *testing.T) {
	for name, body := range map[string]string{
		"no updates":   `{"updates":[]}`,
		"no type":      `{"updates":[{"quantity":1}]}`,
		"bad type":     `{"updates":[{"type":"we b","quantity":1}]}`,
		"bad quantity": `{"updates":[{"type":"web","quantity":"lots"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			var b schema.FormationBatchUpdate
			if err := json.Unmarshal([]byte(body), &b); err != nil {
				t.Fatal(err)
			}
			if _, err := scales(b.Updates, ""); !errors.Is(err, grid.ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
}

// FuzzFormationUpdate feeds arbitrary PATCH /apps/{app}/formation bodies
// through decoding, conversion and Formation.Apply: nothing may panic, and
// an accepted update never leaves a negative quantity, an unknown size or
// more dynos than allowed.
func FuzzFormationUpdate(f *testing.F) {
	for _, s := range []string{
		`{"updates":[{"quantity":"2","size":"Standard-2X","type":"web"},{"quantity":"+1","type":"worker"}]}`,
		`{"updates":[{"type":"web","quantity":3,"dyno_size":{"name":"performance-m"}}]}`,
		`{"updates":[{"type":"web","quantity":1e3}]}`,
		`{"updates":[{"type":"worker","quantity":"-5"}]}`,
		`{"updates":null}`,
		`{"quantity":"+1"}`,
	} {
		f.Add([]byte(s))
	}
	base := grid.Formation{App: "a", Types: map[string]grid.FormationType{
		"web":    {Quantity: 1, Size: "standard-1x", Command: "run"},
		"worker": {Quantity: 2, Size: "basic", Command: "work"},
	}}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b schema.FormationBatchUpdate
		if json.Unmarshal(body, &b) != nil {
			return
		}
		sc, err := scales(b.Updates, "")
		if err != nil {
			return
		}
		next, err := base.Apply(sc)
		if err != nil {
			return
		}
		if next.Total() > grid.MaxDynosPerApp {
			t.Fatalf("total %d", next.Total())
		}
		for typ, ft := range next.Types {
			if ft.Quantity < 0 {
				t.Fatalf("%s quantity %d", typ, ft.Quantity)
			}
			if _, err := grid.LookupSize(ft.Size); err != nil {
				t.Fatalf("%s size %q", typ, ft.Size)
			}
		}
	})
}
