package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

// DomainKey is the domains bucket key of a normalized hostname. KV keys
// cannot hold '*', so a wildcard's "*" becomes "_", which no hostname
// label may contain.
func DomainKey(host string) string {
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		return "_." + rest
	}
	return host
}

// HostnameOfKey is the inverse of DomainKey.
func HostnameOfKey(key string) string {
	if rest, ok := strings.CutPrefix(key, "_."); ok {
		return "*." + rest
	}
	return key
}

// CreateDomain claims d.Hostname for d.App. If another record holds the
// hostname, it fails with ErrConflict and returns that record, so the
// caller can say which app has it.
func (s *Store) CreateDomain(ctx context.Context, d grid.Domain) (holder grid.Domain, err error) {
	key := DomainKey(d.Hostname)
	_, err = s.domains.create(ctx, key, d)
	if !errors.Is(err, grid.ErrConflict) {
		return grid.Domain{}, err
	}
	holder, _, gerr := s.domains.get(ctx, key)
	if gerr != nil && !errors.Is(gerr, grid.ErrNotFound) {
		return grid.Domain{}, gerr
	}
	return holder, fmt.Errorf("hostname %s is taken: %w", d.Hostname, grid.ErrConflict)
}

// Domain returns the record of a normalized hostname.
func (s *Store) Domain(ctx context.Context, host string) (grid.Domain, error) {
	d, _, err := s.domains.get(ctx, DomainKey(host))
	return d, err
}

// Domains lists an app's custom domains by hostname; app "" lists every
// app's.
func (s *Store) Domains(ctx context.Context, app string) ([]grid.Domain, error) {
	all, err := s.domains.list(ctx, ">")
	if err != nil {
		return nil, err
	}
	var out []grid.Domain
	for _, d := range all {
		if app == "" || d.App == app {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hostname < out[j].Hostname })
	return out, nil
}

// DeleteDomain releases a hostname. Deleting one that is not there is
// not an error.
func (s *Store) DeleteDomain(ctx context.Context, host string) error {
	return s.domains.delete(ctx, DomainKey(host))
}

// WatchDomains streams changes to the domain table. Keys are DomainKeys;
// HostnameOfKey turns a deleted one back into its hostname.
func (s *Store) WatchDomains(ctx context.Context) (<-chan Event[grid.Domain], error) {
	return s.domains.watch(ctx, ">")
}

// deleteAppDomains releases every hostname app holds.
func (s *Store) deleteAppDomains(ctx context.Context, app string) error {
	ds, err := s.Domains(ctx, app)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := s.DeleteDomain(ctx, d.Hostname); err != nil {
			return err
		}
	}
	return nil
}
