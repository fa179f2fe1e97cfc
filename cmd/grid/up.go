package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/store"
)

// upFlags is `grid up`: a server, a host agent and a router in one
// process on one machine, each connecting to the embedded NATS node with
// its own role's credentials, as they would across machines. With
// --hosts N, N hosts run as `grid host` processes in network namespaces
// (the netns provider) instead of the host agent in this process.
func upFlags(fs *flag.FlagSet) func(context.Context, *slog.Logger) error {
	var s serverConfig
	var h hostConfig
	var routerAddr, routerTLS, addonsAddr string
	var hosts int
	s.register(fs, "")
	h.register(fs)
	fs.StringVar(&routerAddr, "router", "0.0.0.0:8080", "listen address of the HTTP router")
	fs.StringVar(&routerTLS, "router-tls", "0.0.0.0:8443", "listen address of the router's HTTPS (HTTP/2 and HTTP/1.1); empty for none")
	fs.StringVar(&addonsAddr, "addons-listen", "10.229.0.1", "address on this machine (put on lo) where the Postgres and Redis add-on servers listen for dynos; empty for no add-ons")
	fs.IntVar(&hosts, "hosts", 0, "run this many hosts in network namespaces (netns provider) instead of one in this process; NATS then listens on all addresses at the --nats port")
	return func(ctx context.Context, logger *slog.Logger) error {
		if err := needRoot("grid up"); err != nil {
			return err
		}
		if hosts < 0 {
			return fmt.Errorf("--hosts %d: want 1 or more, or 0 for the host in this process", hosts)
		}
		h.data, h.bootTimeout, h.addr = s.data, s.bootTimeout, "127.0.0.1"
		if hosts > 0 {
			s.natsAddr = wildcardListen(s.natsAddr)
		}
		var addons netip.Addr
		if addonsAddr != "" {
			var err error
			if addons, err = netip.ParseAddr(addonsAddr); err != nil || !addons.Is4() {
				return fmt.Errorf("--addons-listen %q: want an IPv4 address", addonsAddr)
			}
		}
		s.addonsEnv()
		return up(ctx, s, h, routerAddr, routerTLS, hosts, addonsConfig{listen: addons, postgresAdmin: s.postgresAdmin, redisAdmin: s.redisAdmin}, logger)
	}
}

// wildcardListen is addr on all addresses: netns hosts reach NATS on the
// fabric, clients in this process on loopback.
func wildcardListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		port = "0"
	}
	return net.JoinHostPort("0.0.0.0", port)
}

// up runs every role until ctx ends, then stops them in order: the front
// doors (API, router) and the manager first, then dynos gracefully (netns
// hosts are released), then NATS.
func up(ctx context.Context, s serverConfig, h hostConfig, routerAddr, routerTLS string, hosts int, addonsCfg addonsConfig, logger *slog.Logger) error {
	n, err := startNATS(s)
	if err != nil {
		return err
	}
	defer n.srv.Shutdown()
	addons := startAddons(ctx, s.data, addonsCfg, logger.With("part", "addons"))
	defer addons.stop()
	s.addons, h.services = addons.backends, addons.services
	s.gridNets = []netip.Prefix{mustPrefix(h.subnet)}
	var hp *hostProvider
	if hosts > 0 {
		if hp, err = openNetNS(ctx, n, netnsHosts{s.data, h.stopGrace, s.bootTimeout, addons.services}, logger.With("part", "provider")); err != nil {
			return err
		}
		defer hp.close()
		hp.minHosts = hosts
	}
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
	tlsLn, err := listenTLS(routerTLS)
	if err != nil {
		apiLn.Close()
		routerLn.Close()
		return err
	}
	_, s.routerPort, _ = net.SplitHostPort(routerLn.Addr().String())
	cp, err := newControlPlane(ctx, s, n, sb, apiLn, hp, logger)
	if err != nil {
		return err
	}
	defer cp.close()
	defer addons.watchStorage(ctx, cp.st, cp.lg, storageCheckEvery, logger.With("part", "addons"))()
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
	if tlsLn != nil {
		_, tlsPort, _ := net.SplitHostPort(tlsLn.Addr().String())
		fmt.Printf("grid: router       https://<app>.%s:%s/  (listening on %s)\n", s.domain, tlsPort, tlsLn.Addr())
	}

	// Hosts outlive the front doors, so dynos keep serving while they
	// close.
	stopHosts, err := startUpHosts(ctx, n, h, sb, hp, hosts, logger)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return cp.run(gctx) })
	g.Go(func() error { return runRouter(gctx, routerSt, routerLn, tlsLn, s.domain, logger) })
	err = g.Wait()
	logger.Info("stopping dynos")
	stopHosts()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("grid stopped", "data", filepath.Clean(s.data))
	return nil
}

// startUpHosts starts the hosts of `grid up`: n netns hosts through hp,
// or the host agent in this process (n = 0). stop stops them gracefully.
func startUpHosts(ctx context.Context, n natsNode, h hostConfig, sb *sandbox.Manager, hp *hostProvider, hosts int, logger *slog.Logger) (stop func(), err error) {
	if hosts > 0 {
		release := func() {
			rctx, cancel := context.WithTimeout(context.Background(), h.stopGrace+time.Minute)
			defer cancel()
			hp.releaseAll(rctx)
		}
		if err := hp.startHosts(ctx, hosts); err != nil {
			release()
			return nil, err
		}
		return release, nil
	}
	hostID, err := stableID(h.data, "host")
	if err != nil {
		return nil, err
	}
	hostSt, err := n.open(ctx, store.Role{Kind: store.RoleHost, ID: hostID}, logger)
	if err != nil {
		return nil, err
	}
	hostCtx, stopHost := context.WithCancel(context.WithoutCancel(ctx))
	hostDone := make(chan error, 1)
	go func() { hostDone <- runHost(hostCtx, h, hostSt, sb, logger) }()
	return func() {
		stopHost()
		if err := <-hostDone; err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("host agent", "err", err)
		}
		hostSt.Close()
	}, nil
}
