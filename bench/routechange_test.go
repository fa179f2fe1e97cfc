package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/router"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// BenchmarkRouteChange measures how long a route change takes to reach
// every router: three routers, each on its own NATS connection with a
// router's credentials, serve an app whose web.1 the benchmark moves
// between two dynos (a replacement under the same name) by rewriting its
// record. From the write, a client per router sends requests back to back
// until that router answers from the new dyno; the change has reached
// the router when it routes by it. Target: < 10 ms to every router.
func BenchmarkRouteChange(b *testing.B) {
	const routers, changes = 3, 200
	srv := storetest.NewServer(b)
	admin := srv.As(b, store.Role{Kind: store.RoleServer, ID: "s"})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	var addrs []string
	for i := range routers {
		rt := router.New(router.Config{Store: srv.As(b, store.Role{Kind: store.RoleRouter, ID: fmt.Sprint("r", i)}), Domain: "localhost"})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(2)
		go func() { defer wg.Done(); rt.Run(ctx) }()
		go func() { defer wg.Done(); rt.Serve(ctx, ln) }()
		<-rt.Ready()
		addrs = append(addrs, ln.Addr().String())
	}
	dynos := [2]string{}
	for i, name := range []string{"old", "new"} {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }))
		b.Cleanup(s.Close)
		dynos[i] = strings.TrimPrefix(s.URL, "http://")
	}
	if err := admin.CreateApp(ctx, grid.App{ID: store.NewID(), Name: "moving", Release: grid.Release{Version: 2, SlugID: "s"}}); err != nil {
		b.Fatal(err)
	}
	if _, err := admin.UpdateFormation(ctx, "moving", func(f *grid.Formation) error {
		f.Types["web"] = grid.FormationType{Quantity: 1, Command: "serve"}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	move := func(to int) {
		d := grid.Dyno{ID: fmt.Sprint("d", to), Host: "h1", App: "moving", Name: "web.1", Type: "web", State: grid.DynoUp, Addr: dynos[to]}
		if err := admin.PutDyno(ctx, d); err != nil {
			b.Fatal(err)
		}
		if err := admin.DeleteDyno(ctx, grid.Dyno{ID: fmt.Sprint("d", 1-to), Host: "h1", App: "moving"}); err != nil {
			b.Fatal(err)
		}
	}
	names := [2]string{"old", "new"}
	// until sends requests to addr until it answers want; it returns the
	// time that took.
	until := func(client *http.Client, addr, want string, start time.Time) time.Duration {
		deadline := start.Add(10 * time.Second)
		for time.Now().Before(deadline) {
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Host = "moving.localhost"
			if res, err := client.Do(req); err == nil {
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if string(body) == want {
					return time.Since(start)
				}
			}
		}
		b.Fatalf("router %s never routed to the %s dyno", addr, want)
		return 0
	}
	clients := make([]*http.Client, routers)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	}
	move(0)
	for i, a := range addrs {
		until(clients[i], a, "old", time.Now())
	}
	var each, all []time.Duration // per router and change; the slowest router per change
	for c := range changes {
		to := 1 - c%2
		start := time.Now()
		move(to)
		got := make([]time.Duration, routers)
		var cw sync.WaitGroup
		for i, a := range addrs {
			cw.Go(func() { got[i] = until(clients[i], a, names[to], start) })
		}
		cw.Wait()
		each = append(each, got...)
		all = append(all, slices.Max(got))
	}
	fmt.Printf("route change (a dyno record rewritten) until it routes, %d changes, %d routers on their own NATS connections:\n", changes, routers)
	fmt.Printf("  each router: p50 %.2f ms p99 %.2f ms; every router: p50 %.2f ms p99 %.2f ms max %.2f ms (target < 10 ms)\n",
		ms(percentile(each, 50)), ms(percentile(each, 99)), ms(percentile(all, 50)), ms(percentile(all, 99)), ms(slices.Max(all)))
	b.ReportMetric(ms(percentile(all, 99)), "ms-p99-all-routers")
}
