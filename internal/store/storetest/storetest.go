// Package storetest starts a real embedded NATS JetStream server for tests.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/store"
)

// Start starts an embedded server in a temporary directory and opens a
// store on it, both cleaned up with the test. For tests of any package
// that needs real NATS.
func Start(t testing.TB) *store.Store {
	t.Helper()
	srv, err := store.StartServer(store.ServerConfig{Dir: t.TempDir(), Token: "test-token"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, store.Config{URL: srv.ClientURL(), Token: "test-token", Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
