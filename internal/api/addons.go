package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

// An add-on is provisioned by its service's backend, owned by one app and
// attached to it (and maybe to others) as NAME: each attachment is the
// config var NAME_URL, set and unset through releases like config:set,
// so dynos restart with it. Creation undoes itself if any step fails;
// destruction detaches everywhere first.

// AddonBackend provisions one service's resources.
type AddonBackend interface {
	// Plan checks a plan name ("" is the default) and returns it.
	Plan(name string) (string, error)
	Provision(ctx context.Context, resource, plan string) (url string, err error)
	Deprovision(ctx context.Context, resource string) error
	// Rotate gives the resource new credentials (the old ones stop
	// working) and returns its new URL.
	Rotate(ctx context.Context, resource string) (url string, err error)
	// ChangePlan moves the resource to plan (checked by Plan), keeping
	// its data and URL; ErrInvalid if what it holds does not fit.
	ChangePlan(ctx context.Context, resource, plan string) error
}

// AddonService is one add-on service the grid offers: its names and
// its backend. The core knows no service by name, so another add-on (a
// Partner API provider's, say) plugs in with an entry of its own.
type AddonService struct {
	Name     string   // "heroku-postgresql"
	Short    string   // "postgresql": add-on names begin with it
	Aliases  []string // other names users may give it
	AttachAs string   // the default attachment name: "DATABASE"
	// Backend provisions its add-ons. Nil means the service is known
	// but not running here: its requests answer 503.
	Backend AddonBackend
}

// service resolves "heroku-postgresql:essential-0" to the service and
// its plan's name.
func (s *server) service(spec string) (AddonService, string, error) {
	name, plan, _ := strings.Cut(strings.TrimSpace(spec), ":")
	var known []string
	for _, sv := range s.addonServices {
		known = append(known, fmt.Sprintf("%s (%s)", sv.Name, sv.Short))
		if name != sv.Name && !slices.Contains(sv.Aliases, name) {
			continue
		}
		if sv.Backend == nil {
			return sv, "", fmt.Errorf("this grid runs no %s backend (is it installed?): %w", sv.Name, grid.ErrUnavailable)
		}
		plan, err := sv.Backend.Plan(plan)
		return sv, plan, err
	}
	return AddonService{}, "", invalid(fmt.Sprintf("No add-on service %q. This grid offers %s.", name, strings.Join(known, ", ")))
}

// backend is the backend of service name, or nil.
func (s *server) backend(name string) AddonBackend {
	for _, sv := range s.addonServices {
		if sv.Name == name {
			return sv.Backend
		}
	}
	return nil
}

var adjectives = []string{"amber", "brisk", "calm", "deep", "eager", "fair", "gentle", "humble", "ivory", "jolly", "keen", "lively", "mellow", "nimble", "opal", "proud", "quiet", "rapid", "silver", "tidy", "vivid", "warm"}

// addonName makes a free name like "postgresql-brisk-48213".
func addonName(short string, taken func(string) bool) string {
	for {
		n := fmt.Sprintf("%s-%s-%05d", short, adjectives[rand.IntN(len(adjectives))], rand.IntN(100000))
		if !taken(n) {
			return n
		}
	}
}

// addonView shows a; ats are every app's attachments (one list serves a
// whole answer).
func (s *server) addonView(a grid.Addon, ats []grid.Attachment) schema.Addon {
	v := schema.Addon{
		ID: a.ID, Name: a.Name,
		AddonService: schema.Ref{ID: stableID("addon-service", a.Service), Name: a.Service},
		Plan:         schema.Ref{ID: stableID("plan", a.Service+":"+a.Plan), Name: a.Service + ":" + a.Plan},
		App:          schema.Ref{ID: a.AppID, Name: a.App},
		ConfigVars:   []string{},
		ProviderID:   a.Resource,
		State:        "provisioned",
		Actions:      []struct{}{},
		CreatedAt:    apiTime(a.CreatedAt),
		UpdatedAt:    apiTime(a.UpdatedAt),
	}
	for _, at := range ats {
		if at.AddonID == a.ID {
			if at.App == a.App {
				v.ConfigVars = append(v.ConfigVars, at.ConfigVar())
			}
			v.Attachments = append(v.Attachments, schema.AttachedRef{App: at.App, Name: at.Name})
		}
	}
	return v
}

// createAddon is POST /apps/{app}/addons.
func (s *server) createAddon(w http.ResponseWriter, r *http.Request, user string) error {
	app, err := s.appOf(r)
	if err != nil {
		return err
	}
	var body schema.AddonCreate
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Plan == "" {
		return invalid(`Say which add-on: {"plan": "heroku-postgresql"} or "heroku-redis:premium-0".`)
	}
	if len(body.Config) > 0 {
		return invalid("These add-ons take no config options.")
	}
	svc, plan, err := s.service(string(body.Plan))
	if err != nil {
		return err
	}
	attachAs, backend := svc.AttachAs, svc.Backend
	if body.Attachment != nil && body.Attachment.Name != "" {
		attachAs = strings.ToUpper(body.Attachment.Name)
	}
	if err := grid.ValidateAttachmentName(attachAs); err != nil {
		return err
	}
	ctx := r.Context()
	all, err := s.store.Addons(ctx)
	if err != nil {
		return err
	}
	taken := map[string]bool{}
	for _, a := range all {
		taken[a.Name] = true
	}
	now := s.now().UTC()
	id := store.NewID()
	a := grid.Addon{ID: id, Name: addonName(svc.Short, func(n string) bool { return taken[n] }), App: app.Name, AppID: app.ID,
		Service: svc.Name, Plan: plan, Resource: strings.ReplaceAll(id, "-", ""), CreatedAt: now, UpdatedAt: now}
	// Each step undoes the ones before if it fails; the client's going
	// away does not leave half an add-on.
	ctx = context.WithoutCancel(ctx)
	if a.URL, err = backend.Provision(ctx, a.Resource, plan); err != nil {
		return err
	}
	if err := s.store.PutAddon(ctx, a); err != nil {
		return errors.Join(err, backend.Deprovision(ctx, a.Resource))
	}
	if err := s.attach(ctx, a, app, attachAs, user); err != nil {
		return errors.Join(err, s.store.DeleteAddon(ctx, a.ID), backend.Deprovision(ctx, a.Resource))
	}
	s.audit(app.Name, fmt.Sprintf("Add %s add-on %s by user %s", a.Service+":"+a.Plan, a.Name, user))
	writeJSON(w, http.StatusCreated, s.oneAddonView(ctx, a))
	return nil
}

// attach records the attachment of a to app as name and releases the
// config var; the record is removed again if the release fails.
func (s *server) attach(ctx context.Context, a grid.Addon, app grid.App, name, user string) error {
	at := grid.Attachment{ID: store.NewID(), AddonID: a.ID, App: app.Name, AppID: app.ID, Name: name, CreatedAt: s.now().UTC()}
	if err := s.store.CreateAttachment(ctx, at); err != nil {
		if errors.Is(err, grid.ErrConflict) {
			return invalid(fmt.Sprintf("%s already has an add-on attached as %s. Choose another name (--as).", app.Name, name))
		}
		return err
	}
	url := a.URL
	err := s.releaseConfig(ctx, app.Name, user, fmt.Sprintf("Attach %s (@ref:%s)", name, a.Name), func(cfg map[string]string) error {
		if _, ok := cfg[at.ConfigVar()]; ok {
			return invalid(fmt.Sprintf("%s already has a config var %s. Choose another name (--as), or unset it first.", app.Name, at.ConfigVar()))
		}
		cfg[at.ConfigVar()] = url
		return nil
	})
	if err != nil {
		return errors.Join(err, s.store.DeleteAttachment(ctx, app.Name, name))
	}
	return nil
}

// detach forgets at and releases app without its config var: in this
// order, so that the release no longer lets the app's dynos reach the
// add-on (store.CommitRelease takes Reach from the attachments). If the
// release fails, at is put back.
func (s *server) detach(ctx context.Context, at grid.Attachment, a grid.Addon, user string) error {
	if err := s.store.DeleteAttachment(ctx, at.App, at.Name); err != nil {
		return err
	}
	err := s.releaseConfig(ctx, at.App, user, fmt.Sprintf("Detach %s (@ref:%s)", at.Name, a.Name), func(cfg map[string]string) error {
		delete(cfg, at.ConfigVar())
		return nil
	})
	if err != nil && !errors.Is(err, grid.ErrNotFound) {
		return errors.Join(err, s.store.CreateAttachment(ctx, at))
	}
	return nil
}

// releaseConfig makes a release of app whose config is the current one
// changed by edit, described as desc.
func (s *server) releaseConfig(ctx context.Context, app, user, desc string, edit func(map[string]string) error) error {
	rel, err := s.store.CommitRelease(ctx, app, func(cur grid.App) (grid.Release, error) {
		cfg := maps.Clone(cur.Release.Config)
		if cfg == nil {
			cfg = map[string]string{}
		}
		if err := edit(cfg); err != nil {
			return grid.Release{}, err
		}
		return grid.Release{Description: desc, SlugID: cur.Release.SlugID, Commit: cur.Release.Commit, Config: cfg, User: user}, nil
	})
	if err != nil {
		return err
	}
	s.audit(app, rel.Description+" by user "+user)
	s.audit(app, fmt.Sprintf("Release v%d created by user %s", rel.Version, user))
	return nil
}

// oneAddonView is addonView for an answer about one add-on.
func (s *server) oneAddonView(ctx context.Context, a grid.Addon) schema.Addon {
	ats, _ := s.store.Attachments(ctx, "")
	return s.addonView(a, ats)
}

// appAddons are the add-ons attached to app, owned or not.
func (s *server) appAddons(ctx context.Context, app grid.App) ([]grid.Addon, error) {
	ats, err := s.store.Attachments(ctx, app.Name)
	if err != nil {
		return nil, err
	}
	var out []grid.Addon
	seen := map[string]bool{}
	for _, at := range ats {
		if at.AppID != app.ID || seen[at.AddonID] {
			continue
		}
		a, err := s.store.Addon(ctx, at.AddonID)
		if err != nil {
			continue // destroyed half way: it no longer counts
		}
		seen[a.ID] = true
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

func (s *server) listAddons(w http.ResponseWriter, r *http.Request, user string) error {
	app, err := s.appOf(r)
	if err != nil {
		return err
	}
	as, err := s.appAddons(r.Context(), app)
	if err != nil {
		return err
	}
	ats, err := s.store.Attachments(r.Context(), "")
	if err != nil {
		return err
	}
	views := make([]schema.Addon, len(as))
	for i, a := range as {
		views[i] = s.addonView(a, ats)
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

// findAddon resolves {addon} (id or name) among app's add-ons.
func (s *server) findAddon(ctx context.Context, app grid.App, ref string) (grid.Addon, error) {
	as, err := s.appAddons(ctx, app)
	if err != nil {
		return grid.Addon{}, err
	}
	for _, a := range as {
		if a.ID == ref || a.Name == ref {
			return a, nil
		}
	}
	return grid.Addon{}, notFound("add-on")
}

func (s *server) getAddon(w http.ResponseWriter, r *http.Request, user string) error {
	app, err := s.appOf(r)
	if err != nil {
		return err
	}
	a, err := s.findAddon(r.Context(), app, r.PathValue("addon"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.oneAddonView(r.Context(), a))
	return nil
}

// ownAddon resolves {app} and {addon}, an add-on the app owns; for one
// it is only attached to, the error says whose it is and then instead.
func (s *server) ownAddon(r *http.Request, instead string) (grid.App, grid.Addon, error) {
	app, err := s.appOf(r)
	if err != nil {
		return grid.App{}, grid.Addon{}, err
	}
	a, err := s.findAddon(r.Context(), app, r.PathValue("addon"))
	if err != nil {
		return grid.App{}, grid.Addon{}, err
	}
	if a.AppID != app.ID {
		return grid.App{}, grid.Addon{}, invalid(fmt.Sprintf("%s belongs to %s: %s.", a.Name, a.App, instead))
	}
	return app, a, nil
}

// updateAddon is PATCH /apps/{app}/addons/{addon}: a plan change of the
// same service, by the owning app. Data, URL and attachments stay, so no
// release is made.
func (s *server) updateAddon(w http.ResponseWriter, r *http.Request, user string) error {
	app, a, err := s.ownAddon(r, "change its plan there")
	if err != nil {
		return err
	}
	var body schema.AddonUpdate
	if err := decode(r, &body); err != nil {
		return err
	}
	spec := string(body.Plan)
	if spec == "" {
		return invalid(`Say which plan: {"plan": "heroku-postgresql:standard-0"}.`)
	}
	if !strings.Contains(spec, ":") {
		spec = a.Service + ":" + spec // "standard-0" alone names a plan of a's service
	}
	svc, plan, err := s.service(spec)
	if err != nil {
		return err
	}
	if svc.Name != a.Service {
		return invalid(fmt.Sprintf("%s is a %s add-on; its plan cannot be one of %s.", a.Name, a.Service, svc.Name))
	}
	backend := svc.Backend
	ctx := context.WithoutCancel(r.Context())
	if plan != a.Plan {
		if err := backend.ChangePlan(ctx, a.Resource, plan); err != nil {
			return err
		}
		old := a.Plan
		a.Plan, a.UpdatedAt = plan, s.now().UTC()
		if err := s.store.PutAddon(ctx, a); err != nil {
			return errors.Join(err, backend.ChangePlan(ctx, a.Resource, old)) // back to what the record says
		}
		s.audit(app.Name, fmt.Sprintf("Change %s from %s to %s by user %s", a.Name, a.Service+":"+old, a.Service+":"+plan, user))
	}
	writeJSON(w, http.StatusOK, s.oneAddonView(ctx, a))
	return nil
}

// deleteAddon is DELETE /apps/{app}/addons/{addon}: detach everywhere,
// then deprovision (the data goes). Only the owning app may.
func (s *server) deleteAddon(w http.ResponseWriter, r *http.Request, user string) error {
	app, a, err := s.ownAddon(r, "destroy it there, or detach it from "+r.PathValue("app"))
	if err != nil {
		return err
	}
	ctx := r.Context()
	view := s.oneAddonView(ctx, a)
	ctx = context.WithoutCancel(ctx)
	if err := s.destroyAddon(ctx, a, user); err != nil {
		return err
	}
	s.audit(app.Name, fmt.Sprintf("Destroy %s add-on %s by user %s", a.Service+":"+a.Plan, a.Name, user))
	view.State = "deprovisioned"
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (s *server) destroyAddon(ctx context.Context, a grid.Addon, user string) error {
	ats, err := s.store.Attachments(ctx, "")
	if err != nil {
		return err
	}
	for _, at := range ats {
		if at.AddonID == a.ID {
			if err := s.detach(ctx, at, a, user); err != nil {
				return err
			}
		}
	}
	if b := s.backend(a.Service); b != nil {
		if err := b.Deprovision(ctx, a.Resource); err != nil {
			return err
		}
	}
	for _, bk := range a.Backups {
		if err := s.store.DeleteBackup(ctx, a.ID, bk.ID); err != nil {
			return err
		}
	}
	return s.store.DeleteAddon(ctx, a.ID)
}

// destroyAppAddons removes what an app being deleted owns, and its
// attachments to other apps' add-ons.
func (s *server) destroyAppAddons(ctx context.Context, app grid.App, user string) error {
	all, err := s.store.Addons(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range all {
		if a.AppID == app.ID {
			errs = append(errs, s.destroyAddon(ctx, a, user))
		}
	}
	ats, err := s.store.Attachments(ctx, app.Name)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, at := range ats {
		errs = append(errs, s.store.DeleteAttachment(ctx, at.App, at.Name))
	}
	return errors.Join(errs...)
}

func (s *server) attachmentView(ctx context.Context, at grid.Attachment) schema.AddonAttachment {
	v := schema.AddonAttachment{ID: at.ID, Name: at.Name, App: schema.Ref{ID: at.AppID, Name: at.App},
		CreatedAt: apiTime(at.CreatedAt), UpdatedAt: apiTime(at.CreatedAt)}
	if a, err := s.store.Addon(ctx, at.AddonID); err == nil {
		v.Addon = schema.AddonRef{ID: a.ID, Name: a.Name, App: schema.Ref{ID: a.AppID, Name: a.App}}
	}
	return v
}

func (s *server) listAttachments(w http.ResponseWriter, r *http.Request, user string) error {
	app, err := s.appOf(r)
	if err != nil {
		return err
	}
	return s.writeAttachments(w, r, app.Name, func(at grid.Attachment) bool { return at.AppID == app.ID })
}

// writeAttachments answers with app's attachments ("" for every app's)
// that keep selects.
func (s *server) writeAttachments(w http.ResponseWriter, r *http.Request, app string, keep func(grid.Attachment) bool) error {
	ats, err := s.store.Attachments(r.Context(), app)
	if err != nil {
		return err
	}
	views := []schema.AddonAttachment{}
	for _, at := range ats {
		if keep(at) {
			views = append(views, s.attachmentView(r.Context(), at))
		}
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

// createAttachment is POST /addon-attachments: attach an add-on of one
// of the user's apps to another (a shared database).
func (s *server) createAttachment(w http.ResponseWriter, r *http.Request, user string) error {
	var body schema.AttachmentCreate
	if err := decode(r, &body); err != nil {
		return err
	}
	ctx := r.Context()
	app, err := s.findApp(ctx, body.App)
	if err != nil {
		return err
	}
	all, err := s.store.Addons(ctx)
	if err != nil {
		return err
	}
	var a *grid.Addon
	for i := range all {
		if all[i].ID == body.Addon || all[i].Name == body.Addon {
			if _, err := s.findApp(ctx, all[i].App); err == nil {
				a = &all[i]
			}
		}
	}
	if a == nil {
		return notFound("add-on")
	}
	name := strings.ToUpper(body.Name)
	if name == "" {
		for _, sv := range s.addonServices {
			if sv.Name == a.Service {
				name = sv.AttachAs
			}
		}
	}
	if err := grid.ValidateAttachmentName(name); err != nil {
		return err
	}
	if err := s.attach(context.WithoutCancel(ctx), *a, app, name, user); err != nil {
		return err
	}
	ats, err := s.store.Attachments(ctx, app.Name)
	if err != nil {
		return err
	}
	for _, at := range ats {
		if at.Name == name {
			writeJSON(w, http.StatusCreated, s.attachmentView(ctx, at))
			return nil
		}
	}
	return notFound("attachment")
}

// deleteAttachment is DELETE /addon-attachments/{id}. The owning app's
// own attachment stays: destroy the add-on instead.
func (s *server) deleteAttachment(w http.ResponseWriter, r *http.Request, user string) error {
	ctx := r.Context()
	ats, err := s.store.Attachments(ctx, "")
	if err != nil {
		return err
	}
	for _, at := range ats {
		if at.ID != r.PathValue("attachment") {
			continue
		}
		if _, err := s.findApp(ctx, at.App); err != nil {
			return notFound("attachment")
		}
		a, err := s.store.Addon(ctx, at.AddonID)
		if err != nil {
			return err
		}
		if a.AppID == at.AppID {
			return invalid(fmt.Sprintf("%s is %s's own add-on: destroy it instead (grid addons:destroy %s).", a.Name, a.App, a.Name))
		}
		view := s.attachmentView(ctx, at)
		if err := s.detach(context.WithoutCancel(ctx), at, a, user); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, view)
		return nil
	}
	return notFound("attachment")
}

// rotateCredentials is POST /apps/{app}/addons/{addon}/actions/rotate-credentials
// (grid pg:credentials:rotate): new credentials, released to every app
// the add-on is attached to. Only the owning app may.
func (s *server) rotateCredentials(w http.ResponseWriter, r *http.Request, user string) error {
	_, a, err := s.ownAddon(r, "rotate its credentials there")
	if err != nil {
		return err
	}
	ctx := r.Context()
	b := s.backend(a.Service)
	if b == nil {
		return fmt.Errorf("this grid runs no %s backend: %w", a.Service, grid.ErrUnavailable)
	}
	ctx = context.WithoutCancel(ctx)
	if a.URL, err = b.Rotate(ctx, a.Resource); err != nil {
		return err
	}
	a.UpdatedAt = s.now().UTC()
	if err := s.store.PutAddon(ctx, a); err != nil {
		return err
	}
	ats, err := s.store.Attachments(ctx, "")
	if err != nil {
		return err
	}
	for _, at := range ats {
		if at.AddonID != a.ID {
			continue
		}
		url := a.URL
		err := s.releaseConfig(ctx, at.App, user, fmt.Sprintf("Update %s by %s", at.ConfigVar(), a.Name), func(cfg map[string]string) error {
			cfg[at.ConfigVar()] = url
			return nil
		})
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, s.oneAddonView(ctx, a))
	return nil
}
