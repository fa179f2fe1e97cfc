package store

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

// Assignments are keyed "<host>.<dyno id>" so a host can watch its own.

// PutAssignment tells a host to run a dyno.
func (s *Store) PutAssignment(ctx context.Context, a grid.Assignment) error {
	_, err := s.assignments.put(ctx, a.Host+"."+a.DynoID, a)
	return err
}

// DeleteAssignment tells a host to stop a dyno.
func (s *Store) DeleteAssignment(ctx context.Context, host, dynoID string) error {
	return s.assignments.delete(ctx, host+"."+dynoID)
}

// Assignments lists assignments; host "" means every host.
func (s *Store) Assignments(ctx context.Context, host string) ([]grid.Assignment, error) {
	return s.assignments.list(ctx, hostFilter(host))
}

// WatchAssignments streams changes to assignments; host "" means every host.
// A deleted event's Key is "<host>.<dyno id>".
func (s *Store) WatchAssignments(ctx context.Context, host string) (<-chan Event[grid.Assignment], error) {
	return s.assignments.watch(ctx, hostFilter(host))
}

func hostFilter(host string) string {
	if host == "" {
		return ">"
	}
	return host + ".*"
}

// Dynos are keyed "<host>.<app>.<dyno id>", so a host's credentials can
// allow writing only its own.

func dynoKey(d grid.Dyno) string { return d.Host + "." + d.App + "." + d.ID }

// PutDyno records a dyno's actual state. d.Host, d.App and d.ID are required.
func (s *Store) PutDyno(ctx context.Context, d grid.Dyno) error {
	if d.Host == "" || d.App == "" || d.ID == "" {
		return fmt.Errorf("dyno record needs host, app and id: %w", grid.ErrInvalid)
	}
	_, err := s.dynos.put(ctx, dynoKey(d), d)
	return err
}

// DeleteDyno forgets a dyno.
func (s *Store) DeleteDyno(ctx context.Context, d grid.Dyno) error {
	return s.dynos.delete(ctx, dynoKey(d))
}

// Dynos lists an app's dynos ("" for all apps), sorted by app, type and
// index.
func (s *Store) Dynos(ctx context.Context, app string) ([]grid.Dyno, error) {
	filter := ">"
	if app != "" {
		filter = "*." + app + ".*"
	}
	return s.sortedDynos(ctx, filter)
}

// HostDynos lists the dynos one host has recorded.
func (s *Store) HostDynos(ctx context.Context, host string) ([]grid.Dyno, error) {
	return s.sortedDynos(ctx, host+".>")
}

func (s *Store) sortedDynos(ctx context.Context, filter string) ([]grid.Dyno, error) {
	ds, err := s.dynos.list(ctx, filter)
	sort.Slice(ds, func(i, j int) bool {
		if ds[i].App != ds[j].App {
			return ds[i].App < ds[j].App
		}
		return dynoLess(ds[i].Name, ds[j].Name)
	})
	return ds, err
}

// dynoLess orders "web.2" before "web.10".
func dynoLess(a, b string) bool {
	if len(a) != len(b) {
		ta, tb := typeOf(a), typeOf(b)
		if ta == tb {
			return len(a) < len(b)
		}
	}
	return a < b
}

func typeOf(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			return name[:i]
		}
	}
	return name
}

// WatchDynos streams changes to every dyno's state. A deleted event's Key
// is "<host>.<app>.<dyno id>" (see ParseDynoKey).
func (s *Store) WatchDynos(ctx context.Context) (<-chan Event[grid.Dyno], error) {
	return s.dynos.watch(ctx, ">")
}

// ParseDynoKey splits a dyno key into host, app and dyno id.
func ParseDynoKey(key string) (host, app, id string, ok bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// PutHost registers or refreshes a host.
func (s *Store) PutHost(ctx context.Context, h grid.Host) error {
	_, err := s.hosts.put(ctx, h.ID, h)
	return err
}

// Hosts lists registered hosts.
func (s *Store) Hosts(ctx context.Context) ([]grid.Host, error) {
	return s.hosts.list(ctx, ">")
}

// DeleteHost forgets a host's record (after it was released).
func (s *Store) DeleteHost(ctx context.Context, id string) error {
	return s.hosts.delete(ctx, id)
}

// HostControls lists the control plane's records about hosts.
func (s *Store) HostControls(ctx context.Context) ([]grid.HostControl, error) {
	return s.hostctl.list(ctx, ">")
}

// UpdateHostControl changes a host's control record with compare-and-set,
// creating it if needed.
func (s *Store) UpdateHostControl(ctx context.Context, id string, fn func(*grid.HostControl) error) (grid.HostControl, error) {
	return s.hostctl.update(ctx, id, true, func(c *grid.HostControl) error {
		c.ID = id
		return fn(c)
	})
}

// DeleteHostControl forgets the control record of a released host.
func (s *Store) DeleteHostControl(ctx context.Context, id string) error {
	return s.hostctl.delete(ctx, id)
}

// WatchHostControls streams changes to host control records.
func (s *Store) WatchHostControls(ctx context.Context) (<-chan Event[grid.HostControl], error) {
	return s.hostctl.watch(ctx, ">")
}

// PutRouterState records what a router has applied.
func (s *Store) PutRouterState(ctx context.Context, r grid.RouterState) error {
	_, err := s.routers.put(ctx, r.ID, r)
	return err
}

// WatchRouters streams router states.
func (s *Store) WatchRouters(ctx context.Context) (<-chan Event[grid.RouterState], error) {
	return s.routers.watch(ctx, ">")
}

// WatchHosts streams host registrations and heartbeats.
func (s *Store) WatchHosts(ctx context.Context) (<-chan Event[grid.Host], error) {
	return s.hosts.watch(ctx, ">")
}
