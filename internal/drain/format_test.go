package drain

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dynogrid/grid/internal/logs"
)

func TestFrame(t *testing.T) {
	t.Parallel()
	state := logs.Line{Time: time.Date(2012, 11, 30, 6, 45, 29, 0, time.UTC), Source: "app", Dyno: "web.3", Text: "State changed from starting to up"}
	router := logs.Line{Time: t0, Source: "heroku", Dyno: "router", Text: "at=info status=200"}
	for _, tc := range []struct {
		l    logs.Line
		host string
		sd   bool
		want string
	}{
		// Heroku's HTTPS sample, "83 <40>1 2012-11-30T06:45:29+00:00 host app
		// web.3 - State changed from starting to up\n", with Dynogrid's
		// PRI and microseconds: 1 + 7 bytes more.
		{state, "host", false, "91 <190>1 2012-11-30T06:45:29.000000+00:00 host app web.3 - State changed from starting to up\n"},
		{state, token, true, "127 <190>1 2012-11-30T06:45:29.000000+00:00 " + token + " app web.3 - - State changed from starting to up\n"},
		{router, token, true, "116 <134>1 2026-11-26T13:50:01.123456+00:00 " + token + " heroku router - - at=info status=200\n"},
	} {
		got, _ := appendFrame(nil, nil, tc.l, tc.host, tc.sd, time.Now())
		if string(got) != tc.want {
			t.Errorf("appendFrame(%q, sd=%v) =\n%q, want\n%q", tc.l.Text, tc.sd, got, tc.want)
		}
	}
}

// Whatever a line holds, its frame is one well-formed RFC 6587 frame of
// a strict RFC 5424 message, and text that needs no cleaning arrives as
// it was.
func FuzzFrame(f *testing.F) {
	f.Add("app", "web.1", "hello", token)
	f.Add("", "", "", "")
	f.Add("heroku", "wéb 1", "a\nb\r\x00\xff", "d.x")
	f.Fuzz(func(t *testing.T, source, dyno, text, tok string) {
		l := logs.Line{Time: t0, Source: source, Dyno: dyno, Text: text}
		for _, sd := range []bool{true, false} {
			b, _ := appendFrame(nil, []byte("scratch"), l, tok, sd, t0)
			br := bufio.NewReader(bytes.NewReader(b))
			frame, err := readFrame(br)
			if err != nil || br.Buffered() != 0 {
				t.Fatalf("frame %q: %v, %d bytes left", b, err, br.Buffered())
			}
			m, err := parseMessage(frame, sd)
			if err != nil {
				t.Fatalf("frame %q: %v", b, err)
			}
			if utf8.ValidString(text) && !strings.ContainsAny(text, "\n\r\x00") && m.text != text {
				t.Fatalf("text %q arrived as %q", text, m.text)
			}
		}
	})
}
