// Package logs is the log router: one stream per app merging app output,
// platform events, router lines and API events, kept durable in a
// JetStream stream (the last 1,500 lines per app), read back as a
// snapshot or followed live.
//
// Writers never block on the log path: a line that cannot be queued is
// dropped and counted. Dyno output is product data and flows only here,
// never through slog.
package logs

// CONTRACT (implementation pending): everyone writes and reads logs through
// these.

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/dynogrid/grid/internal/store"
)

var errTODO = errors.New("logs: not implemented")

// Line is one log line of one app.
type Line struct {
	Time   time.Time `json:"t"`
	App    string    `json:"app"`
	Source string    `json:"src"`  // "app" or "heroku"
	Dyno   string    `json:"dyno"` // "web.1", "router", "api"
	Text   string    `json:"msg"`
}

// Format renders a line as Heroku does:
// "2026-01-05T14:47:41.593531+00:00 app[web.1]: text".
func (l Line) Format() string {
	return l.Time.UTC().Format("2006-01-02T15:04:05.000000+00:00") + " " + l.Source + "[" + l.Dyno + "]: " + l.Text
}

// Query selects lines to read.
type Query struct {
	Lines  int    // how many of the latest lines; 0 means 100; at most 1500
	Dyno   string // "web" matches web.1, web.2…; "web.1" only that dyno
	Source string // "app" or "heroku"; empty means both
	Tail   bool   // keep following after the history
}

// Log writes and reads app logs.
type Log struct{}

// Open creates or updates the log stream.
func Open(ctx context.Context, st *store.Store) (*Log, error) { return nil, errTODO }

// Write queues one line. It never blocks.
func (l *Log) Write(line Line) {}

// Writer returns a writer that turns each written line into a log line of
// the given source and dyno (for dyno stdout/stderr). Close flushes a
// final unterminated line.
func (l *Log) Writer(app, source, dyno string) io.WriteCloser { return nil }

// Read sends the selected history and, with Tail, live lines until ctx
// ends. The channel is closed at the end.
func (l *Log) Read(ctx context.Context, app string, q Query) (<-chan Line, error) {
	return nil, errTODO
}

// Purge removes an app's log lines.
func (l *Log) Purge(ctx context.Context, app string) error { return errTODO }

// Close flushes queued lines (waiting up to a second) and stops.
func (l *Log) Close() {}
