package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

var dynoFields = []rangeField[schema.Dyno]{
	{"name", func(d schema.Dyno) string { return d.Name }, dynoNameKey},
	{"id", func(d schema.Dyno) string { return d.ID }, textKey},
	{"created_at", func(d schema.Dyno) string { return timeValue(d.CreatedAt) }, timeKey},
	{"updated_at", func(d schema.Dyno) string { return timeValue(d.UpdatedAt) }, timeKey},
}

// dynoNameKey sorts web dynos first and "web.2" before "web.10".
func dynoNameKey(name string) (string, bool) {
	typ, idx, ok := strings.Cut(name, ".")
	tk, _ := typeKey(typ)
	if n, err := strconv.ParseUint(idx, 10, 63); ok && err == nil {
		return fmt.Sprintf("%s\x00%020d", tk, n), true
	}
	return tk, true
}

// currentDynos keeps one record per dyno name: while a dyno is being
// replaced (start-before-stop) its old and new records coexist, and the
// newest one says what the dyno is becoming.
func currentDynos(ds []grid.Dyno) []grid.Dyno {
	idx := map[string]int{}
	var out []grid.Dyno
	for _, d := range ds {
		i, seen := idx[d.Name]
		switch {
		case !seen:
			idx[d.Name] = len(out)
			out = append(out, d)
		case newerDyno(d, out[i]):
			out[i] = d
		}
	}
	return out
}

func newerDyno(a, b grid.Dyno) bool {
	if c := cmp.Compare(a.Release, b.Release); c != 0 {
		return c > 0
	}
	if c := cmp.Compare(a.Epoch, b.Epoch); c != 0 {
		return c > 0
	}
	return a.CreatedAt.After(b.CreatedAt)
}

// dynoViews shows dynos, looking up each release's id once.
func (s *server) dynoViews(ctx context.Context, a grid.App, ds []grid.Dyno) []schema.Dyno {
	relIDs := map[int]string{a.Release.Version: a.Release.ID}
	views := make([]schema.Dyno, 0, len(ds))
	for _, d := range ds {
		id, ok := relIDs[d.Release]
		if !ok {
			// A missing history record only costs the id.
			if rel, err := s.store.Release(ctx, a.Name, d.Release); err == nil {
				id = rel.ID
			}
			relIDs[d.Release] = id
		}
		views = append(views, schema.Dyno{
			ID:        d.ID,
			Name:      d.Name,
			Type:      d.Type,
			State:     string(d.State),
			Command:   d.Command,
			Size:      sizeName(d.Size),
			Release:   schema.ReleaseRef{ID: id, Version: d.Release},
			App:       schema.Ref{ID: a.ID, Name: a.Name},
			Host:      hostRef(d.Host),
			CreatedAt: apiTime(d.CreatedAt),
			UpdatedAt: apiTime(d.UpdatedAt),
		})
	}
	return views
}

// hostRef points at the host a dyno runs on; nil if unknown.
func hostRef(id string) *schema.Ref {
	if id == "" {
		return nil
	}
	return &schema.Ref{ID: id, Name: id}
}

func (s *server) listDynos(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	ds, err := s.store.Dynos(r.Context(), a.Name)
	if err != nil {
		return err
	}
	return writeList(w, r, s.dynoViews(r.Context(), a, currentDynos(ds)), dynoFields)
}

func (s *server) getDyno(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	ds, err := s.store.Dynos(r.Context(), a.Name)
	if err != nil {
		return err
	}
	ref := r.PathValue("dyno")
	for _, d := range currentDynos(ds) {
		if d.Name == ref || d.ID == ref {
			writeJSON(w, http.StatusOK, s.dynoViews(r.Context(), a, []grid.Dyno{d})[0])
			return nil
		}
	}
	return notFound("dyno")
}

// restartAll is DELETE /apps/{app}/dynos: every process type's epoch is
// bumped and the manager replaces the dynos, start-before-stop.
func (s *server) restartAll(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	if err := s.bumpEpochs(r, a.Name, nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, struct{}{})
	return nil
}

// restartDyno is DELETE /apps/{app}/dynos/{dyno}: its assignment is
// removed, the host stops it and the manager starts a replacement.
func (s *server) restartDyno(w http.ResponseWriter, r *http.Request, user string) error {
	return s.stopDyno(w, r, user)
}

// stopDyno is POST /apps/{app}/dynos/{dyno}/actions/stop. As on Heroku's
// Common Runtime, a dyno the formation wants is started again.
func (s *server) stopDyno(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	ref := r.PathValue("dyno")
	n, err := s.deleteAssignments(r.Context(), func(as grid.Assignment) bool {
		return as.App == a.Name && (as.Name == ref || as.DynoID == ref)
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound("dyno")
	}
	writeJSON(w, http.StatusAccepted, struct{}{})
	return nil
}

// deleteAssignments removes every assignment match selects, which tells
// hosts to stop those dynos, and returns how many there were.
func (s *server) deleteAssignments(ctx context.Context, match func(grid.Assignment) bool) (int, error) {
	as, err := s.store.Assignments(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range as {
		if match(a) {
			if err := s.store.DeleteAssignment(ctx, a.Host, a.DynoID); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
