package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/session"
	"github.com/dynogrid/grid/internal/store"
)

// One-off dynos (grid run): POST /apps/{app}/dynos writes the dyno's
// assignment on grid.PendingHost and the manager moves it to a host. An
// attached one then waits on its host for its client, which joins at
// its attach_url: an HTTP upgrade to the session protocol
// (internal/session), relayed here to the host over NATS.

const (
	// maxCommandBytes bounds a one-off command line.
	maxCommandBytes = 64 << 10
	// maxTimeToLive is Heroku's longest one-off dyno life, 24 hours.
	maxTimeToLive = 24 * 60 * 60
	// placeWait bounds how long an attach waits for the manager to place
	// the dyno and for its host to take the session (a cold host may
	// first fetch and unpack the slug).
	placeWait = 90 * time.Second
	// sessionProtocol is the Upgrade token of an attach.
	sessionProtocol = "grid-session"
)

type runRequest struct {
	Command    string  `json:"command"`
	Attach     *bool   `json:"attach"`
	Env        envVars `json:"env"`
	ForceNoTTY *bool   `json:"force_no_tty"`
	Size       string  `json:"size"`
	Type       string  `json:"type"`
	TimeToLive *int    `json:"time_to_live"`
}

// envVars are a one-off dyno's extra environment. The Heroku CLI sends
// COLUMNS and LINES as numbers; numbers and booleans become their text.
type envVars map[string]string

func (e *envVars) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = envVars{}
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			(*e)[k] = s
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err == nil {
			(*e)[k] = n.String()
			continue
		}
		var t bool
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("env %q: want a string, a number or a boolean", k)
		}
		(*e)[k] = strconv.FormatBool(t)
	}
	return nil
}

func (q runRequest) check() error {
	switch {
	case strings.TrimSpace(q.Command) == "":
		return invalid("command is required.")
	case len(q.Command) > maxCommandBytes:
		return invalid(fmt.Sprintf("command is longer than %d bytes.", maxCommandBytes))
	case strings.ContainsRune(q.Command, 0):
		return invalid("command contains a NUL byte.")
	case q.Type != "" && q.Type != "run":
		return invalid(`type must be "run" (one-off dynos only).`)
	case q.TimeToLive != nil && (*q.TimeToLive < 1 || *q.TimeToLive > maxTimeToLive):
		return invalid(fmt.Sprintf("time_to_live must be between 1 and %d seconds.", maxTimeToLive))
	}
	for k, v := range q.Env {
		if k == "" || len(k) > 256 || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return invalid(fmt.Sprintf("env name %q is not a valid variable name (or its value holds a NUL byte).", k))
		}
	}
	return nil
}

// createDyno is POST /apps/{app}/dynos: a one-off dyno of the current
// release.
func (s *server) createDyno(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	var q runRequest
	if err := decode(r, &q); err != nil {
		return err
	}
	if err := q.check(); err != nil {
		return err
	}
	size := sizeByNameOrID(q.Size)
	if size == "" {
		size = grid.DefaultSize
	}
	if _, err := grid.LookupSize(size); err != nil {
		return invalid(fmt.Sprintf("Unknown dyno size %q.", q.Size))
	}
	if a.Release.SlugID == "" {
		return invalid("App has no release with code yet: push code before running a one-off dyno.")
	}
	name, err := s.oneOffName(r.Context(), a.Name)
	if err != nil {
		return err
	}
	env := maps.Clone(a.Release.Config)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, q.Env)
	attach := q.Attach != nil && *q.Attach
	as := grid.Assignment{
		DynoID: store.NewID(), App: a.Name, AppID: a.ID, UID: a.UID, Host: grid.PendingHost,
		Name: name, Type: "run", Command: q.Command, Size: size,
		Release: a.Release.Version, SlugID: a.Release.SlugID, Env: env, Reach: a.Release.Reach,
		OneOff: true, Attach: attach, TTY: attach && (q.ForceNoTTY == nil || !*q.ForceNoTTY),
		CreatedAt: s.now().UTC(),
	}
	if q.TimeToLive != nil {
		as.TimeToLive = *q.TimeToLive
	}
	if err := s.store.PutAssignment(r.Context(), as); err != nil {
		return err
	}
	s.audit(a.Name, fmt.Sprintf("Starting process with command `%s` by user %s", q.Command, user))
	view := s.dynoViews(r.Context(), a, []grid.Dyno{{
		ID: as.DynoID, Name: name, Type: as.Type, Command: as.Command, Size: size,
		Release: as.Release, State: grid.DynoStarting, CreatedAt: as.CreatedAt, UpdatedAt: as.CreatedAt,
	}})[0]
	view.Host = nil
	if attach {
		// grid run attaches at /apps/{app}/dynos/{name}/attach; the
		// Heroku CLI at the rendezvous, when the grid has one.
		u := s.rendezvousURL(as, q.Env)
		if u == "" {
			u = s.base(r.Context()) + "/apps/" + a.Name + "/dynos/" + name + "/attach"
		}
		view.AttachURL = &u
	}
	writeJSON(w, http.StatusCreated, view)
	return nil
}

// oneOffName picks run.N, N of four digits as on Heroku, unused by the
// app's dynos.
func (s *server) oneOffName(ctx context.Context, app string) (string, error) {
	as, err := s.store.Assignments(ctx, "")
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, a := range as {
		if a.App == app {
			used[a.Name] = true
		}
	}
	for range 100 {
		if n := grid.DynoName("run", 1000+rand.IntN(9000)); !used[n] {
			return n, nil
		}
	}
	return "", fmt.Errorf("too many one-off dynos: %w", grid.ErrConflict)
}

// attachDyno is GET /apps/{app}/dynos/{dyno}/attach: the client's end of
// an attached one-off dyno's session. It upgrades the connection, takes
// the client's first frame (its terminal size), waits for the dyno to
// be placed and its host to take the session, then relays frames both
// ways until the dyno's exit status has been sent or the client goes
// (then the dyno gets a Hangup).
func (s *server) attachDyno(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), sessionProtocol) {
		return &userError{msg: "Attach needs Upgrade: " + sessionProtocol + ".", err: errBadRequest}
	}
	as, err := s.oneOff(r.Context(), a.Name, r.PathValue("dyno"))
	if err != nil {
		return err
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{}) // the server's timeouts are for requests
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: %s\r\nConnection: Upgrade\r\n\r\n", sessionProtocol)
	if err := rw.Flush(); err != nil {
		return nil
	}
	client := &framedClient{conn: conn, in: rw.Reader}
	first, err := client.next()
	if err == nil {
		if _, _, ok := first.Size(); !ok {
			err = errors.New("the first frame must be the terminal size")
		}
	}
	if err == nil {
		err = s.relay(r.Context(), as, first, client)
	}
	if err != nil {
		s.logger.Info("one-off session ended", "app", a.Name, "dyno", as.Name, "err", err)
		client.send(session.Frame{Kind: session.Error, Payload: []byte(err.Error())})
	}
	return nil
}

// oneOff finds an attachable one-off dyno's assignment by name or ID.
//
// Placing a one-off moves its assignment from grid.PendingHost to its
// host's key as a delete and a create written side by side, so a look
// between the two finds neither, and a client that attaches the moment
// its dyno is created can land there. A dyno not found is therefore
// looked for again, for up to oneOffSettle, before it is reported missing.
func (s *server) oneOff(ctx context.Context, app, ref string) (grid.Assignment, error) {
	deadline := time.Now().Add(oneOffSettle)
	for {
		as, err := s.store.Assignments(ctx, "")
		if err != nil {
			return grid.Assignment{}, err
		}
		for _, a := range as {
			if a.App == app && a.OneOff && (a.Name == ref || a.DynoID == ref) {
				if !a.Attach {
					return grid.Assignment{}, invalid("Dyno " + a.Name + " was started detached: its output is in the logs.")
				}
				return a, nil
			}
		}
		if time.Now().After(deadline) {
			return grid.Assignment{}, notFound("dyno")
		}
		select {
		case <-ctx.Done():
			return grid.Assignment{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// oneOffSettle bounds how long oneOff waits out a placement's two writes:
// far longer than they take, short enough for a mistyped name.
const oneOffSettle = time.Second

// clientEnd is the client's side of an attached session: frames over an
// HTTP upgrade (grid run) or raw bytes over a rendezvous (heroku run).
type clientEnd interface {
	// send gives the client a Data, Exit or Error frame.
	send(session.Frame) error
	// next is the client's next Data, Resize or EOF frame.
	next() (session.Frame, error)
}

// framedClient speaks the session protocol's frames (grid run).
type framedClient struct {
	conn net.Conn
	in   *bufio.Reader
	mu   sync.Mutex // serializes writes to conn
}

func (c *framedClient) send(f session.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return session.Write(c.conn, f)
}

func (c *framedClient) next() (session.Frame, error) { return session.Read(c.in) }

// relay joins client to one-off dyno as, once placed and started with the
// terminal size of first, until the dyno's exit has been sent or the
// client goes (then the dyno gets a Hangup).
func (s *server) relay(ctx context.Context, as grid.Assignment, first session.Frame, client clientEnd) error {
	nc := s.store.Conn()
	ctx, cancel := context.WithTimeout(ctx, placeWait)
	as, err := placed(ctx, s.store, as)
	if err != nil {
		cancel()
		return err
	}
	exited := make(chan struct{})
	var once sync.Once
	sub, err := nc.Subscribe(session.Subject(as.Host, as.DynoID, "out"), func(m *nats.Msg) {
		f, err := session.FromMessage(m.Data)
		if err != nil || client.send(f) != nil || f.Kind == session.Exit {
			once.Do(func() { close(exited) })
		}
	})
	if err != nil {
		cancel()
		return err
	}
	defer sub.Unsubscribe()
	// Output waits for a slow client; past these limits NATS drops it.
	_ = sub.SetPendingLimits(16384, 64<<20)
	err = takeSession(ctx, nc, as, first)
	cancel()
	if err != nil {
		return err
	}
	clientGone := make(chan struct{})
	go func() {
		defer close(clientGone)
		inSubj := session.Subject(as.Host, as.DynoID, "in")
		for {
			f, err := client.next()
			if err != nil {
				_ = nc.Publish(inSubj, session.Frame{Kind: session.Hangup}.Message())
				return
			}
			if f.Kind == session.Data || f.Kind == session.Resize || f.Kind == session.EOF {
				if nc.Publish(inSubj, f.Message()) != nil {
					return
				}
			}
		}
	}()
	select {
	case <-exited:
	case <-clientGone:
	}
	return nil
}

// placed waits until the manager has moved the assignment to a host.
func placed(ctx context.Context, st *store.Store, as grid.Assignment) (grid.Assignment, error) {
	for as.Host == grid.PendingHost {
		select {
		case <-ctx.Done():
			return as, fmt.Errorf("no host took dyno %s within %s: %w", as.Name, placeWait, grid.ErrUnavailable)
		case <-time.After(100 * time.Millisecond):
		}
		all, err := st.Assignments(ctx, "")
		if err != nil {
			continue
		}
		found := false
		for _, a := range all {
			if a.DynoID == as.DynoID {
				as, found = a, true
			}
		}
		if !found {
			return as, fmt.Errorf("dyno %s is gone", as.Name)
		}
	}
	return as, nil
}

// takeSession asks the dyno's host to start it for this client until it
// does; the host says "wait" while the dyno is not waiting yet.
func takeSession(ctx context.Context, nc *nats.Conn, as grid.Assignment, size session.Frame) error {
	subj := session.Subject(as.Host, as.DynoID, "attach")
	for {
		m, err := nc.RequestWithContext(ctx, subj, size.Message())
		switch {
		case err == nil && string(m.Data) == "ok":
			return nil
		case err == nil && strings.HasPrefix(string(m.Data), "error: "):
			return errors.New(strings.TrimPrefix(string(m.Data), "error: "))
		case ctx.Err() != nil:
			return fmt.Errorf("dyno %s did not start within %s: %w", as.Name, placeWait, grid.ErrUnavailable)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
