package router

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/localca"
	"github.com/dynogrid/grid/internal/store"
)

// certPicker is a router with a host table from s, ready at once.
func certPicker(t *testing.T, s *hostState) *Router {
	t.Helper()
	r := New(Config{Domain: "localhost"})
	r.readyOnce.Do(func() { close(r.ready) })
	r.publishHosts(s)
	return r
}

func TestCertificatePrefersValidThenNewest(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca, err := localca.Ensure(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	s := newHostState()
	s.applyDomain(store.Event[grid.Domain]{Key: "www.shop.test", Value: grid.Domain{Hostname: "www.shop.test", App: "shop"}})
	var bad []string
	add := func(key string, issued, created time.Time) {
		c, k, err := ca.Issue([]string{"www.shop.test"}, issued)
		if err != nil {
			t.Fatal(err)
		}
		s.applyCert(store.Event[grid.Cert]{Key: key, Value: grid.Cert{App: "shop", Name: key, Chain: string(c), Key: string(k), CreatedAt: created}},
			func(app, name string, err error) { bad = append(bad, name) })
	}
	pick := func() string {
		t.Helper()
		c, err := certPicker(t, s).certificate(&tls.ClientHelloInfo{ServerName: "www.shop.test"})
		if err != nil {
			t.Fatal(err)
		}
		for key, pc := range s.certs {
			if pc.cert == c {
				return key
			}
		}
		return "?"
	}
	add("shop.old-valid", now, now.Add(-time.Hour))
	add("shop.new-expired", now.Add(-2*localca.LeafValidity), now)
	if got := pick(); got != "shop.old-valid" {
		t.Errorf("picked %s, want the valid certificate over the newer expired one", got)
	}
	add("shop.newest-valid", now, now.Add(time.Minute))
	if got := pick(); got != "shop.newest-valid" {
		t.Errorf("picked %s, want the newest valid certificate", got)
	}
	s.applyCert(store.Event[grid.Cert]{Key: "shop.newest-valid", Deleted: true}, nil)
	s.applyCert(store.Event[grid.Cert]{Key: "shop.old-valid", Deleted: true}, nil)
	if got := pick(); got != "shop.new-expired" {
		t.Errorf("picked %s, want the expired certificate that covers the name over none", got)
	}

	s.applyCert(store.Event[grid.Cert]{Key: "shop.broken", Value: grid.Cert{App: "shop", Name: "broken", Chain: "junk", Key: "junk"}},
		func(app, name string, err error) { bad = append(bad, name) })
	if len(bad) != 1 || bad[0] != "broken" {
		t.Errorf("reported bad certificates %v", bad)
	}
	if _, ok := s.certs["shop.broken"]; ok {
		t.Error("a certificate that does not parse is served")
	}
}

func TestNoCertificateWithoutDefault(t *testing.T) {
	t.Parallel()
	r := certPicker(t, newHostState())
	if _, err := r.certificate(&tls.ClientHelloInfo{ServerName: "hello.localhost"}); err == nil {
		t.Fatal("a handshake got a certificate before any was stored")
	}
}
