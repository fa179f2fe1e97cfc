package slug_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/slug"
)

func TestParseProcfile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want map[string]string
		err  error
		line string // the error names this line
	}{
		{name: "simple", in: "web: bin/app\n", want: map[string]string{"web": "bin/app"}},
		{name: "several, comments, blanks, CRLF", in: "# comment\r\n\r\nweb: bundle exec puma -p $PORT\r\n  worker :  bin/work --queue=a:b  \r\n", want: map[string]string{"web": "bundle exec puma -p $PORT", "worker": "bin/work --queue=a:b"}},
		{name: "BOM", in: "\xef\xbb\xbfweb: x", want: map[string]string{"web": "x"}},
		{name: "release type", in: "release: ./migrate\nweb: x", want: map[string]string{"release": "./migrate", "web": "x"}},
		{name: "empty file", in: "", want: map[string]string{}},
		{name: "no colon", in: "web: x\nworker bin/w\n", err: grid.ErrInvalid, line: "line 2"},
		{name: "bad type", in: "we b: x", err: grid.ErrInvalid, line: "line 1"},
		{name: "slash in type", in: "../x: y", err: grid.ErrInvalid, line: "line 1"},
		{name: "empty command", in: "\n\nweb:   \n", err: grid.ErrInvalid, line: "line 3"},
		{name: "duplicate", in: "web: a\nweb: b\n", err: grid.ErrInvalid, line: "line 2"},
		{name: "bare CR", in: "web: a\rworker: b", err: grid.ErrInvalid, line: "line 1"},
		{name: "too large", in: "web: " + strings.Repeat("x", 1<<20), err: grid.ErrTooLarge},
		{name: "too many types", in: manyTypes(slug.MaxProcessTypes + 1), err: grid.ErrInvalid, line: fmt.Sprintf("line %d", slug.MaxProcessTypes+1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := slug.ParseProcfile(strings.NewReader(tc.in))
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(fmt.Sprint(err), tc.line) {
					t.Fatalf("err %v, want %v naming %q", err, tc.err, tc.line)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func manyTypes(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "t%d: run\n", i)
	}
	return b.String()
}

func FuzzProcfile(f *testing.F) {
	for _, s := range []string{"web: bin/app\n", "# c\r\nweb: a\r\nworker: b:c\n", "\xef\xbb\xbfweb:x", "web", "web:\n", "a: b\na: c", "-_: \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		types, err := slug.ParseProcfile(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, grid.ErrInvalid) && !errors.Is(err, grid.ErrTooLarge) {
				t.Fatalf("uncategorised error %v", err)
			}
			return
		}
		if len(types) > slug.MaxProcessTypes {
			t.Fatalf("%d types", len(types))
		}
		var lines []string
		for typ, cmd := range types {
			if grid.ValidateProcessType(typ) != nil || cmd == "" || strings.ContainsAny(cmd, "\x00\r\n") || cmd != strings.TrimSpace(cmd) {
				t.Fatalf("accepted %q: %q", typ, cmd)
			}
			lines = append(lines, typ+": "+cmd)
		}
		sort.Strings(lines)
		again, err := slug.ParseProcfile(strings.NewReader(strings.Join(lines, "\n")))
		if err != nil || !cmp.Equal(again, types) {
			t.Fatalf("re-parsing the rendered Procfile: %v, %v; want %v", again, err, types)
		}
	})
}
