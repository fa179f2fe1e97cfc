package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dynogrid/grid/internal/grid"
)

// Build API state lives only with the servers: build records (bucket
// "builds", key <app>.<id>), each build's output once it is over (object
// store "buildoutput", by build id) and uploaded source tarballs (object
// store "sources", by upload id, kept SourceTTL).

// SourceTTL is how long an uploaded source tarball is kept: an hour, as
// Heroku's upload URLs last.
const SourceTTL = time.Hour

func buildKey(app, id string) string { return app + "." + id }

// PutBuild creates or replaces a build record.
func (s *Store) PutBuild(ctx context.Context, b grid.Build) error {
	if b.ID == "" || grid.ValidateAppName(b.App) != nil {
		return fmt.Errorf("build needs an id and an app: %w", grid.ErrInvalid)
	}
	_, err := s.builds.put(ctx, buildKey(b.App, b.ID), b)
	return err
}

// Build returns one build of app.
func (s *Store) Build(ctx context.Context, app, id string) (grid.Build, error) {
	b, _, err := s.builds.get(ctx, buildKey(app, id))
	return b, err
}

// Builds lists app's builds, oldest first.
func (s *Store) Builds(ctx context.Context, app string) ([]grid.Build, error) {
	bs, err := s.builds.list(ctx, app+".*")
	if err != nil {
		return nil, err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].CreatedAt.Before(bs[j].CreatedAt) })
	return bs, nil
}

// PutBuildOutput stores a finished build's output.
func (s *Store) PutBuildOutput(ctx context.Context, id string, out io.Reader) error {
	if _, err := s.outputs.Put(ctx, jetstream.ObjectMeta{Name: id}, out); err != nil {
		return fmt.Errorf("store: build output %s: %v: %w", id, err, grid.ErrUnavailable)
	}
	return nil
}

// OpenBuildOutput streams a finished build's output; ErrNotFound while
// the build runs (or if it was lost).
func (s *Store) OpenBuildOutput(ctx context.Context, id string) (io.ReadCloser, error) {
	return openObject(ctx, s.outputs, "build output", id)
}

// PutSource stores an uploaded source tarball under id for SourceTTL.
func (s *Store) PutSource(ctx context.Context, id string, r io.Reader) (size uint64, err error) {
	info, err := s.sources.Put(ctx, jetstream.ObjectMeta{Name: id}, r)
	if err != nil {
		return 0, fmt.Errorf("store: source %s: %v: %w", id, err, grid.ErrUnavailable)
	}
	return info.Size, nil
}

// OpenSource streams an uploaded source tarball.
func (s *Store) OpenSource(ctx context.Context, id string) (io.ReadCloser, error) {
	return openObject(ctx, s.sources, "source", id)
}

func openObject(ctx context.Context, os jetstream.ObjectStore, what, id string) (io.ReadCloser, error) {
	r, err := os.Get(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%s %s: %w", what, id, grid.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: %v: %w", what, id, err, grid.ErrUnavailable)
	}
	return r, nil
}

// deleteAppBuilds removes app's build records and outputs.
func (s *Store) deleteAppBuilds(ctx context.Context, app string) error {
	bs, err := s.builds.list(ctx, app+".*")
	if err != nil {
		return err
	}
	for _, b := range bs {
		if err := s.outputs.Delete(ctx, b.ID); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return fmt.Errorf("store: build output %s: %v: %w", b.ID, err, grid.ErrUnavailable)
		}
		if err := s.builds.delete(ctx, buildKey(app, b.ID)); err != nil {
			return err
		}
	}
	return nil
}
