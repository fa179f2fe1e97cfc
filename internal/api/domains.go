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

// An app's domains are its own hostname, <app>.<domain> (kind "heroku",
// not stored: it follows from the name), and the custom hostnames added
// to it (kind "custom", one store record each, which routers watch).

var domainFields = []rangeField[schema.Domain]{
	{"id", func(d schema.Domain) string { return d.ID }, textKey},
	{"hostname", func(d schema.Domain) string { return d.Hostname }, textKey},
	{"created_at", func(d schema.Domain) string { return timeValue(d.CreatedAt) }, timeKey},
	{"updated_at", func(d schema.Domain) string { return timeValue(d.UpdatedAt) }, timeKey},
}

// ownDomain is the app's own hostname as a domain.
func (s *server) ownDomain(a grid.App) schema.Domain {
	return schema.Domain{
		ID:        stableID("domain", a.ID),
		Hostname:  a.Name + "." + s.domain,
		Kind:      "heroku",
		Status:    "none",
		App:       schema.Ref{ID: a.ID, Name: a.Name},
		CreatedAt: apiTime(a.CreatedAt),
		UpdatedAt: apiTime(a.CreatedAt),
	}
}

// domainView shows a custom domain; certs are the app's, to name the one
// the router would serve for it.
func (s *server) domainView(a grid.App, d grid.Domain, certs []parsedCert) schema.Domain {
	cname := a.Name + "." + s.domain
	v := schema.Domain{
		ID:        d.ID,
		Hostname:  d.Hostname,
		Kind:      "custom",
		CNAME:     &cname,
		Status:    "succeeded",
		App:       schema.Ref{ID: a.ID, Name: a.Name},
		CreatedAt: apiTime(d.CreatedAt),
		UpdatedAt: apiTime(d.UpdatedAt),
	}
	for _, c := range certs {
		if c.leaf.VerifyHostname(d.Hostname) == nil {
			v.SNIEndpoint = &schema.Ref{ID: c.ID, Name: c.Name}
		}
	}
	return v
}

// appDomains is every domain of a, its own first.
func (s *server) appDomains(ctx context.Context, a grid.App) ([]schema.Domain, error) {
	ds, err := s.store.Domains(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	certs, err := s.appCerts(ctx, a.Name)
	if err != nil {
		return nil, err
	}
	out := []schema.Domain{s.ownDomain(a)}
	for _, d := range ds {
		if d.AppID == a.ID {
			out = append(out, s.domainView(a, d, certs))
		}
	}
	return out, nil
}

func (s *server) listDomains(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	ds, err := s.appDomains(r.Context(), a)
	if err != nil {
		return err
	}
	return writeList(w, r, ds, domainFields)
}

// findDomain resolves {domain}, an id or a hostname, among a's domains.
func (s *server) findDomain(r *http.Request, a grid.App) (schema.Domain, error) {
	ref := r.PathValue("domain")
	ds, err := s.appDomains(r.Context(), a)
	if err != nil {
		return schema.Domain{}, err
	}
	host, _ := grid.NormalizeHostname(ref)
	for _, d := range ds {
		if d.ID == ref || d.Hostname == host {
			return d, nil
		}
	}
	return schema.Domain{}, notFound("domain")
}

func (s *server) getDomain(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	d, err := s.findDomain(r, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// createDomain claims a hostname for the app. Names under the grid's own
// domain are refused: <app>.<domain> is how every app is reached, and a
// custom domain there would take another app's name.
func (s *server) createDomain(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	var body schema.DomainCreate
	if err := decode(r, &body); err != nil {
		return err
	}
	host, err := grid.NormalizeHostname(body.Hostname)
	if err != nil {
		return err
	}
	if grid.IsUnder(host, s.domain) {
		return invalid(fmt.Sprintf("%s is under the grid's own domain %s, where every app already has <app>.%s. Add a hostname of a domain you control.", host, s.domain, s.domain))
	}
	ctx := r.Context()
	now := s.now().UTC()
	d := grid.Domain{ID: store.NewID(), Hostname: host, App: a.Name, AppID: a.ID, CreatedAt: now, UpdatedAt: now}
	if err := s.claimDomain(ctx, d); err != nil {
		return err
	}
	certs, err := s.appCerts(ctx, a.Name)
	if err != nil {
		return err
	}
	s.audit(a.Name, fmt.Sprintf("Add %s domain by user %s", host, user))
	writeJSON(w, http.StatusCreated, s.domainView(a, d, certs))
	return nil
}

// claimDomain creates d's record. A record left by an app that is gone
// (an app deleted half-way, or deleted and created again under its name)
// does not hold the hostname: it is replaced.
func (s *server) claimDomain(ctx context.Context, d grid.Domain) error {
	for attempt := 0; ; attempt++ {
		holder, err := s.store.CreateDomain(ctx, d)
		if !errors.Is(err, grid.ErrConflict) {
			return err
		}
		if holder.AppID == d.AppID {
			return invalid(d.Hostname + " is already added to this app.")
		}
		owner, aerr := s.store.App(ctx, holder.App)
		switch {
		case aerr == nil && owner.ID == holder.AppID || attempt > 0:
			return invalid(fmt.Sprintf("%s is already in use by app %s. Remove it there first (grid domains:remove %s -a %s).", d.Hostname, holder.App, d.Hostname, holder.App))
		case aerr != nil && !errors.Is(aerr, grid.ErrNotFound):
			return aerr
		}
		if err := s.store.DeleteDomain(ctx, d.Hostname); err != nil {
			return err
		}
	}
}

func (s *server) deleteDomain(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	d, err := s.findDomain(r, a)
	if err != nil {
		return err
	}
	if d.Kind != "custom" {
		return invalid(d.Hostname + " is the app's own hostname and cannot be removed.")
	}
	if err := s.store.DeleteDomain(r.Context(), d.Hostname); err != nil {
		return err
	}
	s.audit(a.Name, fmt.Sprintf("Remove %s domain by user %s", d.Hostname, user))
	writeJSON(w, http.StatusOK, d)
	return nil
}
