package e2e

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/gridtest"
	"github.com/dynogrid/grid/internal/schema"
)

// loadWorkers is how many clients hammer keeps busy: enough that every
// dyno has requests in flight when it is replaced or lost.
const loadWorkers = 4

// hammer sends GETs for app through the router from loadWorkers clients
// until stop is called, and reports how many were made, how many failed
// (an error or a status other than 200) and the slowest.
func hammer(g *gridtest.Grid, app string) (stop func() (n, failed int64, slowest time.Duration), failures func() []string) {
	var n, failed, slow atomic.Int64
	var mu sync.Mutex
	var errs []string
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				start := time.Now()
				code, body, _, err := g.Get(app, "/")
				if d := int64(time.Since(start)); d > slow.Load() {
					slow.Store(d) // racy max: good enough for a report
				}
				n.Add(1)
				if err != nil || code != 200 {
					failed.Add(1)
					mu.Lock()
					if len(errs) < 10 {
						errs = append(errs, fmt.Sprintf("%s %d %v %.100s", time.Now().Format("15:04:05.000"), code, err, body))
					}
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return func() (int64, int64, time.Duration) {
			close(done)
			wg.Wait()
			return n.Load(), failed.Load(), time.Duration(slow.Load())
		},
		func() []string { mu.Lock(); defer mu.Unlock(); return errs }
}

// waitSettled waits until app has exactly n web dynos, all up and all
// running its newest release: a deploy's old dynos are gone.
func waitSettled(t *testing.T, g *gridtest.Grid, app string, n int) {
	t.Helper()
	gridtest.WaitFor(t, time.Minute, fmt.Sprintf("%s settled at %d web dynos of its newest release", app, n), func() error {
		var rels []schema.Release
		if err := json.Unmarshal([]byte(g.MustCLI("releases", "--json", "-a", app)), &rels); err != nil {
			return err
		}
		newest := 0
		for _, r := range rels {
			newest = max(newest, r.Version)
		}
		var ds []schema.Dyno
		if err := json.Unmarshal([]byte(g.MustCLI("ps", "--json", "-a", app)), &ds); err != nil {
			return err
		}
		web := 0
		for _, d := range ds {
			if d.Type != "web" {
				continue
			}
			web++
			if d.State != "up" || d.Release.Version != newest {
				return fmt.Errorf("%s is %s at v%d (newest v%d)", d.Name, d.State, d.Release.Version, newest)
			}
		}
		if web != n {
			return fmt.Errorf("%d web dynos", web)
		}
		return nil
	})
}
