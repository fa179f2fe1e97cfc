package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/router"
	"github.com/dynogrid/grid/internal/store"
)

// routerConfig is what a router reads from flags.
type routerConfig struct {
	join   joinFlags
	data   string
	listen string
	tls    string // HTTPS listen address; "" for none
	domain string
}

func routerFlags(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
	var c routerConfig
	c.join.register(fs, "router")
	fs.StringVar(&c.data, "data", defaultDataDir(), "data directory (the router's id)")
	fs.StringVar(&c.listen, "listen", "0.0.0.0:8080", "listen address for app traffic")
	fs.StringVar(&c.tls, "listen-tls", "0.0.0.0:8443", "listen address for app traffic over HTTPS (HTTP/2 and HTTP/1.1); empty for none")
	fs.StringVar(&c.domain, "domain", "localhost", "apps are served at <app>.<domain>")
	return func(ctx context.Context, logger *slog.Logger) error {
		st, err := c.join.open(ctx, store.RoleRouter, c.data, logger)
		if err != nil {
			return err
		}
		defer st.Close()
		ln, err := net.Listen("tcp", c.listen)
		if err != nil {
			return fmt.Errorf("router listen: %w", err)
		}
		tlsLn, err := listenTLS(c.tls)
		if err != nil {
			ln.Close()
			return err
		}
		fmt.Printf("grid: router       listening on %s for <app>.%s\n", ln.Addr(), c.domain)
		if tlsLn != nil {
			fmt.Printf("grid: router       listening on %s for HTTPS\n", tlsLn.Addr())
		}
		return runRouter(ctx, st, ln, tlsLn, c.domain, logger)
	}
}

// listenTLS listens for the router's HTTPS traffic; nil for addr "".
func listenTLS(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("router TLS listen: %w", err)
	}
	return ln, nil
}

// runRouter routes app traffic on ln, and over HTTPS on tlsLn unless it is
// nil, until ctx ends. Certificates come from the store: app certificates
// from the API, the default one from the server that leads.
func runRouter(ctx context.Context, st *store.Store, ln, tlsLn net.Listener, domain string, logger *slog.Logger) error {
	lg, err := logs.Open(ctx, st)
	if err != nil {
		return err
	}
	defer lg.Close()
	rt := router.New(router.Config{Store: st, Logs: lg, Domain: domain, Logger: logger.With("part", "router")})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rt.Run(gctx) })
	g.Go(func() error { return rt.Serve(gctx, ln) })
	if tlsLn != nil {
		g.Go(func() error { return rt.ServeTLS(gctx, tlsLn) })
	}
	return g.Wait()
}
