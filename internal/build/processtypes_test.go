package build

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
)

func TestParseRelease(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want map[string]string
		err  bool
	}{
		{"block", "---\ndefault_process_types:\n  web: bin/app -p $PORT\n  worker: bin/work\n", map[string]string{"web": "bin/app -p $PORT", "worker": "bin/work"}, false},
		{"quoted", "default_process_types:\n  web: \"npm start\"\n  w: 'it''s'\n", map[string]string{"web": "npm start", "w": "it's"}, false},
		{"empty flow", "---\ndefault_process_types: {}\n", map[string]string{}, false},
		{"other keys", "---\naddons:\n  - heroku-postgresql\nconfig_vars:\n  A: b\ndefault_process_types:\n  web: x\n", map[string]string{"web": "x"}, false},
		{"bad config var", "config_vars:\n  A-B: x\n", nil, true},
		{"nothing", "", map[string]string{}, false},
		{"CRLF and comments", "default_process_types:\r\n  # the web\r\n  web: x\r\n", map[string]string{"web": "x"}, false},
		{"flow with entries", "default_process_types: {web: x}\n", nil, true},
		{"bad type", "default_process_types:\n  we b: x\n", nil, true},
		{"no colon", "default_process_types:\n  web\n", nil, true},
		{"empty command", "default_process_types:\n  web:\n", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			info, err := ParseRelease([]byte(tc.in))
			got := info.ProcessTypes
			if tc.err {
				if !errors.Is(err, grid.ErrInvalid) {
					t.Fatalf("err %v, want ErrInvalid", err)
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

func TestParseReleaseConfigVars(t *testing.T) {
	t.Parallel()
	info, err := ParseRelease([]byte("---\nconfig_vars:\n  LANG: en_US.UTF-8\n  EMPTY: ''\n  PATH: \"bin:/usr/bin\"\ndefault_process_types:\n  web: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"LANG": "en_US.UTF-8", "EMPTY": "", "PATH": "bin:/usr/bin"}, info.ConfigVars); diff != "" {
		t.Errorf("config vars (-want +got)\n%s", diff)
	}
}

func TestDiscoverNaming(t *testing.T) {
	t.Parallel()
	if got := typeNames(map[string]string{"worker": "", "web": "", "clock": ""}); got != "web, clock, worker" {
		t.Errorf("typeNames = %q", got)
	}
	f := grid.Formation{Types: map[string]grid.FormationType{"web": {Quantity: 1, Size: "standard-1x"}, "rake": {Size: "standard-1x"}}}
	if got := scaledTo(f); got != "rake@0:Standard-1X web@1:Standard-1X" {
		t.Errorf("scaledTo = %q", got)
	}
	m := mergeTypes(map[string]string{"web": "default", "console": "c"}, map[string]string{"web": "mine"})
	if diff := cmp.Diff(map[string]string{"web": "mine", "console": "c"}, m); diff != "" {
		t.Errorf("mergeTypes (-want +got)\n%s", diff)
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	tl := &tail{n: 3}
	tl.Write([]byte("one\ntwo\r\nthr"))
	tl.Write([]byte("ee\nfour\nfive"))
	if got := strings.Join(tl.Lines(), "|"); got != "three|four|five" {
		t.Errorf("Lines = %q", got)
	}
}

func TestOutputCap(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	o := newOutput(&sb, 10)
	o.Write([]byte("12345"))
	o.Write([]byte("1234567"))
	o.step("ours %d", 1)
	o.Write([]byte("x"))
	want := "12345\n !     Build output is over its size limit; the rest is not shown.\n-----> ours 1\n"
	if sb.String() != want {
		t.Errorf("output %q, want %q", sb.String(), want)
	}
}
