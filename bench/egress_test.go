package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
)

// sink is an HTTP server on the internet, as dynos see it (a network
// namespace beyond the host's masquerade), that reads and counts what is
// posted to it: the egress hog's destination (reliability.md I-10).
type sink struct {
	addr  string // host:port, the hog's $SINK
	bytes atomic.Int64
}

func serveSink(b *testing.B) *sink {
	s := &sink{}
	url := sandboxtest.ServeOutside(b, "noisysink", netip.MustParsePrefix("10.235.249.0/30"),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(countingWriter{&s.bytes}, r.Body)
		}))
	s.addr = strings.TrimPrefix(url, "http://") + ":80"
	return s
}

type countingWriter struct{ n *atomic.Int64 }

func (w countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// egressRate watches the egress hog: the fastest second of what reached
// the sink (A runs only half the time when it is frozen in turn) against
// its size's cap.
func egressRate(n *neighbours, a grid.Dyno) func() (string, float64) {
	var peak, last int64
	last = n.sink.bytes.Load()
	stop := sampler(time.Second, func() {
		now := n.sink.bytes.Load()
		peak, last = max(peak, now-last), now
	})
	total0, t0 := last, time.Now()
	return func() (string, float64) {
		stop()
		limit := float64(ecoSize().EgressMbit) * 1e6 / 8
		avg := float64(n.sink.bytes.Load()-total0) / time.Since(t0).Seconds()
		return fmt.Sprintf("A sent at most %.2f MB in a second, %.2f MB/s on average; cap %.2f MB/s (%d Mbit/s): %.1f %% of cap (I-10: ≤ 105 %%)",
			float64(peak)/1e6, avg/1e6, limit/1e6, ecoSize().EgressMbit, 100*float64(peak)/limit), float64(peak) / limit
	}
}
