package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

// HostProvider adds and fails hosts for the hosts endpoints; cmd/grid
// implements it over a host provider and records the hosts it makes.
type HostProvider interface {
	// Add provisions one more host and records its control record; the
	// host joins by itself.
	Add(ctx context.Context) (grid.HostControl, error)
	// Fail cuts host id's power (netns hosts only); other hosts are
	// grid.ErrInvalid, unknown ones grid.ErrNotFound.
	Fail(ctx context.Context, id string) error
	// Cut takes host id's network link down (cut) or up again, leaving
	// its processes running (netns hosts only; errors as Fail).
	Cut(ctx context.Context, id string, cut bool) error
}

// hostLostAfter is how old a heartbeat may be before a host shows as
// lost: the manager's HostTimeout.
const hostLostAfter = 6 * time.Second

// errNoProvider answers host changes on a grid without a provider.
var errNoProvider = &userError{
	msg: "no host provider configured; start grid with --hosts or --provider",
	err: errNotImplemented,
}

var hostFields = []rangeField[schema.Host]{
	{"id", func(h schema.Host) string { return h.ID }, naturalKey},
	{"created_at", func(h schema.Host) string { return timeValue(h.CreatedAt) }, timeKey},
	{"updated_at", func(h schema.Host) string { return timeValue(h.UpdatedAt) }, timeKey},
}

var digitsRE = regexp.MustCompile(`\d+`)

// naturalKey sorts "h2" before "h10".
func naturalKey(s string) (string, bool) {
	return digitsRE.ReplaceAllStringFunc(s, func(d string) string {
		return strings.Repeat("0", max(0, 20-len(d))) + d
	}), true
}

// hostViews shows every host the store knows of: registered ones and
// provisioned ones that have not registered yet. Every API key is an
// administrator's today; when accounts get roles, these endpoints are
// for administrators only.
func (s *server) hostViews(ctx context.Context) ([]schema.Host, error) {
	hosts, err := s.store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	ctls, err := s.store.HostControls(ctx)
	if err != nil {
		return nil, err
	}
	dynos, err := s.store.Dynos(ctx, "")
	if err != nil {
		return nil, err
	}
	ctl := map[string]grid.HostControl{}
	for _, c := range ctls {
		ctl[c.ID] = c
	}
	reserved, count := map[string]int{}, map[string]int{}
	for _, d := range dynos {
		count[d.Host]++
		if sz, err := grid.LookupSize(d.Size); err == nil {
			reserved[d.Host] += sz.MemoryMB
		}
	}
	now := s.now()
	views := make([]schema.Host, 0, len(hosts)+len(ctls))
	for _, h := range hosts {
		c := ctl[h.ID]
		delete(ctl, h.ID)
		state := grid.HostUp
		switch {
		case now.Sub(h.HeartbeatAt) > hostLostAfter:
			state = grid.HostLost
		case c.Draining:
			state = grid.HostDraining
		}
		views = append(views, schema.Host{
			ID: h.ID, Name: h.ID, Addr: h.Addr, Subnet: h.Subnet, State: string(state), Cores: h.Cores,
			Memory:    schema.HostMemory{TotalMB: h.MemoryMB, ReservedMB: reserved[h.ID], FreeMB: h.MemoryMB - reserved[h.ID]},
			DynoCount: count[h.ID], Provider: c.Provider, Handle: c.Handle,
			CreatedAt: apiTime(h.StartedAt), UpdatedAt: apiTime(h.HeartbeatAt),
		})
	}
	for _, c := range ctl {
		views = append(views, controlView(c))
	}
	return views, nil
}

// controlView shows a host known only by its control record: provisioned,
// not registered yet.
func controlView(c grid.HostControl) schema.Host {
	state := "starting"
	if c.Draining {
		state = string(grid.HostDraining)
	}
	return schema.Host{
		ID: c.ID, Name: c.ID, State: state, Provider: c.Provider, Handle: c.Handle,
		CreatedAt: apiTime(c.Since), UpdatedAt: apiTime(c.Since),
	}
}

func (s *server) listHosts(w http.ResponseWriter, r *http.Request, user string) error {
	views, err := s.hostViews(r.Context())
	if err != nil {
		return err
	}
	return writeList(w, r, views, hostFields)
}

// hostView finds one host by id.
func (s *server) hostView(ctx context.Context, id string) (schema.Host, error) {
	views, err := s.hostViews(ctx)
	if err != nil {
		return schema.Host{}, err
	}
	for _, v := range views {
		if v.ID == id {
			return v, nil
		}
	}
	return schema.Host{}, notFound("host")
}

func (s *server) getHost(w http.ResponseWriter, r *http.Request, user string) error {
	v, err := s.hostView(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// addHost is POST /hosts: the provider starts one more host, which
// registers by itself.
func (s *server) addHost(w http.ResponseWriter, r *http.Request, user string) error {
	if s.hosts == nil {
		return errNoProvider
	}
	c, err := s.hosts.Add(r.Context())
	if err != nil {
		return hostError("add a host", err)
	}
	s.logger.Info("host added", "host", c.ID, "provider", c.Provider, "user", user)
	writeJSON(w, http.StatusAccepted, controlView(c))
	return nil
}

// drainHost is POST /hosts/{id}/actions/drain: the host is marked
// draining; the manager moves its dynos away (start-before-stop) and
// then releases it.
func (s *server) drainHost(w http.ResponseWriter, r *http.Request, user string) error {
	id := r.PathValue("id")
	if _, err := s.hostView(r.Context(), id); err != nil {
		return err
	}
	_, err := s.store.UpdateHostControl(r.Context(), id, func(c *grid.HostControl) error {
		if c.Since.IsZero() {
			c.Since = s.now().UTC()
		}
		c.Draining = true
		return nil
	})
	if err != nil {
		return err
	}
	s.logger.Info("host draining", "host", id, "user", user)
	v, err := s.hostView(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, v)
	return nil
}

// failHost is POST /hosts/{id}/actions/fail: a power cut, for netns
// hosts in tests and demos.
func (s *server) failHost(w http.ResponseWriter, r *http.Request, user string) error {
	if s.hosts == nil {
		return errNoProvider
	}
	id := r.PathValue("id")
	if err := s.hosts.Fail(r.Context(), id); err != nil {
		if errors.Is(err, grid.ErrNotFound) {
			return notFound("host")
		}
		return hostError("fail host "+id, err)
	}
	s.logger.Warn("host failed on request", "host", id, "user", user)
	writeJSON(w, http.StatusAccepted, struct{}{})
	return nil
}

// cutHost is POST /hosts/{id}/actions/cut and .../heal: a network
// partition of a netns host and its healing, for tests and demos.
func (s *server) cutHost(cut bool) func(http.ResponseWriter, *http.Request, string) error {
	return func(w http.ResponseWriter, r *http.Request, user string) error {
		if s.hosts == nil {
			return errNoProvider
		}
		id := r.PathValue("id")
		if err := s.hosts.Cut(r.Context(), id, cut); err != nil {
			if errors.Is(err, grid.ErrNotFound) {
				return notFound("host")
			}
			return hostError("change host "+id+"'s link", err)
		}
		s.logger.Warn("host link changed on request", "host", id, "cut", cut, "user", user)
		writeJSON(w, http.StatusAccepted, struct{}{})
		return nil
	}
}

// roleToken is GET /hosts/{id}/token and /routers/{id}/token: the
// password to join a host or router by hand. It need not exist yet.
func (s *server) roleToken(kind store.RoleKind) func(http.ResponseWriter, *http.Request, string) error {
	return func(w http.ResponseWriter, r *http.Request, user string) error {
		if s.rolePassword == nil {
			return &userError{msg: "this API cannot hand out join passwords; read the cluster secret on a server", err: errNotImplemented}
		}
		id := r.PathValue("id")
		if err := store.ValidateRoleID(id); err != nil {
			return invalid(grid.Message(err) + ".")
		}
		s.logger.Info("join token issued", "role", string(kind), "id", id, "user", user)
		writeJSON(w, http.StatusOK, schema.HostToken{Password: s.rolePassword(store.Role{Kind: kind, ID: id})})
		return nil
	}
}

// hostError keeps a provider's category and says what failed; errors
// without a category (a broken provider) become unavailable, with the
// provider's message, which is written for operators.
func hostError(what string, err error) error {
	if _, _, cat := classify(err); cat != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %v: %w", what, err, grid.ErrUnavailable)
}
