package logs

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// appendLine appends l to b as the stream stores it: the JSON
// json.Marshal makes of a Line (except that <, > and & are not escaped),
// written without reflection, since the router sends one per request. It
// never holds a newline, which separates the lines of a message.
func appendLine(b []byte, l Line) ([]byte, error) {
	if y := l.Time.Year(); y < 0 || y > 9999 {
		_, err := json.Marshal(l) // its error: time.Time's JSON range
		return b, err
	}
	b = append(b, `{"t":"`...)
	b = l.Time.AppendFormat(b, time.RFC3339Nano)
	b = appendString(append(b, `","app":`...), l.App)
	b = appendString(append(b, `,"src":`...), l.Source)
	b = appendString(append(b, `,"dyno":`...), l.Dyno)
	b = appendString(append(b, `,"msg":`...), l.Text)
	return append(b, '}'), nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json escapes it:
// quotes, backslashes, control characters, U+2028 and U+2029 escaped, and
// invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}
