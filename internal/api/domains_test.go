package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/localca"
	"github.com/dynogrid/grid/internal/schema"
)

func TestDomains(t *testing.T) {
	ta := startAPI(t)
	a := ta.createApp("hello")
	ta.createApp("other")

	var d schema.Domain
	ta.do("POST", "/apps/hello/domains", map[string]any{"hostname": "WWW.Example.com.", "sni_endpoint": nil}).want(t, http.StatusCreated, &d)
	if d.Hostname != "www.example.com" || d.Kind != "custom" || d.Status != "succeeded" || d.CNAME == nil || *d.CNAME != "hello.grid.test" || d.App.Name != "hello" || d.ID == "" {
		t.Errorf("created %+v", d)
	}
	ta.do("POST", "/apps/hello/domains", schema.DomainCreate{Hostname: "*.example.org"}).want(t, http.StatusCreated, nil)

	var ds []schema.Domain
	ta.do("GET", "/apps/hello/domains", nil, "Range", "id ..; max=1000;").want(t, http.StatusOK, &ds)
	var got []string
	for _, d := range ds {
		got = append(got, d.Kind+" "+d.Hostname)
		if d.Kind == "heroku" && (d.App.ID != a.ID || d.CNAME != nil) {
			t.Errorf("own domain %+v", d)
		}
	}
	slices.Sort(got)
	if strings.Join(got, ",") != "custom *.example.org,custom www.example.com,heroku hello.grid.test" {
		t.Errorf("listed %v", got)
	}

	var byID, byName schema.Domain
	ta.do("GET", "/apps/hello/domains/"+d.ID, nil).want(t, http.StatusOK, &byID)
	ta.do("GET", "/apps/hello/domains/www.example.com", nil).want(t, http.StatusOK, &byName)
	if byID.ID != d.ID || byName.ID != d.ID {
		t.Errorf("get by id %+v, by name %+v", byID, byName)
	}
	ta.do("GET", "/apps/other/domains/www.example.com", nil).wantError(t, http.StatusNotFound, "not_found", "domain")

	for name, tc := range map[string]struct{ app, host, msg string }{
		"same app":        {"hello", "www.example.com", "already added to this app"},
		"other app":       {"other", "www.example.com", "already in use by app hello"},
		"grid domain":     {"other", "hello.grid.test", "grid's own domain"},
		"grid wildcard":   {"other", "*.grid.test", "grid's own domain"},
		"bad label":       {"other", "bad_name.example.com", "only letters, digits"},
		"no tld":          {"other", "localhost", "top-level domain"},
		"ip":              {"other", "10.0.0.1", "IP address"},
		"wildcard on tld": {"other", "*.com", "wildcard over a top-level domain"},
		"inner wildcard":  {"other", "a.*.example.com", "wildcard only as its whole first label"},
		"long label":      {"other", strings.Repeat("a", 64) + ".example.com", "longer than 63"},
		"long name":       {"other", strings.Repeat("abcdefghi.", 26) + "com", "longer than 253"},
	} {
		t.Run(name, func(t *testing.T) {
			ta.do("POST", "/apps/"+tc.app+"/domains", schema.DomainCreate{Hostname: tc.host}).wantError(t, http.StatusUnprocessableEntity, "invalid_params", tc.msg)
		})
	}

	ta.do("DELETE", "/apps/hello/domains/hello.grid.test", nil).wantError(t, http.StatusUnprocessableEntity, "invalid_params", "own hostname")
	ta.do("DELETE", "/apps/hello/domains/www.example.com", nil).want(t, http.StatusOK, nil)
	ta.do("GET", "/apps/hello/domains/www.example.com", nil).wantError(t, http.StatusNotFound, "not_found", "domain")
	ta.do("POST", "/apps/other/domains", schema.DomainCreate{Hostname: "www.example.com"}).want(t, http.StatusCreated, nil)

	// Deleting the app releases its hostnames.
	ta.do("DELETE", "/apps/hello", nil).want(t, http.StatusOK, nil)
	ta.createApp("hello")
	ta.do("POST", "/apps/hello/domains", schema.DomainCreate{Hostname: "*.example.org"}).want(t, http.StatusCreated, nil)
}

// testCert issues a certificate for names from a fresh CA, valid from at.
func testCert(t *testing.T, at time.Time, names ...string) (certPEM, keyPEM string) {
	t.Helper()
	ca, err := localca.Ensure(t.TempDir(), at)
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.Issue(names, at)
	if err != nil {
		t.Fatal(err)
	}
	return string(c), string(k)
}

func TestSNIEndpoints(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	var d schema.Domain
	ta.do("POST", "/apps/hello/domains", schema.DomainCreate{Hostname: "www.example.com"}).want(t, http.StatusCreated, &d)

	var none []schema.SNIEndpoint
	ta.do("GET", "/apps/hello/sni-endpoints", nil).want(t, http.StatusOK, &none)
	if len(none) != 0 {
		t.Fatalf("endpoints before any: %+v", none)
	}

	now := time.Now()
	chain, key := testCert(t, now, "www.example.com", "example.com")
	var e schema.SNIEndpoint
	r := ta.do("POST", "/apps/hello/sni-endpoints", schema.SNIEndpointCreate{CertificateChain: chain, PrivateKey: key})
	r.want(t, http.StatusCreated, &e)
	if strings.Contains(string(r.body), keyBody(key)) {
		t.Fatal("the response carries the private key")
	}
	if e.Name == "" || e.CertificateChain != chain || strings.Join(e.SSLCert.CertDomains, ",") != "www.example.com,example.com" ||
		!e.SSLCert.CASigned || e.SSLCert.SelfSigned || len(e.Domains) != 1 || e.Domains[0] != d.ID {
		t.Errorf("created %+v", e)
	}
	var withCert schema.Domain
	ta.do("GET", "/apps/hello/domains/www.example.com", nil).want(t, http.StatusOK, &withCert)
	if withCert.SNIEndpoint == nil || withCert.SNIEndpoint.Name != e.Name {
		t.Errorf("domain's sni_endpoint %+v", withCert.SNIEndpoint)
	}
	var list []schema.SNIEndpoint
	ta.do("GET", "/apps/hello/sni-endpoints", nil).want(t, http.StatusOK, &list)
	if len(list) != 1 || list[0].ID != e.ID {
		t.Errorf("listed %+v", list)
	}
	ta.do("GET", "/apps/hello/sni-endpoints/"+e.Name, nil).want(t, http.StatusOK, nil)

	_, otherKey := testCert(t, now, "www.example.com")
	expired, expiredKey := testCert(t, now.Add(-2*localca.LeafValidity), "www.example.com")
	for name, tc := range map[string]struct{ chain, key, msg string }{
		"not PEM":      {"hello", key, "not a PEM certificate"},
		"no key":       {chain, "", "not a PEM private key"},
		"key mismatch": {chain, otherKey, "does not match the certificate"},
		"expired":      {expired, expiredKey, "expired on"},
	} {
		t.Run(name, func(t *testing.T) {
			r := ta.do("POST", "/apps/hello/sni-endpoints", schema.SNIEndpointCreate{CertificateChain: tc.chain, PrivateKey: tc.key})
			r.wantError(t, http.StatusUnprocessableEntity, "invalid_params", tc.msg)
			if strings.Contains(string(r.body), keyBody(key)) || strings.Contains(string(r.body), keyBody(otherKey)) {
				t.Error("the error quotes the private key")
			}
		})
	}

	ta.do("DELETE", "/apps/hello/sni-endpoints/"+e.ID, nil).want(t, http.StatusOK, nil)
	ta.do("GET", "/apps/hello/sni-endpoints/"+e.ID, nil).wantError(t, http.StatusNotFound, "not_found", "sni-endpoint")
}

// keyBody is the base64 line of a PEM key, to look for in responses.
func keyBody(keyPEM string) string { return strings.Split(keyPEM, "\n")[1] }
