package provider

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// Namespaces are entered on locked threads; keep the main goroutine on
// the main thread so no such thread is ever the main one.
func init() { runtime.LockOSThread() }

// hostProvider is what every provider offers the manager.
type hostProvider interface {
	Provision(ctx context.Context) (grid.HostControl, error)
	Release(ctx context.Context, h grid.HostControl) error
}

// testConformance is the suite every provider passes: hosts come with
// distinct ids and handles and the provider's name, exist until released,
// and releasing twice is fine. exists reports whether a host's machine
// exists.
func testConformance(t *testing.T, p hostProvider, name string, exists func(grid.HostControl) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var hosts []grid.HostControl
	for range 2 {
		h, err := p.Provision(ctx)
		if err != nil {
			t.Fatalf("Provision: %v", err)
		}
		hosts = append(hosts, h)
	}
	a, b := hosts[0], hosts[1]
	if a.ID == b.ID || a.Handle == b.Handle {
		t.Errorf("two hosts share an id or handle: %+v %+v", a, b)
	}
	for _, h := range hosts {
		if h.Provider != name || h.ID == "" || h.Handle == "" || time.Since(h.Since) > time.Minute {
			t.Errorf("host %+v: want provider %q, an id, a handle and Since now", h, name)
		}
		if !exists(h) {
			t.Errorf("host %s does not exist after Provision", h.ID)
		}
	}
	for _, h := range hosts {
		if err := p.Release(ctx, h); err != nil {
			t.Fatalf("Release %s: %v", h.ID, err)
		}
		if exists(h) {
			t.Errorf("host %s exists after Release", h.ID)
		}
		if err := p.Release(ctx, h); err != nil {
			t.Errorf("second Release %s: %v", h.ID, err)
		}
	}
}

// waitFor polls cond until it returns nil or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", timeout, what, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
