package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/dynogrid/grid/internal/store"
)

// upFlags is `grid up`: a server, a host agent and a router in one
// process on one machine, each connecting to the embedded NATS node with
// its own role's credentials, as they would across machines.
func upFlags(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
	var s serverConfig
	var h hostConfig
	var routerAddr string
	s.register(fs, "")
	h.register(fs)
	fs.StringVar(&routerAddr, "router", "0.0.0.0:8080", "listen address of the HTTP router")
	return func(ctx context.Context, logger *slog.Logger) error {
		if err := needRoot("grid up"); err != nil {
			return err
		}
		h.data, h.bootTimeout, h.addr = s.data, s.bootTimeout, "127.0.0.1"
		return up(ctx, s, h, routerAddr, logger)
	}
}

// up runs every role until ctx ends, then stops them in order: the front
// doors (API, router) and the manager first, then dynos gracefully, then
// NATS.
func up(ctx context.Context, s serverConfig, h hostConfig, routerAddr string, logger *slog.Logger) error {
	n, err := startNATS(s)
	if err != nil {
		return err
	}
	defer n.srv.Shutdown()
	sb, err := newSandboxes(h, logger)
	if err != nil {
		return err
	}
	defer sb.Close()
	apiLn, err := net.Listen("tcp", s.apiAddr)
	if err != nil {
		return fmt.Errorf("API listen: %w", err)
	}
	routerLn, err := net.Listen("tcp", routerAddr)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("router listen: %w", err)
	}
	_, s.routerPort, _ = net.SplitHostPort(routerLn.Addr().String())
	cp, err := newControlPlane(ctx, s, n, sb, apiLn, logger)
	if err != nil {
		return err
	}
	defer cp.close()
	hostID, err := stableID(s.data, "host")
	if err != nil {
		return err
	}
	hostSt, err := n.open(ctx, store.Role{Kind: store.RoleHost, ID: hostID}, logger)
	if err != nil {
		return err
	}
	defer hostSt.Close()
	routerID, err := stableID(s.data, "router")
	if err != nil {
		return err
	}
	routerSt, err := n.open(ctx, store.Role{Kind: store.RoleRouter, ID: routerID}, logger)
	if err != nil {
		return err
	}
	defer routerSt.Close()

	cp.print()
	fmt.Printf("grid: router       %s  (listening on %s)\n", cp.urls.web("<app>"), routerLn.Addr())

	// The host agent outlives the front doors, so dynos keep serving
	// while they close.
	hostCtx, stopHost := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHost()
	hostDone := make(chan error, 1)
	go func() { hostDone <- runHost(hostCtx, h, hostSt, sb, logger) }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cp.run(gctx) })
	g.Go(func() error { return runRouter(gctx, routerSt, routerLn, s.domain, logger) })
	err = g.Wait()
	logger.Info("stopping dynos")
	stopHost()
	if herr := <-hostDone; herr != nil && !errors.Is(herr, context.Canceled) {
		logger.Error("host agent", "err", herr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("grid stopped", "data", filepath.Clean(s.data))
	return nil
}
