package router

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// ServeTLS answers HTTPS on ln as Serve answers HTTP: the router
// terminates TLS (1.2 and up), speaks HTTP/2 or HTTP/1.1 with clients as
// ALPN settles (upgrades such as WebSockets come over HTTP/1.1), and
// talks HTTP/1.1 to dynos either way. The certificate is chosen by the
// client's server name (certificate).
func (r *Router) ServeTLS(ctx context.Context, ln net.Listener) error {
	return r.serve(ctx, ln, &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.certificate,
	})
}

var errNoCertificate = fmt.Errorf("router: no certificate for this name and no default certificate yet: %w", grid.ErrUnavailable)

// certificate picks the certificate for a handshake: for a custom domain
// of an app, the newest of the app's certificates that covers the name
// and is valid now (else the newest that covers it: an expired
// certificate tells the client more than the wrong one); for any other
// name, or none, the grid's default certificate. An app's certificate is
// never served for another app's names. A handshake that arrives before
// the first table waits for it, as requests do.
func (r *Router) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	select {
	case <-r.ready:
	default:
		select {
		case <-r.ready:
		case <-hello.Context().Done():
			return nil, hello.Context().Err()
		case <-time.After(readyWait):
		}
	}
	h := r.hosts.Load()
	name := normalHost(hello.ServerName)
	if app, ok := h.app(name); ok && name != "" {
		var covering *tls.Certificate
		now := r.cfg.Now()
		for _, c := range h.certs[app] {
			if c.Leaf.VerifyHostname(name) != nil {
				continue
			}
			if now.After(c.Leaf.NotBefore) && now.Before(c.Leaf.NotAfter) {
				return c, nil
			}
			if covering == nil {
				covering = c
			}
		}
		if covering != nil {
			return covering, nil
		}
	}
	if h.def == nil {
		return nil, errNoCertificate
	}
	return h.def, nil
}
