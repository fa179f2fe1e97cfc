package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

// Backups (grid pg:backups) are dumps an add-on's backend makes with the
// add-on's own credentials, kept in the store's "backups" object bucket
// and listed in the add-on's record. Only the owning app's user may
// capture, download or restore them.

// BackupBackend is an AddonBackend that can dump and restore its
// resources' data.
type BackupBackend interface {
	Dump(ctx context.Context, url string, w io.Writer) error
	Restore(ctx context.Context, url string, r io.Reader) error
}

func backupView(b grid.Backup) schema.Backup {
	return schema.Backup{ID: b.ID, Size: b.Size, CreatedAt: apiTime(b.CreatedAt), User: b.User}
}

// backupAddon is the owned add-on of a request and its backend, which
// must keep backups.
func (s *server) backupAddon(r *http.Request) (grid.Addon, BackupBackend, error) {
	_, a, err := s.ownAddon(r, "manage its backups there")
	if err != nil {
		return a, nil, err
	}
	bb, ok := s.backend(a.Service).(BackupBackend)
	if !ok {
		return a, nil, invalid(fmt.Sprintf("%s (%s) has no backups.", a.Name, a.Service))
	}
	return a, bb, nil
}

// captureBackup is POST /apps/{app}/addons/{addon}/backups.
func (s *server) captureBackup(w http.ResponseWriter, r *http.Request, user string) error {
	a, bb, err := s.backupAddon(r)
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context())
	b := grid.Backup{ID: fmt.Sprintf("b%03d", len(a.Backups)+1), CreatedAt: s.now().UTC(), User: user}
	if n := len(a.Backups); n > 0 {
		last, _ := strconv.Atoi(a.Backups[n-1].ID[1:])
		b.ID = fmt.Sprintf("b%03d", last+1)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(bb.Dump(ctx, a.URL, pw)) }()
	size, err := s.store.PutBackup(ctx, a.ID, b.ID, pr)
	pr.Close()
	if err != nil {
		return err
	}
	b.Size = int64(size)
	a.Backups = append(a.Backups, b)
	if err := s.store.PutAddon(ctx, a); err != nil {
		return err
	}
	s.audit(a.App, fmt.Sprintf("Backup %s of %s captured by user %s", b.ID, a.Name, user))
	writeJSON(w, http.StatusCreated, backupView(b))
	return nil
}

func (s *server) listBackups(w http.ResponseWriter, r *http.Request, user string) error {
	a, _, err := s.backupAddon(r)
	if err != nil {
		return err
	}
	out := []schema.Backup{}
	for _, b := range a.Backups {
		out = append(out, backupView(b))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// findBackup resolves {backup} of a.
func findBackup(r *http.Request, a grid.Addon) (grid.Backup, error) {
	for _, b := range a.Backups {
		if b.ID == r.PathValue("backup") {
			return b, nil
		}
	}
	return grid.Backup{}, notFound("backup")
}

// downloadBackup is GET /apps/{app}/addons/{addon}/backups/{backup}/download.
func (s *server) downloadBackup(w http.ResponseWriter, r *http.Request, user string) error {
	a, _, err := s.backupAddon(r)
	if err != nil {
		return err
	}
	b, err := findBackup(r, a)
	if err != nil {
		return err
	}
	rc, err := s.store.OpenBackup(r.Context(), a.ID, b.ID)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(b.Size, 10))
	_, _ = io.Copy(w, rc)
	return nil
}

// restoreBackup is POST /apps/{app}/addons/{addon}/backups/{backup}/actions/restore.
func (s *server) restoreBackup(w http.ResponseWriter, r *http.Request, user string) error {
	a, bb, err := s.backupAddon(r)
	if err != nil {
		return err
	}
	b, err := findBackup(r, a)
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context())
	rc, err := s.store.OpenBackup(ctx, a.ID, b.ID)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := bb.Restore(ctx, a.URL, rc); err != nil {
		return err
	}
	s.audit(a.App, fmt.Sprintf("Backup %s restored to %s by user %s", b.ID, a.Name, user))
	writeJSON(w, http.StatusOK, backupView(b))
	return nil
}
