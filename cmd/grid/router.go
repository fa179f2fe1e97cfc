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
	domain string
}

func routerFlags(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
	var c routerConfig
	c.join.register(fs, "router")
	fs.StringVar(&c.data, "data", defaultDataDir(), "data directory (the router's id)")
	fs.StringVar(&c.listen, "listen", "0.0.0.0:8080", "listen address for app traffic")
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
		fmt.Printf("grid: router       listening on %s for <app>.%s\n", ln.Addr(), c.domain)
		return runRouter(ctx, st, ln, c.domain, logger)
	}
}

// runRouter routes app traffic on ln until ctx ends.
func runRouter(ctx context.Context, st *store.Store, ln net.Listener, domain string, logger *slog.Logger) error {
	lg, err := logs.Open(ctx, st)
	if err != nil {
		return err
	}
	defer lg.Close()
	rt := router.New(router.Config{Store: st, Logs: lg, Domain: domain, Logger: logger.With("part", "router")})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rt.Run(gctx) })
	g.Go(func() error { return rt.Serve(gctx, ln) })
	return g.Wait()
}
