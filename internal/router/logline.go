package router

import (
	"strconv"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/logs"
)

// logRecord is what the router says about one request, in Heroku's
// heroku[router] line (heroku.md §2.7). It never holds request bodies or
// credentials: only the request line's method and path, the Host, and
// the headers the router itself sets.
type logRecord struct {
	fail      *hError // nil for a normal response
	method    string
	path      string // with the query string
	host      string
	requestID string
	fwd       string // X-Forwarded-For as sent to the dyno
	dyno      string // "" when no dyno was reached
	connect   time.Duration
	service   time.Duration
	status    int
	bytes     int64 // body bytes from the dyno to the client
	protocol  string
}

// String renders the line, for example
//
//	at=info method=GET path="/" host=hello.localhost request_id=… fwd="127.0.0.1" dyno=web.2 connect=0ms service=3ms status=200 bytes=12 protocol=http
//
// connect and service are empty when no dyno was reached.
func (l *logRecord) String() string {
	bp := lineBufs.Get().(*[]byte)
	b := l.append((*bp)[:0])
	s := string(b)
	if cap(b) <= 4<<10 { // a huge path is not worth keeping
		*bp = b
		lineBufs.Put(bp)
	}
	return s
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// append renders the line onto b.
func (l *logRecord) append(b []byte) []byte {
	at := "info"
	if l.fail != nil {
		if s := l.fail.sock(); s != "" {
			b = append(append(append(b, "sock="...), s...), ' ')
		}
		at = l.fail.at
	}
	b = append(append(b, "at="...), at...)
	if l.fail != nil {
		b = append(append(b, " code="...), l.fail.code...)
		b = strconv.AppendQuote(append(b, " desc="...), l.fail.desc)
	}
	b = append(append(b, " method="...), l.method...)
	b = strconv.AppendQuote(append(b, " path="...), l.path)
	b = append(append(b, " host="...), l.host...)
	b = append(append(b, " request_id="...), l.requestID...)
	b = strconv.AppendQuote(append(b, " fwd="...), l.fwd)
	b = append(append(b, " dyno="...), l.dyno...)
	b = append(b, " connect="...)
	if l.dyno != "" {
		b = append(strconv.AppendInt(b, l.connect.Milliseconds(), 10), "ms"...)
	}
	b = append(b, " service="...)
	if l.dyno != "" {
		b = append(strconv.AppendInt(b, l.service.Milliseconds(), 10), "ms"...)
	}
	b = strconv.AppendInt(append(b, " status="...), int64(l.status), 10)
	b = strconv.AppendInt(append(b, " bytes="...), l.bytes, 10)
	return append(append(b, " protocol="...), l.protocol...)
}

// logLine writes the record for app to the log stream. Never blocks.
func (r *Router) logLine(app string, rec *logRecord) {
	if r.cfg.Logs == nil {
		return
	}
	r.cfg.Logs.Write(logs.Line{Time: r.cfg.Now().UTC(), App: app, Source: "heroku", Dyno: "router", Text: rec.String()})
}
