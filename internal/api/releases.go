package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

var releaseFields = []rangeField[schema.Release]{
	{"version", func(r schema.Release) string { return strconv.Itoa(r.Version) }, intKey},
	{"id", func(r schema.Release) string { return r.ID }, textKey},
	{"created_at", func(r schema.Release) string { return timeValue(r.CreatedAt) }, timeKey},
	{"updated_at", func(r schema.Release) string { return timeValue(r.UpdatedAt) }, timeKey},
}

func releaseView(a grid.App, r grid.Release) schema.Release {
	v := schema.Release{
		ID:                  r.ID,
		Version:             r.Version,
		Description:         r.Description,
		Status:              string(r.Status),
		Current:             r.Version == a.Release.Version,
		EligibleForRollback: rollbackable(r),
		Artifacts:           []schema.Artifact{},
		App:                 schema.Ref{ID: a.ID, Name: a.Name},
		User:                userRef(r.User),
		AddonPlanNames:      []string{},
		CreatedAt:           apiTime(r.CreatedAt),
		UpdatedAt:           apiTime(r.CreatedAt),
	}
	if r.SlugID != "" {
		v.Slug = &schema.IDRef{ID: r.SlugID}
		v.Artifacts = append(v.Artifacts, schema.Artifact{Type: "slug", ID: r.SlugID})
	}
	return v
}

// rollbackable reports whether r can be rolled back to: it has code.
func rollbackable(r grid.Release) bool {
	return r.SlugID != "" && r.Status == grid.ReleaseSucceeded
}

func (s *server) listReleases(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	rs, err := s.store.Releases(r.Context(), a.Name)
	if err != nil {
		return err
	}
	views := make([]schema.Release, len(rs))
	for i, rel := range rs {
		views[i] = releaseView(a, rel)
	}
	return writeList(w, r, views, releaseFields)
}

// findRelease resolves a release by version ("5" or "v5") or id.
func (s *server) findRelease(ctx context.Context, a grid.App, ref string) (grid.Release, error) {
	if v, err := strconv.Atoi(strings.TrimPrefix(ref, "v")); err == nil {
		rel, err := s.store.Release(ctx, a.Name, v)
		if errors.Is(err, grid.ErrNotFound) {
			if v == a.Release.Version && v > 0 {
				return a.Release, nil // history record not written yet
			}
			return rel, notFound("release")
		}
		return rel, err
	}
	rs, err := s.store.Releases(ctx, a.Name)
	if err != nil {
		return grid.Release{}, err
	}
	for _, rel := range rs {
		if rel.ID == ref {
			return rel, nil
		}
	}
	return grid.Release{}, notFound("release")
}

func (s *server) getRelease(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	rel, err := s.findRelease(r.Context(), a, r.PathValue("release"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, releaseView(a, rel))
	return nil
}

func (s *server) getReleaseConfig(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	rel, err := s.findRelease(r.Context(), a, r.PathValue("release"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, configView(rel.Config))
	return nil
}

// rollback is POST /apps/{app}/releases {"release": id or version}: a new
// release with that release's slug and config vars.
func (s *server) rollback(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	var body schema.ReleaseCreate
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Release == "" {
		return invalid(`Say which release to roll back to: {"release": "<id or version>"}.`)
	}
	target, err := s.findRelease(r.Context(), a, body.Release)
	if err != nil {
		return err
	}
	if target.Status == grid.ReleaseFailed {
		return invalid(fmt.Sprintf("Cannot roll back to v%d: its release command failed, so it never went live.", target.Version))
	}
	if !rollbackable(target) {
		return invalid(fmt.Sprintf("Cannot roll back to v%d: it has no code (no slug). Roll back to a release made by a deploy.", target.Version))
	}
	// Slugs of releases older than the retention count are deleted; a
	// release without one would only crash its dynos.
	if _, err := s.store.Slug(r.Context(), target.SlugID); errors.Is(err, grid.ErrNotFound) {
		return invalid(fmt.Sprintf("Cannot roll back to v%d: its slug was deleted (only the newest releases keep theirs). Push that commit (%.8s) again instead.", target.Version, target.Commit))
	} else if err != nil {
		return err
	}
	rel, err := s.store.CommitRelease(r.Context(), a.Name, func(cur grid.App) (grid.Release, error) {
		a = cur
		return grid.Release{
			Description: grid.RollbackDescription(target.Version),
			SlugID:      target.SlugID,
			Commit:      target.Commit,
			Config:      maps.Clone(target.Config),
			User:        user,
		}, nil
	})
	if err != nil {
		return err
	}
	a.Release = rel
	s.audit(a.Name, rel.Description+" by user "+user)
	s.audit(a.Name, fmt.Sprintf("Release v%d created by user %s", rel.Version, user))
	writeJSON(w, http.StatusCreated, releaseView(a, rel))
	return nil
}
