package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
)

// Log streams are Server-Sent Events, as the Heroku CLI's EventSource
// reads them: one event per line,
//
//	id: <n>
//	data: 2026-01-05T14:47:41.593531+00:00 app[web.1]: text
//
// Event ids are the lines' sequence numbers in the log stream, so a client
// that reconnects with Last-Event-ID: n resumes exactly after line n: no
// line is lost or repeated across a reconnect.
const keepaliveInterval = 25 * time.Second

// streamLogs is GET /log-stream/{token}, opened without credentials.
func (s *server) streamLogs(w http.ResponseWriter, r *http.Request) {
	lastID, resuming := lastEventID(r)
	c, err := s.openToken(r.PathValue("token"), resuming)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.store.App(r.Context(), c.App); err != nil {
		s.writeError(w, r, errBadSession)
		return
	}
	if s.logs == nil {
		s.writeError(w, r, fmt.Errorf("logs are not available from this API: %w", grid.ErrUnavailable))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	q := c.query()
	if resuming {
		q.After = lastID
	}
	lines, err := s.logs.Read(ctx, c.App, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	keepalive := time.NewTicker(keepaliveInterval)
	defer keepalive.Stop()
	err = sendEvents(ctx, w, rc.Flush, lines, lastID, keepalive.C)
	if err != nil && !errors.Is(err, context.Canceled) {
		s.logger.Debug("log stream ended", "app", c.App, "err", err)
	}
}

// lastEventID is the client's Last-Event-ID, if it sent one.
func lastEventID(r *http.Request) (uint64, bool) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// sendEvents writes lines as events until the channel closes (history
// read, or ctx over), skipping lines at or before sequence after. A tick
// on keepalive writes a comment so idle connections stay open and a gone
// client is noticed.
func sendEvents(ctx context.Context, w io.Writer, flush func() error, lines <-chan logs.Line, after uint64, keepalive <-chan time.Time) error {
	if _, err := io.WriteString(w, "retry: 1000\n\n"); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	for {
		var chunk string
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-keepalive:
			chunk = ": keepalive\n\n"
		case l, ok := <-lines:
			if !ok {
				return nil
			}
			if l.Seq <= after {
				continue
			}
			chunk = event(l.Seq, l.Format())
		}
		if _, err := io.WriteString(w, chunk); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

var newlines = strings.NewReplacer("\r\n", "\n", "\r", "\n")

// event renders one SSE event; a text with newlines becomes several data
// lines, which the client joins back.
func event(id uint64, text string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %d\n", id)
	for _, line := range strings.Split(newlines.Replace(text), "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	return b.String()
}
