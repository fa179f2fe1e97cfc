package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dynogrid/grid/internal/grid"
)

// Add-ons and attachments are server-only (bucket "addons", key the
// add-on's id; bucket "attachments", key <app>.<name>): they hold
// credentials that only reach hosts through releases.

// PutAddon creates or replaces an add-on record.
func (s *Store) PutAddon(ctx context.Context, a grid.Addon) error {
	_, err := s.addons.put(ctx, a.ID, a)
	return err
}

// Addon returns an add-on by id.
func (s *Store) Addon(ctx context.Context, id string) (grid.Addon, error) {
	a, _, err := s.addons.get(ctx, id)
	return a, err
}

// Addons lists every add-on.
func (s *Store) Addons(ctx context.Context) ([]grid.Addon, error) {
	return s.addons.list(ctx, ">")
}

// DeleteAddon removes an add-on record.
func (s *Store) DeleteAddon(ctx context.Context, id string) error {
	return s.addons.delete(ctx, id)
}

func attachmentKey(app, name string) string { return app + "." + name }

// CreateAttachment records at; ErrConflict if the app has an attachment
// of that name.
func (s *Store) CreateAttachment(ctx context.Context, at grid.Attachment) error {
	_, err := s.attachments.create(ctx, attachmentKey(at.App, at.Name), at)
	if errors.Is(err, grid.ErrConflict) {
		return fmt.Errorf("app %s already has an add-on attached as %s: %w", at.App, at.Name, grid.ErrConflict)
	}
	return err
}

// Attachments lists an app's attachments ("" for every app's).
func (s *Store) Attachments(ctx context.Context, app string) ([]grid.Attachment, error) {
	filter := ">"
	if app != "" {
		filter = app + ".*"
	}
	return s.attachments.list(ctx, filter)
}

// reach are the endpoints of the add-ons attached to app, in order.
func (s *Store) reach(ctx context.Context, app string) ([]netip.AddrPort, error) {
	ats, err := s.Attachments(ctx, app)
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	for _, at := range ats {
		a, err := s.Addon(ctx, at.AddonID)
		if errors.Is(err, grid.ErrNotFound) {
			continue // destroyed meanwhile
		}
		if err != nil {
			return nil, err
		}
		if e, ok := a.Endpoint(); ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return slices.Compact(out), nil
}

// RepairReach makes a release for each app whose current release's Reach
// is not what its attachments give (a release made before releases
// carried it, or an attach or detach cut short between its two writes),
// so that its dynos restart with the way to their add-ons they should
// have. It returns the apps released. Servers run it at start.
func (s *Store) RepairReach(ctx context.Context) ([]string, error) {
	apps, err := s.Apps(ctx)
	if err != nil {
		return nil, err
	}
	var released []string
	for _, a := range apps {
		want, err := s.reach(ctx, a.Name)
		if err != nil {
			return released, err
		}
		if a.Release.Version == 0 || slices.Equal(want, a.Release.Reach) {
			continue
		}
		_, err = s.CommitRelease(ctx, a.Name, func(cur grid.App) (grid.Release, error) {
			return grid.Release{
				Description: "Update add-on access", SlugID: cur.Release.SlugID, Commit: cur.Release.Commit,
				Config: maps.Clone(cur.Release.Config), User: "grid",
			}, nil
		})
		switch {
		case errors.Is(err, grid.ErrNotFound): // deleted meanwhile
		case err != nil:
			return released, err
		default:
			released = append(released, a.Name)
		}
	}
	return released, nil
}

// DeleteAttachment removes an app's attachment.
func (s *Store) DeleteAttachment(ctx context.Context, app, name string) error {
	return s.attachments.delete(ctx, attachmentKey(app, name))
}

// PutBackup stores an add-on's backup (key <add-on id>.<backup id>).
func (s *Store) PutBackup(ctx context.Context, addonID, id string, r io.Reader) (size uint64, err error) {
	info, err := s.backups.Put(ctx, jetstream.ObjectMeta{Name: addonID + "." + id}, r)
	if err != nil {
		return 0, fmt.Errorf("store: backup %s: %v: %w", id, err, grid.ErrUnavailable)
	}
	return info.Size, nil
}

// OpenBackup streams an add-on's backup.
func (s *Store) OpenBackup(ctx context.Context, addonID, id string) (io.ReadCloser, error) {
	return openObject(ctx, s.backups, "backup", addonID+"."+id)
}

// DeleteBackup removes an add-on's backup; a missing one is fine.
func (s *Store) DeleteBackup(ctx context.Context, addonID, id string) error {
	if err := s.backups.Delete(ctx, addonID+"."+id); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("store: backup %s: %v: %w", id, err, grid.ErrUnavailable)
	}
	return nil
}
