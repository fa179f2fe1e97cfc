package store

import (
	"context"
	"sort"

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

// Dynos are keyed "<app>.<dyno id>".

// PutDyno records a dyno's actual state.
func (s *Store) PutDyno(ctx context.Context, d grid.Dyno) error {
	_, err := s.dynos.put(ctx, d.App+"."+d.ID, d)
	return err
}

// DeleteDyno forgets a dyno.
func (s *Store) DeleteDyno(ctx context.Context, app, id string) error {
	return s.dynos.delete(ctx, app+"."+id)
}

// Dynos lists an app's dynos ("" for all apps), sorted by type and index.
func (s *Store) Dynos(ctx context.Context, app string) ([]grid.Dyno, error) {
	filter := ">"
	if app != "" {
		filter = app + ".*"
	}
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

// WatchDynos streams changes to every dyno's state.
func (s *Store) WatchDynos(ctx context.Context) (<-chan Event[grid.Dyno], error) {
	return s.dynos.watch(ctx, ">")
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

// WatchHosts streams host registrations and heartbeats.
func (s *Store) WatchHosts(ctx context.Context) (<-chan Event[grid.Host], error) {
	return s.hosts.watch(ctx, ">")
}
