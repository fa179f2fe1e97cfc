package grid

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateAppName(t *testing.T) {
	for _, name := range []string{"hello", "a1", "my-app-2", "x" + strings.Repeat("y", 29)} {
		if err := ValidateAppName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"", "a", "Hello", "1app", "-x", "app_1", "app.x", "ünï", "x" + strings.Repeat("y", 30), "../etc", "a b"} {
		if err := ValidateAppName(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", name, err)
		}
	}
}

func str(s string) *string { return &s }

func TestPatchConfig(t *testing.T) {
	cur := map[string]string{"A": "1", "B": "2"}
	tests := []struct {
		name     string
		patch    map[string]*string
		want     map[string]string
		wantDesc string
		wantErr  error
	}{
		{"set", map[string]*string{"C": str("3"), "A": str("x")}, map[string]string{"A": "x", "B": "2", "C": "3"}, "Set A, C config vars", nil},
		{"remove", map[string]*string{"B": nil}, map[string]string{"A": "1"}, "Remove B config vars", nil},
		{"set and remove", map[string]*string{"B": nil, "Z": str("")}, map[string]string{"A": "1", "Z": ""}, "Set Z config vars and Remove B config vars", nil},
		{"remove missing is no change", map[string]*string{"NOPE": nil}, map[string]string{"A": "1", "B": "2"}, "", nil},
		{"bad name", map[string]*string{"A-B": str("1")}, nil, "", ErrInvalid},
		{"empty name", map[string]*string{"": str("1")}, nil, "", ErrInvalid},
		{"NUL in value", map[string]*string{"A": str("x\x00y")}, nil, "", ErrInvalid},
		{"too large", map[string]*string{"BIG": str(strings.Repeat("x", MaxConfigBytes))}, nil, "", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, desc, err := PatchConfig(cur, tt.patch)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if desc != tt.wantDesc {
				t.Errorf("description %q, want %q", desc, tt.wantDesc)
			}
		})
	}
	if cur["A"] != "1" || len(cur) != 2 {
		t.Errorf("PatchConfig modified its input: %v", cur)
	}
}

func TestDescriptions(t *testing.T) {
	if got := DeployDescription("409cdef5aa11"); got != "Deploy 409cdef5" {
		t.Errorf("deploy: %q", got)
	}
	if got := RollbackDescription(46); got != "Rollback to v46" {
		t.Errorf("rollback: %q", got)
	}
}

func TestParseScaleArg(t *testing.T) {
	n := func(i int) *int { return &i }
	tests := []struct {
		arg     string
		want    Scale
		wantErr bool
	}{
		{"web=3", Scale{Type: "web", Quantity: n(3)}, false},
		{"worker+1", Scale{Type: "worker", Quantity: n(1), Relative: true}, false},
		{"worker-2", Scale{Type: "worker", Quantity: n(-2), Relative: true}, false},
		{"web=2:Standard-2X", Scale{Type: "web", Quantity: n(2), Size: "standard-2x"}, false},
		{"web=:performance-m", Scale{Type: "web", Size: "performance-m"}, false},
		{"web", Scale{}, true},
		{"=3", Scale{}, true},
		{"web=x", Scale{}, true},
		{"we b=1", Scale{}, true},
	}
	for _, tt := range tests {
		got, err := ParseScaleArg(tt.arg)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v", tt.arg, err)
			continue
		}
		if err == nil && !cmp.Equal(tt.want, got) {
			t.Errorf("%q: %s", tt.arg, cmp.Diff(tt.want, got))
		}
	}
}

func TestFormationApply(t *testing.T) {
	f := Formation{App: "a", Types: map[string]FormationType{
		"web":    {Quantity: 1, Size: DefaultSize, Command: "bin/web"},
		"worker": {Quantity: 0, Size: DefaultSize, Command: "bin/worker"},
	}}
	scale := func(args ...string) []Scale {
		var out []Scale
		for _, a := range args {
			s, err := ParseScaleArg(a)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	got, err := f.Apply(scale("web=3", "worker+2", "worker-1", "web=:standard-2x"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Types["web"].Quantity != 3 || got.Types["worker"].Quantity != 1 || got.Types["web"].Size != "standard-2x" {
		t.Errorf("applied: %+v", got.Types)
	}
	if f.Types["web"].Quantity != 1 {
		t.Error("Apply modified its receiver")
	}
	for args, want := range map[string]error{
		"db=1":             ErrNotFound,
		"worker-1":         ErrInvalid,
		"web=101":          ErrInvalid,
		"web=1:enormous-x": ErrInvalid,
	} {
		if _, err := f.Apply(scale(args)); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", args, err, want)
		}
	}
}

func TestWithProcessTypes(t *testing.T) {
	first := Formation{App: "a"}.WithProcessTypes(map[string]string{"web": "bin/web", "worker": "bin/w", "release": "bin/migrate"})
	want := map[string]FormationType{
		"web":    {Quantity: 1, Size: DefaultSize, Command: "bin/web"},
		"worker": {Quantity: 0, Size: DefaultSize, Command: "bin/w"},
	}
	if diff := cmp.Diff(want, first.Types); diff != "" {
		t.Errorf("first deploy (-want +got):\n%s", diff)
	}
	scaled, _ := first.Apply([]Scale{{Type: "web", Quantity: new(3)}})
	next := scaled.WithProcessTypes(map[string]string{"web": "bin/web2", "clock": "bin/clock"})
	want = map[string]FormationType{
		"web":   {Quantity: 3, Size: DefaultSize, Command: "bin/web2"},
		"clock": {Quantity: 0, Size: DefaultSize, Command: "bin/clock"},
	}
	if diff := cmp.Diff(want, next.Types); diff != "" {
		t.Errorf("redeploy (-want +got):\n%s", diff)
	}
	if got := next.SortedTypes(); !cmp.Equal(got, []string{"web", "clock"}) {
		t.Errorf("sorted types %v", got)
	}
}

func TestLookupSize(t *testing.T) {
	s, err := LookupSize("Standard-2X")
	if err != nil || s.MemoryMB != 1024 {
		t.Errorf("%+v %v", s, err)
	}
	if s, _ := LookupSize(""); s.Name != DefaultSize {
		t.Errorf("default size %q", s.Name)
	}
}

func TestMessage(t *testing.T) {
	err := fmt.Errorf("app %q: %w", "x", ErrNotFound)
	if got := Message(err); got != `app "x"` {
		t.Errorf("Message = %q", got)
	}
	if got := Message(errors.New("plain")); got != "plain" {
		t.Errorf("Message = %q", got)
	}
}
