package drain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// httpTries is how often an HTTP batch is posted before it is dropped:
	// Logplex's http_frame_retries (2) after the first try.
	httpTries = 3
	// httpTimeout bounds one POST, response included.
	httpTimeout = 10 * time.Second
	// userAgent mimics Logplex's: log services switch on it to recognise
	// Heroku-style drains and parse their bodies as application/logplex-1.
	userAgent = "Logplex/v72"
)

// httpTransport posts batches as application/logplex-1 documents. Each
// batch has a frame ID, the same on every try, so a receiver can drop a
// batch it got twice.
type httpTransport struct {
	client *http.Client
	url    string        // the drain URL without its user info
	user   *url.Userinfo // basic auth, nil for none; never logged
	token  string
	now    func() time.Time

	scratch []byte
}

func newHTTPTransport(u *url.URL, dialer *net.Dialer, tc *tls.Config, token string, now func() time.Time) *httpTransport {
	clean := *u
	clean.User = nil
	return &httpTransport{
		client: &http.Client{
			Timeout: httpTimeout,
			Transport: &http.Transport{
				Proxy:                 nil, // a proxy would dial past Allow
				DialContext:           dialer.DialContext,
				TLSClientConfig:       tc,
				TLSHandshakeTimeout:   dialTimeout,
				ResponseHeaderTimeout: httpTimeout,
				MaxIdleConnsPerHost:   1,
				IdleConnTimeout:       50 * time.Second, // under common 60 s server idle timeouts
			},
			// A redirect is the receiver's mistake; following it could
			// repost the logs elsewhere, even to a forbidden address.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		url:   clean.String(),
		user:  u.User,
		token: token,
		now:   now,
	}
}

func (h *httpTransport) tries() int { return httpTries }

func (h *httpTransport) open(context.Context) (bool, error) { return false, nil }

func (h *httpTransport) write(ctx context.Context, b *batch) error {
	if b.body == nil {
		for _, l := range b.lines {
			b.body, h.scratch = appendFrame(b.body, h.scratch, l, httpHostname, false, h.now())
		}
		b.id = frameID()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(b.body))
	if err != nil {
		return err
	}
	h.header(req, b)
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: drain answered %s", h.url, resp.Status)
	}
	return nil
}

func (h *httpTransport) header(req *http.Request, b *batch) {
	req.Header.Set("Content-Type", "application/logplex-1")
	req.Header.Set("Logplex-Msg-Count", strconv.Itoa(len(b.lines)))
	req.Header.Set("Logplex-Frame-Id", b.id)
	if h.token != "" {
		req.Header.Set("Logplex-Drain-Token", h.token)
	}
	req.Header.Set("User-Agent", userAgent)
	if h.user != nil {
		pass, _ := h.user.Password()
		req.SetBasicAuth(h.user.Username(), pass)
	}
}

func (h *httpTransport) close() { h.client.CloseIdleConnections() }

// frameID returns 32 random upper-case hex digits, like Logplex's.
func frameID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
