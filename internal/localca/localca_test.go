package localca

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestEnsureCreatesOnceAndReloads(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ca")
	now := time.Now()
	ca, err := Ensure(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA {
		t.Error("root is not a CA")
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key file mode %v, want 0600", perm)
	}
	again, err := Ensure(dir, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(ca.Cert) {
		t.Error("second Ensure made a new root instead of loading the first")
	}
}

func TestEnsureRefusesHalfACA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Ensure(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CertFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir, time.Now()); err == nil {
		t.Fatal("Ensure replaced a CA whose certificate was missing")
	}
}

func TestIssueVerifies(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca, err := Ensure(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"*.apps.test", "apps.test", "localhost", "127.0.0.1"}
	certPEM, keyPEM, err := ca.Issue(names, now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"hello.apps.test", true},
		{"apps.test", true},
		{"localhost", true},
		{"127.0.0.1", true},
		{"a.b.apps.test", false},
		{"example.com", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			_, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: tc.host, Roots: roots, CurrentTime: now})
			if (err == nil) != tc.ok {
				t.Errorf("verify %s: %v, want ok=%v", tc.host, err, tc.ok)
			}
		})
	}
}

func TestFresh(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca, err := Ensure(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Ensure(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.Issue([]string{"*.localhost", "localhost", "hello.localhost"}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		ca    *CA
		names []string
		at    time.Time
		want  bool
	}{
		{"covered", ca, []string{"localhost", "hello.localhost"}, now, true},
		{"new app name", ca, []string{"localhost", "world.localhost"}, now, false},
		{"near expiry", ca, []string{"localhost"}, now.Add(LeafValidity - 24*time.Hour), false},
		{"another CA", other, []string{"localhost"}, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ca.Fresh(certPEM, tc.names, tc.at); got != tc.want {
				t.Errorf("Fresh = %v, want %v", got, tc.want)
			}
		})
	}
}
