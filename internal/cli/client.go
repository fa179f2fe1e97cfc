package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/schema"
)

// client talks to the grid API.
type client struct {
	base string // "http://localhost:5000", no trailing slash
	key  string
	api  *http.Client // for API calls: bounded
	raw  *http.Client // for log streams: open as long as the user wants
}

// Timeouts. Log streams have no overall timeout, only for the headers.
const (
	dialTimeout    = 5 * time.Second
	requestTimeout = 60 * time.Second
	headerTimeout  = 30 * time.Second
)

func newClient(base, key string) *client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: dialTimeout}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		IdleConnTimeout:       30 * time.Second,
	}
	return &client{
		base: strings.TrimRight(base, "/"),
		key:  key,
		api:  &http.Client{Transport: tr, Timeout: requestTimeout},
		raw:  &http.Client{Transport: tr},
	}
}

// apiError is an error answer from the API.
type apiError struct {
	Status int
	ID     string
	Msg    string
}

func (e *apiError) Error() string { return e.Msg }

// unreachableError: nothing answered at the API URL.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the grid API at %s: is grid up running?", e.base)
}

func (e *unreachableError) Unwrap() error { return e.err }

// call sends a request with a JSON body (if in is not nil) and decodes a
// JSON answer into out (if not nil). hdr are extra request headers.
func (c *client) call(ctx context.Context, method, path string, in, out any, hdr ...string) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.request(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.api.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp, responseError(req, resp)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("unexpected answer to %s %s: %v", method, path, err)
		}
	}
	return resp, nil
}

// request is an API request to url with the headers every call has.
func (c *client) request(ctx context.Context, method, url string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("User-Agent", "grid-cli")
	return req, nil
}

// get is call for GET.
func (c *client) get(ctx context.Context, path string, out any, hdr ...string) error {
	_, err := c.call(ctx, http.MethodGet, path, nil, out, hdr...)
	return err
}

func (c *client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &unreachableError{base: c.base, err: err}
}

// responseError turns an error answer into an apiError, with the API's
// message when it sent one.
func responseError(req *http.Request, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e schema.Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		msg := e.Message
		if resp.StatusCode == http.StatusUnauthorized {
			msg += "\nRun grid login, or check GRID_API_KEY."
		}
		return &apiError{Status: resp.StatusCode, ID: e.ID, Msg: msg}
	}
	return &apiError{
		Status: resp.StatusCode,
		Msg:    fmt.Sprintf("HTTP Error %d for %s %s\n%s", resp.StatusCode, req.Method, req.URL.Redacted(), strings.TrimSpace(string(b))),
	}
}

// isStatus reports whether err is an API answer with that status.
func isStatus(err error, status int) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == status
}
