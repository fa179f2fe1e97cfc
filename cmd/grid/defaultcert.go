package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/localca"
	"github.com/dynogrid/grid/internal/store"
)

// caDir is where a server keeps its local CA (localca): DATA/ca/ca.pem,
// which users trust, and DATA/ca/ca-key.pem (0600).
func caDir(data string) string { return filepath.Join(data, "ca") }

// defaultCert keeps the routers' default certificate in the store
// current: signed by this server's local CA, for *.<domain>, <domain>,
// localhost, 127.0.0.1, ::1 and the API's host. When <domain> is a single
// label (as "localhost") the certificate also names every app's
// <app>.<domain>, since TLS clients (OpenSSL, so curl and git; browsers)
// do not match a wildcard directly under a top-level name; it is then
// reissued when an app is created. It runs on the server holding the
// manager lease, so one server at a time writes it.
type defaultCert struct {
	st      *store.Store
	ca      *localca.CA
	domain  string
	apiHost string // host of the API's public address
	logger  *slog.Logger
}

// recheck is how often the certificate's remaining validity is checked
// when nothing else happens.
const recheck = 12 * time.Hour

// run keeps the certificate current until ctx ends.
func (d *defaultCert) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := d.follow(ctx); err != nil && ctx.Err() == nil {
			d.logger.Warn("keeping the default certificate current", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}
}

// follow watches the apps and reissues the certificate when it lacks a
// name or nears its end.
func (d *defaultCert) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := d.st.WatchAppMeta(ctx)
	if err != nil {
		return err
	}
	apps, synced := map[string]bool{}, false
	tick := time.NewTicker(recheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case ev, ok := <-w:
			if !ok {
				return errors.New("app watch ended")
			}
			switch {
			case ev.Synced:
				synced = true
			case ev.Deleted:
				delete(apps, ev.Key)
				continue // a name too many does no harm; it goes at the next reissue
			case apps[ev.Key]:
				continue
			default:
				apps[ev.Key] = true
			}
		}
		if synced {
			if err := d.ensure(ctx, apps); err != nil {
				return err
			}
		}
	}
}

// ensure issues and stores a new certificate unless the stored one is
// this CA's, names everything and has time left.
func (d *defaultCert) ensure(ctx context.Context, apps map[string]bool) error {
	names := d.names(apps)
	now := time.Now()
	cur, err := d.st.DefaultCert(ctx)
	if err != nil && !errors.Is(err, grid.ErrNotFound) {
		return err
	}
	if err == nil && d.ca.Fresh([]byte(cur.Chain), names, now) {
		return nil
	}
	crt, key, err := d.ca.Issue(names, now)
	if err != nil {
		return err
	}
	d.logger.Info("issued the default certificate", "names", len(names))
	return d.st.PutDefaultCert(ctx, grid.Cert{
		ID: store.NewID(), Name: "default", Chain: string(crt), Key: string(key), CreatedAt: now.UTC(), UpdatedAt: now.UTC(),
	})
}

func (d *defaultCert) names(apps map[string]bool) []string {
	extra := []string{d.apiHost}
	if !strings.Contains(d.domain, ".") {
		for app := range apps {
			extra = append(extra, app+"."+d.domain)
		}
	}
	slices.Sort(extra)
	var names []string
	for _, n := range append([]string{"*." + d.domain, d.domain, "localhost", "127.0.0.1", "::1"}, extra...) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// apiHostOf is the host part of the API's public address.
func apiHostOf(addr string) string {
	h, _, err := net.SplitHostPort(publicHostPort(addr))
	if err != nil {
		return ""
	}
	return strings.Trim(h, "[]")
}
