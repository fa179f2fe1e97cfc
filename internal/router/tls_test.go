package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/localca"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// tlsGrid is a router with a TLS listener, a local CA, the grid's
// default certificate (*.localhost) and apps with custom domains:
//
//	shop   www.shop.test (its certificate: *.shop.test)
//	wild   *.wild.test   (its certificate: *.wild.test)
//	exact  api.wild.test (no certificate: an exact name beats a wildcard)
//	other  x.shop.test   (no certificate: shop's must not be served for it)
type tlsGrid struct {
	*harness
	ca       *localca.CA
	tlsAddr  string
	backends map[string]*backend
}

func startTLSGrid(t *testing.T) *tlsGrid {
	t.Helper()
	srv := storetest.NewServer(t)
	admin := srv.As(t, serverRole)
	now := time.Now()
	ca, err := localca.Ensure(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(names ...string) grid.Cert {
		c, k, err := ca.Issue(names, now)
		if err != nil {
			t.Fatal(err)
		}
		return grid.Cert{ID: store.NewID(), Name: names[0], Chain: string(c), Key: string(k), CreatedAt: now}
	}
	if err := admin.PutDefaultCert(bg, issue("*.localhost", "localhost", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	g := &tlsGrid{ca: ca, backends: map[string]*backend{}}
	domains := map[string][]string{"shop": {"www.shop.test"}, "wild": {"*.wild.test"}, "exact": {"api.wild.test"}, "other": {"x.shop.test"}}
	for app, hosts := range domains {
		for _, host := range hosts {
			if _, err := admin.CreateDomain(bg, grid.Domain{ID: store.NewID(), Hostname: host, App: app}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for app, name := range map[string]string{"shop": "*.shop.test", "wild": "*.wild.test"} {
		c := issue(name)
		c.App, c.Name = app, "cert-"+app
		if err := admin.CreateCert(bg, c); err != nil {
			t.Fatal(err)
		}
	}
	g.harness = startRouterOn(t, admin, srv.As(t, routerRole), nil, nil)
	for app := range domains {
		b := newBackend(t, app, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, app+" "+r.Header.Get("X-Forwarded-Proto")+" "+r.Header.Get("X-Forwarded-Port")+" "+r.Proto)
		})
		g.backends[app] = b
		g.app(app, 1)
		g.dyno(app, 1, grid.DynoUp, b.addr())
		g.await(app, endpointsAre(1))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); g.r.ServeTLS(ctx, ln) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	g.tlsAddr = ln.Addr().String()
	return g
}

// handshake connects to the TLS listener with serverName and returns the
// connection state, without verifying the certificate.
func (g *tlsGrid) handshake(serverName string, protos ...string) tls.ConnectionState {
	g.t.Helper()
	conn, err := tls.Dial("tcp", g.tlsAddr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: protos})
	if err != nil {
		g.t.Fatalf("handshake for %q: %v", serverName, err)
	}
	defer conn.Close()
	return conn.ConnectionState()
}

// client is an HTTPS client that trusts the grid's CA and sends every
// request to the TLS listener, with HTTP/2 unless h1.
func (g *tlsGrid) client(h1 bool) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(g.ca.Cert)
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: !h1,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", g.tlsAddr)
		},
	}
	if h1 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	g.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestTLSPicksCertificateByServerName(t *testing.T) {
	t.Parallel()
	g := startTLSGrid(t)
	for _, tc := range []struct {
		serverName string
		want       string // the served leaf's first DNS name
	}{
		{"www.shop.test", "*.shop.test"},
		{"WWW.Shop.Test", "*.shop.test"},
		{"a.wild.test", "*.wild.test"},
		{"hello.localhost", "*.localhost"},
		{"x.shop.test", "*.localhost"},     // other's domain: never shop's certificate
		{"api.wild.test", "*.localhost"},   // exact's domain, which has no certificate
		{"unknown.example", "*.localhost"}, // no such domain
		{"", "*.localhost"},                // no server name at all
	} {
		t.Run(tc.serverName, func(t *testing.T) {
			st := g.handshake(tc.serverName)
			if got := st.PeerCertificates[0].DNSNames[0]; got != tc.want {
				t.Errorf("served %s, want %s", got, tc.want)
			}
		})
	}
}

func TestHTTPSRoutesByDomainOverHTTP2(t *testing.T) {
	t.Parallel()
	g := startTLSGrid(t)
	_, port, _ := net.SplitHostPort(g.tlsAddr)
	c := g.client(false)
	for url, want := range map[string]string{
		"https://www.shop.test/":   "shop",
		"https://b.wild.test/":     "wild",
		"https://hello.localhost/": "",
	} {
		res, err := c.Get(url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.Proto != "HTTP/2.0" || res.TLS.NegotiatedProtocol != "h2" {
			t.Errorf("%s: %s over %q, want HTTP/2", url, res.Proto, res.TLS.NegotiatedProtocol)
		}
		if want == "" {
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d, want 404 (no such app)", url, res.StatusCode)
			}
			continue
		}
		// The dyno gets HTTP/1.1, told the client came over https to this port.
		if got := string(body); got != want+" https "+port+" HTTP/1.1" {
			t.Errorf("%s: dyno said %q", url, got)
		}
	}
}

func TestHTTPSOverHTTP1AndUpgrades(t *testing.T) {
	t.Parallel()
	g := startTLSGrid(t)
	res, err := g.client(true).Get("https://www.shop.test/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Proto != "HTTP/1.1" {
		t.Errorf("proto %s, want HTTP/1.1", res.Proto)
	}

	b := echoBackend(t)
	g.dyno("wild", 1, grid.DynoUp, b.addr())
	g.await("wild", func(rt *route) bool { return len(rt.endpoints) == 1 && rt.endpoints[0].addr == b.addr() })
	roots := x509.NewCertPool()
	roots.AddCert(g.ca.Cert)
	conn, err := tls.Dial("tcp", g.tlsAddr, &tls.Config{ServerName: "ws.wild.test", RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /socket HTTP/1.1\r\nHost: ws.wild.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	up, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", up.StatusCode)
	}
	echo(t, conn, br, "ping.")
}

func TestRoutesByCustomDomain(t *testing.T) {
	t.Parallel()
	g := startTLSGrid(t)
	for host, want := range map[string]string{
		"www.shop.test":      "shop",
		"WWW.SHOP.TEST:8080": "shop",
		"www.shop.test.":     "shop",
		"a.wild.test":        "wild",
		"api.wild.test":      "exact", // exact match first
		"exact.localhost":    "exact", // <app>.<domain> still works
		"x.shop.test":        "other",
		"a.b.wild.test":      "", // a wildcard covers one label
		"wild.test":          "",
		"shop.test":          "",
	} {
		req := mustRequest(t, "GET", "http://router/", nil)
		req.Host = host
		res, body := g.do(req)
		switch {
		case want == "" && res.StatusCode != http.StatusNotFound:
			t.Errorf("%s: %d %q, want 404", host, res.StatusCode, body)
		case want != "" && !strings.HasPrefix(body, want+" http "):
			t.Errorf("%s: %d %q, want app %s", host, res.StatusCode, body, want)
		}
	}

	// A domain added or removed later is routed or dropped without a restart.
	if _, err := g.st.CreateDomain(bg, grid.Domain{ID: store.NewID(), Hostname: "shop.test", App: "shop"}); err != nil {
		t.Fatal(err)
	}
	g.awaitHost("shop.test", "shop")
	if err := g.st.DeleteDomain(bg, "www.shop.test"); err != nil {
		t.Fatal(err)
	}
	g.awaitHost("www.shop.test", "")
}

// awaitHost waits until the host table maps host to app ("" for none).
// The host table has no change signal of its own, so this polls, with a
// deadline.
func (g *tlsGrid) awaitHost(host, app string) {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := g.r.hosts.Load().app(host)
		if got == app {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("host %s routes to %q, want %q", host, got, app)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
