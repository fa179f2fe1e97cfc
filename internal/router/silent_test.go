package router

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox/sandboxtest"
)

// A dyno whose host goes silent (a power cut: nothing acknowledged,
// nothing closed) holds a request sent to it only for UnackedTimeout:
// the kernel gives the connection up, the request goes to another dyno
// when it may be sent again, and the silent dyno is quarantined, all well
// before the manager would hold the host lost. Both paths: a GET on the
// fast path's pooled link, an Idempotency-Key POST on net/http's.
func TestSilentHostsRequestsGoElsewhere(t *testing.T) {
	t.Parallel()
	far := sandboxtest.ServeOutside(t, "rtsilent", netip.MustParsePrefix("10.235.252.0/30"),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "far:%s", body)
		}))
	h := startRouter(t, func(c *Config) { c.UnackedTimeout = 300 * time.Millisecond })
	h.app("silent", 2)
	h.dynoOn("h2", "silent", 1, grid.DynoUp, strings.TrimPrefix(far, "http://")+":80")
	h.await("silent", endpointsAre(1))
	keyedPost := func(body string) *http.Request {
		req := mustRequest(t, "POST", "http://silent.localhost/", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", "k-"+body)
		return req
	}
	// Pooled connections on both paths: the fast path's, then net/http's
	// (which keeps the client connection once it has taken it over).
	if res, body := h.get("http://silent.localhost/"); res.StatusCode != 200 || body != "far:" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if res, body := h.do(keyedPost("warm")); res.StatusCode != 200 || body != "far:warm" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	h.dynoOn("h1", "silent", 2, grid.DynoUp, newBackend(t, "web.2", nil).addr())
	h.await("silent", endpointsAre(2))
	eps := h.r.table.Load().routes["silent"].endpoints
	silent, other := eps[0], eps[1]
	if silent.dyno != "web.1" {
		silent, other = other, silent
	}

	// The power cut: the dyno's end of the link goes down, so what the
	// router sends vanishes, and nothing comes back.
	ns, err := netns.GetFromName("gridtest-rtsilent")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	inside, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer inside.Close()
	link, err := inside.LinkByName("gti-rtsilent")
	if err != nil {
		t.Fatal(err)
	}
	if err := inside.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		req        *http.Request
	}{
		{"GET", "web.2:", mustRequest(t, "GET", "http://silent.localhost/", nil)},
		{"keyed POST", "web.2:a", keyedPost("a")},
	} {
		// The silent dyno first (the other is held back), over a new
		// client connection: a GET takes the fast path.
		silent.until.Store(0)
		other.quarantine(time.Now(), time.Minute)
		h.client.CloseIdleConnections()
		start := time.Now()
		res, body := h.do(tc.req)
		t.Logf("%s: %d %q after %v", tc.name, res.StatusCode, body, time.Since(start).Round(time.Millisecond))
		if res.StatusCode != 200 || body != tc.want {
			t.Errorf("%s: %d %q, want 200 %q", tc.name, res.StatusCode, body, tc.want)
		}
		if !silent.quarantined(time.Now().UnixNano()) || !silent.silent(time.Now()) {
			t.Errorf("%s: the silent dyno is not quarantined", tc.name)
		}
	}
}

// UnackedTimeout spares live dynos however slow: one that takes longer
// to answer, and one that reads a large body late (its kernel answers
// the router's zero-window probes).
func TestUnackedTimeoutSparesSlowDynos(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "web.1", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second)
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	h := startRouter(t, func(c *Config) { c.UnackedTimeout = 200 * time.Millisecond })
	h.app("slow", 1)
	h.dyno("slow", 1, grid.DynoUp, b.addr())
	h.await("slow", endpointsAre(1))
	if res, body := h.get("http://slow.localhost/"); res.StatusCode != 200 || body != "0" {
		t.Errorf("slow answer: %d %q", res.StatusCode, body)
	}
	const size = 64 << 20
	res, body := h.do(mustRequest(t, "POST", "http://slow.localhost/", bytes.NewReader(make([]byte, size))))
	if want := fmt.Sprint(size); res.StatusCode != 200 || body != want {
		t.Errorf("slow reader: %d %q, want 200 %q", res.StatusCode, body, want)
	}
}
