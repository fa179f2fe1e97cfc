package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/api"
	"github.com/dynogrid/grid/internal/localca"
)

// The API and git also answer over HTTPS (--api-tls), on one origin, with
// a certificate from the server's local CA: the Heroku CLI sends its token
// only to https://localhost or 127.0.0.1, builds git remotes as
// https://<its host>/<app>.git, and its `run` needs TLS too. HTTP/1.1
// only: one-off dynos attach through an HTTP upgrade, which HTTP/2 lacks.

// apiCert issues and renews the API's certificate.
type apiCert struct {
	ca    *localca.CA
	names []string
	mu    sync.Mutex
	pem   []byte
	cert  *tls.Certificate
}

// newAPICert covers localhost, the loopback addresses, this machine's
// name and the API's public host.
func newAPICert(ca *localca.CA, apiHost string) *apiCert {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	if apiHost != "" && !slices.Contains(names, apiHost) {
		names = append(names, apiHost)
	}
	return &apiCert{ca: ca, names: names}
}

// get is tls.Config.GetCertificate: the current certificate, reissued
// once it is no longer fresh.
func (c *apiCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.cert != nil && c.ca.Fresh(c.pem, c.names, now) {
		return c.cert, nil
	}
	certPEM, keyPEM, err := c.ca.Issue(c.names, now)
	if err != nil {
		return nil, fmt.Errorf("API certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("API certificate: %w", err)
	}
	c.pem, c.cert = certPEM, &cert
	return c.cert, nil
}

// listenAPITLS listens on addr ("" for none) for the API's HTTPS.
func listenAPITLS(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("API TLS listen: %w", err)
	}
	return ln, nil
}

// config is the API's TLS configuration.
func (c *apiCert) config() *tls.Config {
	return &tls.Config{GetCertificate: c.get, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
}

// rendezvousBase is where the Heroku CLI attaches to one-off dynos: the
// API's TLS port; "" without one.
func (cp *controlPlane) rendezvousBase() string {
	if cp.apiTLS == nil {
		return ""
	}
	return "rendezvous://" + publicHostPort(cp.apiTLS.Addr().String())
}

// tlsMux is the API's TLS port: each connection's TLS is set up, then a
// rendezvous (its first bytes api.RendezvousPrefix) goes to rendezvous
// and anything else, HTTP, to Accept. Handshakes run in their own
// goroutines, so a slow client holds up no other.
type tlsMux struct {
	ln         net.Listener
	cfg        *tls.Config
	rendezvous func(net.Conn, *bufio.Reader)
	conns      chan net.Conn
	done       chan struct{}
	once       sync.Once
}

func newTLSMux(ln net.Listener, cfg *tls.Config, rendezvous func(net.Conn, *bufio.Reader)) *tlsMux {
	m := &tlsMux{ln: ln, cfg: cfg, rendezvous: rendezvous, conns: make(chan net.Conn), done: make(chan struct{})}
	go m.run()
	return m
}

func (m *tlsMux) run() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			m.Close()
			return
		}
		go m.classify(c)
	}
}

// handshakeTimeout bounds a connection's TLS handshake and first bytes.
const handshakeTimeout = 10 * time.Second

func (m *tlsMux) classify(c net.Conn) {
	tc := tls.Server(c, m.cfg)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	in := bufio.NewReader(tc)
	head, err := in.Peek(len(api.RendezvousPrefix))
	_ = tc.SetDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	if string(head) == api.RendezvousPrefix {
		m.rendezvous(tc, in)
		return
	}
	select {
	case m.conns <- &peekedConn{Conn: tc, in: in}:
	case <-m.done:
		c.Close()
	}
}

func (m *tlsMux) Accept() (net.Conn, error) {
	select {
	case c := <-m.conns:
		return c, nil
	case <-m.done:
		return nil, net.ErrClosed
	}
}

func (m *tlsMux) Close() error {
	m.once.Do(func() { close(m.done) })
	return m.ln.Close()
}

func (m *tlsMux) Addr() net.Addr { return m.ln.Addr() }

// peekedConn is a connection whose first bytes sit in in.
type peekedConn struct {
	net.Conn
	in *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.in.Read(p) }
