package router

import (
	"crypto/tls"
	"sort"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

// hostTable is one immutable snapshot of the names the router answers to
// beyond <app>.<Domain>: custom domains and the TLS certificates for
// them. Like table it is swapped whole; requests and TLS handshakes read
// it without locks.
type hostTable struct {
	domains map[string]string             // normalized hostname ("*.example.com" for a wildcard) → app
	certs   map[string][]*tls.Certificate // app → its certificates, newest first
	def     *tls.Certificate              // the grid's default certificate; nil until a server stored one
}

// app is the app a normalized hostname belongs to: the exact name first,
// then a wildcard one label up ("a.example.com" → "*.example.com").
func (h *hostTable) app(host string) (string, bool) {
	if app, ok := h.domains[host]; ok {
		return app, true
	}
	if w := grid.WildcardOf(host); w != "" {
		app, ok := h.domains[w]
		return app, ok
	}
	return "", false
}

// appForHost is the app a Host header names: a custom domain, else
// <app>.<Domain>.
func (r *Router) appForHost(hostHeader string) (string, bool) {
	if app, ok := r.hosts.Load().app(normalHost(hostHeader)); ok {
		return app, true
	}
	return appFor(hostHeader, r.cfg.Domain)
}

// normalHost is a Host header or TLS server name without port, trailing
// dot or upper case.
func normalHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

// hostState is what the domains and certs watches have said, owned by
// Run's goroutine. Certificates are parsed once, when they arrive.
type hostState struct {
	domains map[string]grid.Domain // DomainKey → domain
	certs   map[string]parsedCert  // certs key → certificate
	synced  [2]bool                // domains, certs delivered their initial values
	dirty   bool                   // changed since the last publish
}

// parsedCert is a stored certificate ready for handshakes.
type parsedCert struct {
	app     string
	created time.Time
	cert    *tls.Certificate
	isDef   bool
}

// newHostState is an empty state, dirty: a session's first table replaces
// the last one whole, even when the store now holds nothing.
func newHostState() *hostState {
	return &hostState{domains: map[string]grid.Domain{}, certs: map[string]parsedCert{}, dirty: true}
}

func (s *hostState) loaded() bool { return s.synced[0] && s.synced[1] }

func (s *hostState) applyDomain(ev store.Event[grid.Domain]) {
	if apply(s.domains, ev) {
		s.synced[0] = true
		return
	}
	s.dirty = true
}

// applyCert parses a certificate as it arrives. One that does not parse
// (the API checks them, so only a damaged record) is dropped, and
// reported with bad: never with its key.
func (s *hostState) applyCert(ev store.Event[grid.Cert], bad func(app, name string, err error)) {
	if ev.Synced {
		s.synced[1] = true
		return
	}
	s.dirty = true
	delete(s.certs, ev.Key)
	if ev.Deleted {
		return
	}
	c := ev.Value
	pair, err := tls.X509KeyPair([]byte(c.Chain), []byte(c.Key))
	if err != nil {
		bad(c.App, c.Name, err)
		return
	}
	s.certs[ev.Key] = parsedCert{app: c.App, created: c.CreatedAt, cert: &pair, isDef: store.IsDefaultCertKey(ev.Key)}
}

// table builds the snapshot for requests and handshakes.
func (s *hostState) table() *hostTable {
	h := &hostTable{domains: make(map[string]string, len(s.domains)), certs: map[string][]*tls.Certificate{}}
	for key, d := range s.domains {
		h.domains[store.HostnameOfKey(key)] = d.App
	}
	byApp := map[string][]parsedCert{}
	for _, c := range s.certs {
		if c.isDef {
			h.def = c.cert
			continue
		}
		byApp[c.app] = append(byApp[c.app], c)
	}
	for app, cs := range byApp {
		sort.Slice(cs, func(i, j int) bool { return cs[i].created.After(cs[j].created) })
		for _, c := range cs {
			h.certs[app] = append(h.certs[app], c.cert)
		}
	}
	return h
}

// publishHosts makes the host state current once it changed.
func (r *Router) publishHosts(s *hostState) {
	if !s.dirty {
		return
	}
	r.hosts.Store(s.table())
	s.dirty = false
}
