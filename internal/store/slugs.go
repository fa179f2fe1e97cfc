package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dynogrid/grid/internal/grid"
)

// PutSlug stores a slug archive and its metadata. The archive is written
// first, so metadata never points at a missing blob.
func (s *Store) PutSlug(ctx context.Context, meta grid.Slug, archive io.Reader) error {
	if meta.ID == "" || meta.App == "" {
		return fmt.Errorf("slug needs an id and an app: %w", grid.ErrInvalid)
	}
	if _, err := s.blobs.Put(ctx, jetstream.ObjectMeta{Name: meta.ID}, archive); err != nil {
		return fmt.Errorf("store: slug %s: %v: %w", meta.ID, err, grid.ErrUnavailable)
	}
	_, err := s.slugs.put(ctx, meta.ID, meta)
	return err
}

// Slug returns a slug's metadata.
func (s *Store) Slug(ctx context.Context, id string) (grid.Slug, error) {
	sl, _, err := s.slugs.get(ctx, id)
	return sl, err
}

// Slugs lists the slugs of one app.
func (s *Store) Slugs(ctx context.Context, app string) ([]grid.Slug, error) {
	all, err := s.slugs.list(ctx, ">")
	if err != nil {
		return nil, err
	}
	var out []grid.Slug
	for _, sl := range all {
		if sl.App == app {
			out = append(out, sl)
		}
	}
	return out, nil
}

// OpenSlug streams a slug's archive. The caller closes it.
func (s *Store) OpenSlug(ctx context.Context, id string) (io.ReadCloser, error) {
	r, err := s.blobs.Get(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("slug %s: %w", id, grid.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: slug %s: %v: %w", id, err, grid.ErrUnavailable)
	}
	return r, nil
}

// DeleteSlug removes a slug's metadata and archive.
func (s *Store) DeleteSlug(ctx context.Context, id string) error {
	if err := s.slugs.delete(ctx, id); err != nil {
		return err
	}
	if err := s.blobs.Delete(ctx, id); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("store: slug %s: %v: %w", id, err, grid.ErrUnavailable)
	}
	return nil
}
