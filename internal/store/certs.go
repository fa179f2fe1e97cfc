package store

import (
	"context"
	"sort"

	"github.com/dynogrid/grid/internal/grid"
)

// The certs bucket holds private keys: only servers and routers may read
// it (roles.go). Keys are "<app>.<cert name>", and defaultCertKey for the
// grid's own certificate (a single token, so no app's "<app>.*" filter
// matches it).
const defaultCertKey = "_default"

func certKey(app, name string) string { return app + "." + name }

// CreateCert stores a new certificate of an app. ErrConflict if the app
// already has one of that name.
func (s *Store) CreateCert(ctx context.Context, c grid.Cert) error {
	_, err := s.certs.create(ctx, certKey(c.App, c.Name), c)
	return err
}

// Cert returns an app's certificate by name.
func (s *Store) Cert(ctx context.Context, app, name string) (grid.Cert, error) {
	c, _, err := s.certs.get(ctx, certKey(app, name))
	return c, err
}

// Certs lists an app's certificates, oldest first.
func (s *Store) Certs(ctx context.Context, app string) ([]grid.Cert, error) {
	cs, err := s.certs.list(ctx, app+".*")
	sort.Slice(cs, func(i, j int) bool { return cs[i].CreatedAt.Before(cs[j].CreatedAt) })
	return cs, err
}

// DeleteCert removes an app's certificate.
func (s *Store) DeleteCert(ctx context.Context, app, name string) error {
	return s.certs.delete(ctx, certKey(app, name))
}

// DefaultCert is the certificate routers serve when no app certificate
// matches a TLS client's server name. ErrNotFound before a server put one.
func (s *Store) DefaultCert(ctx context.Context) (grid.Cert, error) {
	c, _, err := s.certs.get(ctx, defaultCertKey)
	return c, err
}

// PutDefaultCert replaces the default certificate.
func (s *Store) PutDefaultCert(ctx context.Context, c grid.Cert) error {
	c.App = ""
	_, err := s.certs.put(ctx, defaultCertKey, c)
	return err
}

// IsDefaultCertKey reports whether a certs watch key is the default
// certificate's.
func IsDefaultCertKey(key string) bool { return key == defaultCertKey }

// WatchCerts streams changes to every certificate, the default one
// included. Values carry private keys: for routers only.
func (s *Store) WatchCerts(ctx context.Context) (<-chan Event[grid.Cert], error) {
	return s.certs.watch(ctx, ">")
}

// deleteAppCerts removes every certificate of app.
func (s *Store) deleteAppCerts(ctx context.Context, app string) error {
	cs, err := s.Certs(ctx, app)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := s.DeleteCert(ctx, app, c.Name); err != nil {
			return err
		}
	}
	return nil
}
