package drain

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store"
)

// ShipperName is the durable log consumer of the shippers: one name for
// the grid, so that a restarted shipper resumes and several servers' share
// the stream rather than each sending every line.
const ShipperName = "drains"

// ShipperConfig configures Ship.
type ShipperConfig struct {
	Store *store.Store
	Log   *logs.Log
	// Allow, RootCAs and MinBackoff go to every Drain (see Config).
	Allow      func(netip.Addr) error
	RootCAs    *x509.CertPool
	MinBackoff time.Duration
	Logger     *slog.Logger
}

// Shipper delivers every app's log to its drains: it keeps one Drain
// per drain record, watching the store, and feeds them from the log
// stream, so drains get every source's lines (dynos, router, API,
// builds) wherever they were written:
//
//	store "drains" ─watch─► one Drain per record (New / Close)
//	stream LOGS ─logs.Ship─► app's Drains' Send (never blocks)
//	Drain's L10/L14 ─Notice─► the app's log (not back to drains)
type Shipper struct{ s *shipper }

// NewShipper returns a shipper; Run runs it.
func NewShipper(cfg ShipperConfig) *Shipper {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Shipper{s: &shipper{cfg: cfg, apps: map[string][]*entry{}}}
}

// Ship runs a new Shipper until ctx ends.
func Ship(ctx context.Context, cfg ShipperConfig) error { return NewShipper(cfg).Run(ctx) }

// Stats is the delivery record of app's drain id as this shipper sees it
// (with several servers, each ships part of the stream); false when it
// runs no such drain.
func (sh *Shipper) Stats(app, id string) (Stats, bool) {
	s := sh.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.apps[app] {
		if e.key == app+"."+id {
			return e.d.Stats(), true
		}
	}
	return Stats{}, false
}

// Run ships until ctx ends, then closes the drains.
func (sh *Shipper) Run(ctx context.Context) error {
	s, cfg := sh.s, sh.s.cfg
	events, err := cfg.Store.WatchDrains(ctx)
	if err != nil {
		return err
	}
	watched := make(chan struct{})
	go func() { s.watch(events); close(watched) }()
	defer func() { <-watched; s.closeAll() }()
	for ctx.Err() == nil {
		err := cfg.Log.Ship(ctx, ShipperName, s.wanted, s.send)
		if ctx.Err() != nil {
			break
		}
		cfg.Logger.Warn("log shipping stopped; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

type shipper struct {
	cfg  ShipperConfig
	mu   sync.RWMutex
	apps map[string][]*entry // by app
	wg   sync.WaitGroup      // Closes in flight
}

type entry struct {
	key string // the store key, <app>.<id>
	d   *Drain
}

// watch follows the drain records until the channel closes.
func (s *shipper) watch(events <-chan store.Event[grid.Drain]) {
	for ev := range events {
		switch {
		case ev.Synced:
		case ev.Deleted:
			s.remove(ev.Key)
		default:
			s.add(ev.Key, ev.Value)
		}
	}
}

func (s *shipper) add(key string, rec grid.Drain) {
	s.remove(key) // a record rewritten: its new URL replaces the old
	d, err := New(Config{
		URL: rec.URL, App: rec.App, Token: rec.Token,
		Allow: s.cfg.Allow, RootCAs: s.cfg.RootCAs, MinBackoff: s.cfg.MinBackoff,
		Notice: s.cfg.Log.Write,
	})
	if err != nil {
		// Only a record the API would not have made; the URL may hold a
		// password, so it stays out of the log.
		s.cfg.Logger.Warn("drain not started", "app", rec.App, "drain", rec.Token, "err", err)
		return
	}
	s.mu.Lock()
	s.apps[rec.App] = append(s.apps[rec.App], &entry{key: key, d: d})
	s.mu.Unlock()
}

func (s *shipper) remove(key string) {
	app, _, _ := strings.Cut(key, ".")
	s.mu.Lock()
	var gone []*entry
	es := s.apps[app][:0:0]
	for _, e := range s.apps[app] {
		if e.key == key {
			gone = append(gone, e)
		} else {
			es = append(es, e)
		}
	}
	if len(es) == 0 {
		delete(s.apps, app)
	} else {
		s.apps[app] = es
	}
	s.mu.Unlock()
	for _, e := range gone {
		// Close gives queued lines a second; the watch goes on meanwhile.
		s.wg.Go(e.d.Close)
	}
}

func (s *shipper) wanted(app string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.apps[app]) > 0
}

// send hands lines to the app's drains. The drains' own notices
// (heroku[logplex]) are not sent on: an L10 has already gone in-band to
// the drain it is about, and is no business of the app's other drains.
func (s *shipper) send(app string, lines []logs.Line) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, l := range lines {
		if l.Source == "heroku" && l.Dyno == "logplex" {
			continue
		}
		for _, e := range s.apps[app] {
			e.d.Send(l)
		}
	}
}

func (s *shipper) closeAll() {
	s.mu.Lock()
	all := s.apps
	s.apps = map[string][]*entry{}
	s.mu.Unlock()
	for _, es := range all {
		for _, e := range es {
			s.wg.Go(e.d.Close)
		}
	}
	s.wg.Wait()
}
