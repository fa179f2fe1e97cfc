package store_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/store"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestClusterKeepsServingWithOneServerDown starts three servers as one
// JetStream cluster with every bucket on three replicas, shuts one down,
// and checks that reads and compare-and-set writes still work through the
// other two and that the data written before is all there.
func TestClusterKeepsServingWithOneServerDown(t *testing.T) {
	secret := []byte("cluster-test")
	cluster := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	var srvs []*store.Server
	for i := range cluster {
		var peers []string
		for j := range cluster {
			if j != i {
				peers = append(peers, cluster[j])
			}
		}
		s, err := store.StartServer(store.ServerConfig{Dir: t.TempDir(), Secret: secret, Name: fmt.Sprint("s", i), Cluster: cluster[i], Peers: peers})
		if err != nil {
			t.Fatal(err)
		}
		srvs = append(srvs, s)
	}
	defer func() {
		for _, s := range srvs[1:] {
			s.Shutdown()
		}
	}()
	open := func(i int) *store.Store {
		r := store.Role{Kind: store.RoleServer, ID: fmt.Sprint("c", i)}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := store.Open(ctx, store.Config{URL: srvs[i].ClientURL(), Role: r, Password: r.Password(secret), Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	}
	s0 := open(0)
	ctx := context.Background()
	if err := s0.CreateApp(ctx, grid.App{ID: "a1", Name: "hello"}); err != nil {
		t.Fatal(err)
	}
	s1 := open(1)
	srvs[0].Shutdown()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	var err error
	for {
		_, err = s1.CommitRelease(cctx, "hello", func(cur grid.App) (grid.Release, error) {
			return grid.Release{Description: "after the loss"}, nil
		})
		if err == nil || cctx.Err() != nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("writing with one of three servers down: %v", err)
	}
	t.Logf("first write after losing a server took %v", time.Since(start))
	a, err := s1.App(ctx, "hello")
	if err != nil || a.Release.Description != "after the loss" {
		t.Fatalf("read back: %+v %v", a, err)
	}
}
