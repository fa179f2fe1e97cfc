package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

var appFields = []rangeField[schema.App]{
	{"name", func(a schema.App) string { return a.Name }, textKey},
	{"id", func(a schema.App) string { return a.ID }, textKey},
	{"created_at", func(a schema.App) string { return timeValue(a.CreatedAt) }, timeKey},
	{"updated_at", func(a schema.App) string { return timeValue(a.UpdatedAt) }, timeKey},
}

// findApp resolves {app}, a name or an id.
func (s *server) findApp(ctx context.Context, ref string) (grid.App, error) {
	if grid.ValidateAppName(ref) == nil {
		a, err := s.store.App(ctx, ref)
		if errors.Is(err, grid.ErrNotFound) {
			return a, notFound("app")
		}
		return a, err
	}
	apps, err := s.store.Apps(ctx)
	if err != nil {
		return grid.App{}, err
	}
	for _, a := range apps {
		if a.ID == ref {
			return a, nil
		}
	}
	return grid.App{}, notFound("app")
}

// appOf resolves the request's {app}.
func (s *server) appOf(r *http.Request) (grid.App, error) {
	return s.findApp(r.Context(), r.PathValue("app"))
}

var (
	stackRef      = schema.Ref{ID: stableID("stack", grid.Stack), Name: grid.Stack}
	regionRef     = schema.Ref{ID: stableID("region", "us"), Name: "us"}
	generationRef = schema.Ref{ID: stableID("generation", "cedar"), Name: "cedar"}
)

func (s *server) appView(ctx context.Context, a grid.App) schema.App {
	v := schema.App{
		ID:           a.ID,
		Name:         a.Name,
		Owner:        userRef(a.Owner),
		Region:       regionRef,
		Stack:        stackRef,
		BuildStack:   stackRef,
		Generation:   generationRef,
		GitURL:       s.gitURLFor(ctx, a.Name),
		WebURL:       s.webURL(a.Name),
		Maintenance:  a.Maintenance,
		CreateStatus: "complete",
		CreatedAt:    apiTime(a.CreatedAt),
		UpdatedAt:    apiTime(a.UpdatedAt),
		ReleasedAt:   apiTimePtr(a.Release.CreatedAt),
	}
	if a.Release.SlugID == "" {
		return v
	}
	// Slug metadata only adds sizes; if it cannot be read the app is
	// still worth showing.
	if sl, err := s.store.Slug(ctx, a.Release.SlugID); err == nil {
		size := sl.Size
		v.SlugSize = &size
		if d := sl.BuildpackDescription; d != "" {
			v.BuildpackProvidedDescription = &d
		}
	}
	return v
}

// listApps lists every app: every API key is an operator of the whole
// grid, so there is no per-user visibility.
func (s *server) listApps(w http.ResponseWriter, r *http.Request, user string) error {
	apps, err := s.store.Apps(r.Context())
	if err != nil {
		return err
	}
	views := make([]schema.App, len(apps))
	for i, a := range apps {
		views[i] = s.appView(r.Context(), a)
	}
	return writeList(w, r, views, appFields)
}

// listUserApps is GET /users/{~ | email | id}/apps: the same as GET /apps,
// for the caller only.
func (s *server) listUserApps(w http.ResponseWriter, r *http.Request, user string) error {
	if u := r.PathValue("user"); u != "~" && u != user && u != accountID(user) {
		return notFound("user")
	}
	return s.listApps(w, r, user)
}

func (s *server) getApp(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.appView(r.Context(), a))
	return nil
}

// createApp creates an app with release v1 "Initial release".
func (s *server) createApp(w http.ResponseWriter, r *http.Request, user string) error {
	var body schema.AppCreate
	if err := decode(r, &body); err != nil {
		return err
	}
	ctx := r.Context()
	if body.Name != "" {
		if err := grid.ValidateAppName(body.Name); err != nil {
			return err
		}
	}
	uid, err := s.store.NextUID(ctx)
	if err != nil {
		return err
	}
	name, err := s.createAppRecord(ctx, body.Name, uid, user)
	if err != nil {
		return err
	}
	rel, err := s.store.CommitRelease(ctx, name, func(grid.App) (grid.Release, error) {
		return grid.Release{Description: "Initial release", User: user}, nil
	})
	if err != nil {
		// Leave no app without a release behind.
		if derr := s.store.DeleteApp(context.WithoutCancel(ctx), name); derr != nil {
			s.logger.Error("could not remove half-created app", "app", name, "err", derr)
		}
		return err
	}
	s.audit(name, "Initial release by user "+user)
	s.audit(name, fmt.Sprintf("Release v%d created by user %s", rel.Version, user))
	a, err := s.store.App(ctx, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.appView(ctx, a))
	return nil
}

// createAppRecord stores the app record under name, or under a generated
// name when name is empty (retrying on the rare collision).
func (s *server) createAppRecord(ctx context.Context, name string, uid int, user string) (string, error) {
	for attempt := 0; ; attempt++ {
		n := name
		if n == "" {
			n = generateName()
		}
		now := s.now().UTC()
		err := s.store.CreateApp(ctx, grid.App{ID: store.NewID(), Name: n, Owner: user, UID: uid, CreatedAt: now, UpdatedAt: now})
		switch {
		case err == nil:
			return n, nil
		case !errors.Is(err, grid.ErrConflict):
			return "", err
		case name == "" && attempt < 10:
			continue
		}
		return "", &userError{msg: "Name is already taken", resource: "app", err: grid.ErrInvalid}
	}
}

// updateApp is PATCH /apps/{app}: maintenance mode on or off. Renaming is
// refused: the name is the app's key, its hostname and its git remote.
func (s *server) updateApp(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	var body schema.AppUpdate
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Name != nil && *body.Name != a.Name {
		return invalid("Renaming apps is not supported. Create a new app with the name you want, copy the config vars and push the code to it.")
	}
	if body.Maintenance != nil && *body.Maintenance != a.Maintenance {
		a, err = s.store.UpdateApp(r.Context(), a.Name, func(a *grid.App) error {
			a.Maintenance = *body.Maintenance
			return nil
		})
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, s.appView(r.Context(), a))
	return nil
}

// deleteApp removes the app and its data. Its dynos' assignments are
// removed too, so hosts stop them without waiting for the manager.
func (s *server) deleteApp(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	view := s.appView(ctx, a)
	if err := s.store.DeleteApp(ctx, a.Name); err != nil {
		return err
	}
	// The app is gone from here on; finish the cleanup even if the client
	// goes away.
	ctx = context.WithoutCancel(ctx)
	if err := s.store.DeleteAppData(ctx, a.Name); err != nil {
		return err
	}
	if err := s.destroyAppAddons(ctx, a, user); err != nil {
		return err
	}
	if _, err := s.deleteAssignments(ctx, func(as grid.Assignment) bool { return as.App == a.Name }); err != nil {
		return err
	}
	if s.logs != nil {
		if err := s.logs.Purge(ctx, a.Name); err != nil {
			s.logger.Warn("could not purge logs of deleted app", "app", a.Name, "err", err)
		}
	}
	if s.appDestroyed != nil {
		s.appDestroyed(ctx, a.Name)
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

// emptyList answers endpoints of features Dynogrid does not have
// (collaborators) with an empty list, so clients that list them work.
func (s *server) emptyList(w http.ResponseWriter, r *http.Request, user string) error {
	if _, err := s.appOf(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, []struct{}{})
	return nil
}

// writeList sends the page of items r's Range asks for.
func writeList[T any](w http.ResponseWriter, r *http.Request, items []T, fields []rangeField[T]) error {
	out, status, err := page(w, r, items, fields)
	if err != nil {
		return err
	}
	if out == nil {
		out = []T{}
	}
	writeJSON(w, status, out)
	return nil
}
