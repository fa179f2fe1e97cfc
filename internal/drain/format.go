package drain

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dynogrid/grid/internal/logs"
)

// RFC 5424 priorities: facility*8 + severity. Heroku uses local7.info for
// app output and local0.info for platform lines.
const (
	priApp    = "190" // local7 (23) * 8 + info (6)
	priHeroku = "134" // local0 (16) * 8 + info (6)
)

// RFC 5424 header field limits (section 6).
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
)

// timeLayout is RFC 3339 with microseconds in UTC, as Logplex writes it.
const timeLayout = "2006-01-02T15:04:05.000000+00:00"

// httpHostname is the HOSTNAME Logplex puts in HTTP drain messages: the
// literal word "host" (the token travels in Logplex-Drain-Token).
const httpHostname = "host"

// appendFrame appends one RFC 6587 octet-counted frame, "LEN SP MSG", of
// the RFC 5424 message for l:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG\n   (syslog, sd set)
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - MSG\n     (HTTP drains)
//
// HTTP drains omit STRUCTURED-DATA as Logplex does. MSG ends in one
// newline, counted in LEN, as in Logplex's frames ("83 <40>1 … up\n"): it
// keeps receivers that split on newlines working, while the line's own
// newlines become spaces so one line stays one message whatever the
// receiver's framing. scratch is reused between calls; the new scratch
// is returned with the frame.
func appendFrame(dst, scratch []byte, l logs.Line, hostname string, sd bool, now time.Time) (frame, newScratch []byte) {
	m := appendMessage(scratch[:0], l, hostname, sd, now)
	dst = strconv.AppendInt(dst, int64(len(m)), 10)
	dst = append(dst, ' ')
	return append(dst, m...), m
}

func appendMessage(b []byte, l logs.Line, hostname string, sd bool, now time.Time) []byte {
	b = append(b, '<')
	if l.Source == "app" {
		b = append(b, priApp...)
	} else {
		b = append(b, priHeroku...)
	}
	b = append(b, ">1 "...)
	t := l.Time
	if t.IsZero() {
		t = now
	}
	b = t.UTC().AppendFormat(b, timeLayout)
	b = appendField(append(b, ' '), hostname, maxHostname)
	b = appendField(append(b, ' '), l.Source, maxAppName)
	b = appendField(append(b, ' '), l.Dyno, maxProcID)
	b = append(b, " -"...) // MSGID
	if sd {
		b = append(b, " -"...) // STRUCTURED-DATA
	}
	b = appendText(append(b, ' '), l.Text)
	return append(b, '\n')
}

// appendField appends a header field as RFC 5424 wants it: printable
// US-ASCII without spaces (others become '_'), at most max bytes, "-"
// when empty.
func appendField(b []byte, s string, max int) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s) && i < max; i++ {
		c := s[i]
		if c < '!' || c > '~' {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// appendText appends a message as valid UTF-8 on one line: invalid bytes
// become U+FFFD, and CR, LF and NUL, which receivers take for line ends
// or string ends, become spaces.
func appendText(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = utf8.AppendRune(b, utf8.RuneError)
		case r == '\n' || r == '\r' || r == 0:
			b = append(b, ' ')
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}
