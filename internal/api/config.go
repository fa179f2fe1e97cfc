package api

import (
	"errors"
	"fmt"
	"maps"
	"net/http"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

// errNoChange stops a CommitRelease whose patch would change nothing.
var errNoChange = errors.New("no change")

func (s *server) getConfig(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, configView(a.Release.Config))
	return nil
}

func configView(c map[string]string) schema.ConfigVars {
	if c == nil {
		return schema.ConfigVars{}
	}
	return c
}

// patchConfig merges the body into the config and makes a release of the
// result ("Set FOO config vars"), unless nothing changes. It answers with
// the whole resulting config.
func (s *server) patchConfig(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	var patch schema.ConfigVarsPatch
	if err := decode(r, &patch); err != nil {
		return err
	}
	rel, err := s.store.CommitRelease(r.Context(), a.Name, func(cur grid.App) (grid.Release, error) {
		next, desc, err := grid.PatchConfig(cur.Release.Config, patch)
		if err != nil {
			return grid.Release{}, err
		}
		if maps.Equal(next, cur.Release.Config) || len(next) == 0 && len(cur.Release.Config) == 0 {
			a = cur
			return grid.Release{}, errNoChange
		}
		return grid.Release{
			Description: desc,
			SlugID:      cur.Release.SlugID,
			Commit:      cur.Release.Commit,
			Config:      next,
			User:        user,
		}, nil
	})
	switch {
	case errors.Is(err, errNoChange):
		writeJSON(w, http.StatusOK, configView(a.Release.Config))
		return nil
	case err != nil:
		return err
	}
	s.audit(a.Name, rel.Description+" by user "+user)
	s.audit(a.Name, fmt.Sprintf("Release v%d created by user %s", rel.Version, user))
	writeJSON(w, http.StatusOK, configView(rel.Config))
	return nil
}
