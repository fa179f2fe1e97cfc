package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// hexagon marks app names, as in the Heroku CLI ("⬢ myapp").
const hexagon = "⬢ "

// header prints a section header and the blank line after it.
func header(w io.Writer, title string) {
	fmt.Fprintf(w, "=== %s\n\n", title)
}

// printFields prints key: value pairs with the values aligned.
func printFields(w io.Writer, fields [][2]string) {
	width := 0
	for _, f := range fields {
		width = max(width, utf8.RuneCountInString(f[0]))
	}
	for _, f := range fields {
		line := fmt.Sprintf("%s:%s %s", f[0], strings.Repeat(" ", width-utf8.RuneCountInString(f[0])), f[1])
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

// printTable prints rows with columns separated by two spaces and padded
// to the widest cell; the last column is not padded.
func printTable(w io.Writer, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, cell := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, cell := range r {
			if i == len(r)-1 {
				b.WriteString(cell)
				break
			}
			b.WriteString(cell + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// printJSON prints v as indented JSON (for --json).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// clock formats times as the Heroku CLI does:
// "2026/01/01 00:00:00 +0000 (~ 5m ago)".
type clock struct {
	now func() time.Time
	loc *time.Location
}

func (c *call) clock() clock {
	loc := time.Local
	if tz := c.env.Getenv("TZ"); tz != "" {
		if l, err := time.LoadLocation(strings.TrimPrefix(tz, ":")); err == nil {
			loc = l
		}
	}
	return clock{now: time.Now, loc: loc}
}

func (k clock) format(t time.Time) string {
	s := t.In(k.loc).Format("2006/01/02 15:04:05 -0700")
	if ago := timeAgo(k.now().Sub(t)); ago != "" {
		s += " (~ " + ago + " ago)"
	}
	return s
}

// timeAgo is Heroku's rough age: seconds up to a minute, minutes up to
// an hour, hours up to 25 hours, then nothing.
func timeAgo(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d <= time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d <= time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d <= 25*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return ""
}

// humanBytes renders a size like "12.3 MB".
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, exp := float64(n)/unit, 0
	for v >= unit && exp < 4 {
		v /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", v, "kMGTP"[exp])
}
