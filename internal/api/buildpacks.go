package api

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

// An app's buildpack list lives in its record; builds read it when they
// start, so a change applies from the next build and makes no release.

func buildpackInstallations(a grid.App) []schema.BuildpackInstallation {
	out := make([]schema.BuildpackInstallation, len(a.Buildpacks))
	for i, url := range a.Buildpacks {
		out[i] = schema.BuildpackInstallation{Ordinal: i, Buildpack: schema.BuildpackInfo{URL: url, Name: url}}
	}
	return out
}

func (s *server) listBuildpacks(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, buildpackInstallations(a))
	return nil
}

// putBuildpacks replaces the app's list. Every entry is checked before
// anything is stored, so a bad one leaves the list as it was.
func (s *server) putBuildpacks(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	var body schema.BuildpackInstallationsUpdate
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Updates == nil {
		return invalid(`Give the new list as {"updates":[{"buildpack":"heroku/nodejs"}, ...]}; an empty list clears it.`)
	}
	list := make([]string, len(*body.Updates))
	for i, u := range *body.Updates {
		list[i] = u.Buildpack
	}
	refs, err := grid.ParseBuildpacks(list)
	if err != nil {
		return err
	}
	urls := make([]string, len(refs))
	for i, ref := range refs {
		urls[i] = ref.URL
	}
	a, err = s.store.UpdateApp(r.Context(), a.Name, func(cur *grid.App) error {
		if cur.ID != a.ID {
			return notFound("app")
		}
		cur.Buildpacks = urls
		return nil
	})
	if err != nil {
		return err
	}
	// Not the URLs: a tarball URL may carry an access token.
	s.audit(a.Name, fmt.Sprintf("Update buildpacks by user %s", user))
	writeJSON(w, http.StatusOK, buildpackInstallations(a))
	return nil
}

// registryBuildpack is GET /buildpack-registry/buildpacks/{name}: the
// Heroku CLI's buildpack registry lookup (HEROKU_BUILDPACK_REGISTRY_URL
// points here), which turns "heroku/python" into what to install. Only
// the grid's built-ins are known; it needs no key, as Heroku's does not.
func (s *server) registryBuildpack(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !slices.Contains(grid.BuiltinBuildpacks, name) {
		s.writeError(w, r, notFound("buildpack"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": name, "namespace": "heroku", "blob_url": name})
}
