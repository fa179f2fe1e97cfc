package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
)

// BenchmarkProxy compares requests through the router (with its log line
// per request) to the same backend directly, over keep-alive connections
// from concurrent clients. The ratio of the two is the router's cost.
func BenchmarkProxy(b *testing.B) {
	h := startRouter(b, nil)
	be := newBackend(b, "web.1", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello world!") })
	h.app("bench", 1)
	h.dyno("bench", 1, grid.DynoUp, be.addr())
	h.await("bench", endpointsAre(1))
	for _, target := range []struct{ name, addr string }{{"direct", be.addr()}, {"router", h.addr}} {
		b.Run(target.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "tcp", target.addr)
				},
				MaxIdleConnsPerHost: 64,
			}}
			defer client.CloseIdleConnections()
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Get("http://bench.localhost/")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						b.Errorf("status %d", res.StatusCode)
						return
					}
				}
			})
		})
	}
	b.Logf("log lines dropped under load: %d", h.logs.Dropped())
}
