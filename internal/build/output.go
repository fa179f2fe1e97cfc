package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/dynogrid/grid/internal/grid"
)

// Output prefixes, as Heroku's build output has them.
const (
	stepPrefix   = "-----> "
	detailPrefix = "       "
	errorPrefix  = " !     "
)

// output is the build output stream to the pusher. Writes are serialised
// (buildpack stdout and stderr share it) and capped; a failing writer (the
// pusher went away) is ignored, the build goes on.
type output struct {
	mu      sync.Mutex
	w       io.Writer
	left    int64
	dropped bool
}

func newOutput(w io.Writer, max int64) *output {
	if w == nil {
		w = io.Discard
	}
	return &output{w: w, left: max}
}

// Write passes buildpack output through until the cap, then drops it.
func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropped || int64(len(b)) > o.left {
		if !o.dropped {
			o.dropped = true
			fmt.Fprintf(o.w, "\n%sBuild output is over its size limit; the rest is not shown.\n", errorPrefix)
		}
		return len(b), nil
	}
	o.left -= int64(len(b))
	_, _ = o.w.Write(b)
	return len(b), nil
}

// line writes one line of ours; they are not counted against the cap.
func (o *output) line(prefix, format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = io.WriteString(o.w, prefix+fmt.Sprintf(format, args...)+"\n")
}

func (o *output) step(format string, args ...any)   { o.line(stepPrefix, format, args...) }
func (o *output) detail(format string, args ...any) { o.line(detailPrefix, format, args...) }
func (o *output) fail(format string, args ...any)   { o.line(errorPrefix, format, args...) }

// rejection is a deploy failure that has already been explained to the
// pusher; Deploy prints anything else itself.
type rejection struct{ err error }

func (r *rejection) Error() string { return r.err.Error() }
func (r *rejection) Unwrap() error { return r.err }

// reject prints lines as " !     " lines and returns err marked as told.
func reject(err error, out *output, lines ...string) error {
	for _, l := range lines {
		out.fail("%s", l)
	}
	return &rejection{err}
}

// explain renders err for the pusher: its text without a trailing
// ": invalid" or ": too large", which say nothing to a person. For
// display only; decisions use errors.Is.
func explain(err error) string {
	msg := err.Error()
	for _, c := range []error{grid.ErrInvalid, grid.ErrTooLarge} {
		if errors.Is(err, c) {
			msg = strings.TrimSuffix(msg, ": "+c.Error())
		}
	}
	return msg
}

func told(err error) bool {
	var r *rejection
	return errors.As(err, &r)
}

// tail keeps the last n lines written to it (each cut at 1 KiB), for
// showing what a failed boot printed.
type tail struct {
	mu      sync.Mutex
	n       int
	lines   []string
	partial []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, b...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.add(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > 1024 {
		t.add(string(t.partial))
		t.partial = t.partial[:0]
	}
	return len(b), nil
}

func (t *tail) add(l string) {
	if len(l) > 1024 {
		l = l[:1024]
	}
	t.lines = append(t.lines, strings.TrimRight(l, "\r"))
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

// Lines returns the kept lines, the unterminated last one included.
func (t *tail) Lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]string(nil), t.lines...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	if len(out) > t.n {
		out = out[len(out)-t.n:]
	}
	return out
}
