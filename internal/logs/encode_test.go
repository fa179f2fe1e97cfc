package logs

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// encode must store what json.Marshal would: every line decodes to the
// same Line either way.
func TestEncodeMatchesJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 5, 14, 47, 41, 593531000, time.UTC)
	cases := []struct {
		name string
		line Line
	}{
		{"router line", Line{Time: at, App: "hello", Source: "heroku", Dyno: "router",
			Text: `at=info method=GET path="/a?b=c&d=<e>" host=hello.localhost request_id=x fwd="127.0.0.1" dyno=web.1 connect=0ms service=1ms status=200 bytes=12 protocol=http`}},
		{"controls and escapes", Line{Time: at, App: "a", Source: "app", Dyno: "web.1", Text: "tab\tnl\ncr\rnul\x00bell\x07 back\\slash \"q\" \x7f"}},
		{"unicode", Line{Time: at.In(time.FixedZone("x", 3600)), App: "a", Source: "app", Dyno: "web.1", Text: "héllo ✓ 😀 \u2028 \u2029"}},
		{"invalid utf-8", Line{Time: at, App: "a", Source: "app", Dyno: "web.1", Text: "bad \xff\xfe end \xe2\x82"}},
		{"empty", Line{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := appendLine(nil, tc.line)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(tc.line)
			var g, w map[string]any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("encode made invalid JSON %s: %v", got, err)
			}
			json.Unmarshal(want, &w)
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("decoded differently (-json.Marshal +encode):\n%s\n%s", diff, got)
			}
		})
	}
	if _, err := appendLine(nil, Line{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("a time beyond year 9999 encoded")
	}
}
