package api

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

// Log sessions are stateless capabilities: the logplex_url carries a
// token that is the session itself (app, filters, creation time) signed
// with HMAC-SHA256 under Config.SessionSecret:
//
//	<base64url(JSON claims)>.<base64url(HMAC of the first part)>
//
// As with Logplex, a session must be opened within sessionOpenWindow of
// its creation. A tail stream that drops is reopened by the client's
// EventSource with Last-Event-ID; such a resumption is accepted for
// sessionResumeWindow, so a long `logs --tail` survives a reconnect.
const (
	sessionOpenWindow   = 360 * time.Second
	sessionResumeWindow = 24 * time.Hour
	maxLogLines         = 1500
	defaultLogLines     = 100
)

// sessionClaims is what a log-session token grants.
type sessionClaims struct {
	App     string `json:"a"`
	Dyno    string `json:"d,omitempty"`
	Source  string `json:"s,omitempty"`
	Lines   int    `json:"n"`
	Tail    bool   `json:"t,omitempty"`
	Created int64  `json:"c"` // Unix seconds
}

func (c sessionClaims) query() logs.Query {
	return logs.Query{Lines: c.Lines, Dyno: c.Dyno, Source: c.Source, Tail: c.Tail}
}

var dynoFilterRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}(\.[0-9]{1,9})?$`)

// createLogSession is POST /apps/{app}/log-sessions.
func (s *server) createLogSession(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	var body schema.LogSessionCreate
	if err := decode(r, &body); err != nil {
		return err
	}
	c, err := s.claims(a.Name, body)
	if err != nil {
		return err
	}
	if s.logs == nil || s.baseURL == "" {
		return fmt.Errorf("logs are not available from this API (no log stream or base URL configured): %w", grid.ErrUnavailable)
	}
	now := apiTime(s.now())
	writeJSON(w, http.StatusCreated, schema.LogSession{
		ID:         store.NewID(),
		LogplexURL: s.base(r.Context()) + "/log-stream/" + s.signToken(c),
		CreatedAt:  now,
		UpdatedAt:  now,
	})
	return nil
}

// claims validates a log-session request.
func (s *server) claims(app string, body schema.LogSessionCreate) (sessionClaims, error) {
	c := sessionClaims{App: app, Dyno: body.DynoFilter(), Source: body.Source, Lines: defaultLogLines, Tail: body.Tail, Created: s.now().Unix()}
	if body.Lines != nil {
		if *body.Lines < 0 {
			return c, invalid("lines must be 0 or more.")
		}
		c.Lines = min(*body.Lines, maxLogLines)
	}
	if c.Source != "" && c.Source != "app" && c.Source != "heroku" {
		return c, invalid(`source must be "app" or "heroku".`)
	}
	if c.Dyno != "" && !dynoFilterRE.MatchString(c.Dyno) {
		return c, invalid(`dyno must be a process type ("web") or a dyno name ("web.1").`)
	}
	return c, nil
}

func (s *server) signToken(c sessionClaims) string { return s.sign("log-session", c) }

var errBadSession = &userError{msg: "Unknown or expired log session. Start a new one (grid logs).", resource: "log-session", err: grid.ErrNotFound}

// openToken checks a token's signature and age. resuming is true when the
// client continues a stream (it sent Last-Event-ID).
func (s *server) openToken(token string, resuming bool) (sessionClaims, error) {
	var c sessionClaims
	if !s.open("log-session", token, &c) {
		return c, errBadSession
	}
	window := sessionOpenWindow
	if resuming && c.Tail {
		window = sessionResumeWindow
	}
	age := s.now().Sub(time.Unix(c.Created, 0))
	if age > window || age < -time.Minute {
		return c, errBadSession
	}
	return c, nil
}
