package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

// Heroku's add-on resolvers and grid-wide lists, which the Heroku CLI
// uses to turn what a user typed (an add-on's name or id, an attachment
// name such as DATABASE, "app::DATABASE", or a service such as
// heroku-postgresql) into add-ons and attachments.

// resolveRequest is the body of POST /actions/addons/resolve and
// /actions/addon-attachments/resolve.
type resolveRequest struct {
	Addon        string  `json:"addon"`
	Attachment   string  `json:"addon_attachment"`
	App          *string `json:"app"`
	AddonService *string `json:"addon_service"`
}

// scope splits "app::NAME" and returns the app to look in ("" for all).
func (q resolveRequest) scope(ref string) (app, name string) {
	if a, n, ok := strings.Cut(ref, "::"); ok {
		return a, n
	}
	if q.App != nil {
		return *q.App, ref
	}
	return "", ref
}

// visibleAttachments are app's attachments, or every app's for "".
func (s *server) visibleAttachments(ctx context.Context, app string) ([]grid.Attachment, error) {
	if app != "" {
		if _, err := s.findApp(ctx, app); err != nil {
			return nil, err
		}
	}
	return s.store.Attachments(ctx, app)
}

// matchesService reports whether service (a name or alias) names a's.
func (s *server) matchesService(a grid.Addon, service string) bool {
	for _, sv := range s.addonServices {
		if sv.Name == a.Service && (service == sv.Name || service == sv.Short || slices.Contains(sv.Aliases, service)) {
			return true
		}
	}
	return false
}

// resolveAddons is POST /actions/addons/resolve.
func (s *server) resolveAddons(w http.ResponseWriter, r *http.Request, user string) error {
	var q resolveRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	ctx := r.Context()
	app, ref := q.scope(q.Addon)
	ats, err := s.visibleAttachments(ctx, app)
	if err != nil {
		return err
	}
	all, err := s.store.Attachments(ctx, "")
	if err != nil {
		return err
	}
	var views []schema.Addon
	seen := map[string]bool{}
	for _, at := range ats {
		a, err := s.store.Addon(ctx, at.AddonID)
		if err != nil || seen[a.ID] {
			continue
		}
		hit := a.ID == ref || a.Name == ref || at.Name == strings.ToUpper(ref) || s.matchesService(a, ref)
		if hit && (q.AddonService == nil || s.matchesService(a, *q.AddonService)) {
			seen[a.ID] = true
			views = append(views, s.addonView(a, all))
		}
	}
	if len(views) == 0 {
		return notFound("add_on")
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

// resolveAttachments is POST /actions/addon-attachments/resolve.
func (s *server) resolveAttachments(w http.ResponseWriter, r *http.Request, user string) error {
	var q resolveRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	ctx := r.Context()
	app, ref := q.scope(q.Attachment)
	ats, err := s.visibleAttachments(ctx, app)
	if err != nil {
		return err
	}
	views := []schema.AddonAttachment{}
	for _, at := range ats {
		if at.ID != ref && at.Name != strings.ToUpper(ref) {
			continue
		}
		if q.AddonService != nil {
			if a, err := s.store.Addon(ctx, at.AddonID); err != nil || !s.matchesService(a, *q.AddonService) {
				continue
			}
		}
		views = append(views, s.attachmentView(ctx, at))
	}
	if len(views) == 0 {
		return notFound("add_on attachment")
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

// listAllAttachments is GET /addon-attachments: every app's.
func (s *server) listAllAttachments(w http.ResponseWriter, r *http.Request, user string) error {
	return s.writeAttachments(w, r, "", func(grid.Attachment) bool { return true })
}

// listAddonAttachments is GET /addons/{addon}/addon-attachments.
func (s *server) listAddonAttachments(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.addonByRef(r.Context(), r.PathValue("addon"))
	if err != nil {
		return err
	}
	return s.writeAttachments(w, r, "", func(at grid.Attachment) bool { return at.AddonID == a.ID })
}

// listAllAddons is GET /addons: every app's add-ons.
func (s *server) listAllAddons(w http.ResponseWriter, r *http.Request, user string) error {
	as, err := s.store.Addons(r.Context())
	if err != nil {
		return err
	}
	ats, err := s.store.Attachments(r.Context(), "")
	if err != nil {
		return err
	}
	views := make([]schema.Addon, 0, len(as))
	for _, a := range as {
		views = append(views, s.addonView(a, ats))
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

// getAnyAddon is GET /addons/{addon}.
func (s *server) getAnyAddon(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.addonByRef(r.Context(), r.PathValue("addon"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.oneAddonView(r.Context(), a))
	return nil
}

// addonByRef finds any app's add-on by id or name.
func (s *server) addonByRef(ctx context.Context, ref string) (grid.Addon, error) {
	as, err := s.store.Addons(ctx)
	if err != nil {
		return grid.Addon{}, err
	}
	for _, a := range as {
		if a.ID == ref || a.Name == ref {
			return a, nil
		}
	}
	return grid.Addon{}, notFound("add_on")
}
