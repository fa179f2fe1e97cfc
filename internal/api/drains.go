package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"

	"github.com/dynogrid/grid/internal/drain"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

// Log drains: the records only; servers' shippers (internal/drain) watch
// them and deliver. A drain URL may hold credentials, so it is never put
// in the app's log or the grid's.

func (s *server) drainView(d grid.Drain) schema.LogDrain {
	v := schema.LogDrain{ID: d.ID, Token: d.Token, URL: d.URL, App: schema.Ref{ID: d.AppID, Name: d.App},
		CreatedAt: apiTime(d.CreatedAt), UpdatedAt: apiTime(d.CreatedAt)}
	if s.drainStats == nil {
		return v
	}
	if st, ok := s.drainStats(d.App, d.ID); ok {
		v.Status = &schema.LogDrainStatus{Delivered: st.Delivered, Dropped: st.Dropped, Queued: st.Queued}
		if st.LastError != "" {
			v.Status.LastError, v.Status.LastErrorAt = &st.LastError, apiTimePtr(st.LastErrorAt)
		}
	}
	return v
}

func (s *server) listDrains(w http.ResponseWriter, r *http.Request, user string) error {
	app, err := s.appOf(r)
	if err != nil {
		return err
	}
	ds, err := s.appDrains(r, app.Name)
	if err != nil {
		return err
	}
	views := make([]schema.LogDrain, len(ds))
	for i, d := range ds {
		views[i] = s.drainView(d)
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

// appDrains are app's drains, oldest first.
func (s *server) appDrains(r *http.Request, app string) ([]grid.Drain, error) {
	ds, err := s.store.Drains(r.Context(), app)
	sort.Slice(ds, func(i, j int) bool { return ds[i].CreatedAt.Before(ds[j].CreatedAt) })
	return ds, err
}

// createDrain is POST /apps/{app}/log-drains.
func (s *server) createDrain(w http.ResponseWriter, r *http.Request, user string) error {
	app, err := s.appOf(r)
	if err != nil {
		return err
	}
	var body schema.LogDrainCreate
	if err := decode(r, &body); err != nil {
		return err
	}
	u, err := drain.ParseURL(body.URL)
	if err != nil {
		return invalid(err.Error())
	}
	if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		if err := s.drainAllow(a); err != nil {
			return invalid(err.Error())
		}
	}
	ds, err := s.appDrains(r, app.Name)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.URL == u.String() {
			return invalid("Url has already been taken: " + app.Name + " already drains there (" + d.Token + ").")
		}
	}
	if len(ds) >= grid.MaxDrains {
		return invalid(fmt.Sprintf("%s has %d drains, the most an app may have. Remove one first (drains:remove).", app.Name, grid.MaxDrains))
	}
	id := store.NewID()
	d := grid.Drain{ID: id, App: app.Name, AppID: app.ID, URL: u.String(), Token: "d." + id, CreatedAt: s.now().UTC()}
	if err := s.store.CreateDrain(r.Context(), d); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.drainView(d))
	return nil
}

// findDrain resolves {drain}: an id, a token or a URL.
func (s *server) findDrain(r *http.Request) (grid.App, grid.Drain, error) {
	app, err := s.appOf(r)
	if err != nil {
		return grid.App{}, grid.Drain{}, err
	}
	ds, err := s.appDrains(r, app.Name)
	if err != nil {
		return grid.App{}, grid.Drain{}, err
	}
	ref := r.PathValue("drain")
	for _, d := range ds {
		if d.ID == ref || d.Token == ref || d.URL == ref {
			return app, d, nil
		}
	}
	return grid.App{}, grid.Drain{}, notFound("log drain")
}

func (s *server) getDrain(w http.ResponseWriter, r *http.Request, user string) error {
	_, d, err := s.findDrain(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.drainView(d))
	return nil
}

func (s *server) deleteDrain(w http.ResponseWriter, r *http.Request, user string) error {
	app, d, err := s.findDrain(r)
	if err != nil {
		return err
	}
	if err := s.store.DeleteDrain(r.Context(), app.Name, d.ID); err != nil && !errors.Is(err, grid.ErrNotFound) {
		return err
	}
	writeJSON(w, http.StatusOK, s.drainView(d))
	return nil
}
