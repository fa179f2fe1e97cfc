package store

import (
	"context"

	"github.com/dynogrid/grid/internal/grid"
)

// Drains are server-only (bucket "drains", key <app>.<drain id>): their
// URLs may hold credentials, and only servers ship logs.

func drainKey(app, id string) string { return app + "." + id }

// CreateDrain records d.
func (s *Store) CreateDrain(ctx context.Context, d grid.Drain) error {
	_, err := s.drains.create(ctx, drainKey(d.App, d.ID), d)
	return err
}

// Drains lists an app's drains ("" for every app's).
func (s *Store) Drains(ctx context.Context, app string) ([]grid.Drain, error) {
	filter := ">"
	if app != "" {
		filter = app + ".*"
	}
	return s.drains.list(ctx, filter)
}

// DeleteDrain removes one of an app's drains.
func (s *Store) DeleteDrain(ctx context.Context, app, id string) error {
	return s.drains.delete(ctx, drainKey(app, id))
}

// WatchDrains streams changes to every app's drains.
func (s *Store) WatchDrains(ctx context.Context) (<-chan Event[grid.Drain], error) {
	return s.drains.watch(ctx, ">")
}

// deleteAppDrains removes every drain of app.
func (s *Store) deleteAppDrains(ctx context.Context, app string) error {
	ds, err := s.Drains(ctx, app)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := s.DeleteDrain(ctx, app, d.ID); err != nil {
			return err
		}
	}
	return nil
}
