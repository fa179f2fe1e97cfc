package api

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

// The Build API builds a source tarball (an upload from POST /sources or
// any http(s) URL) into a release, as a push does. POST answers at once
// with the build pending; the build runs on this server, its output goes
// to whoever follows output_stream_url (a capability URL) and, when the
// build is over, into the store with the build's status.

// BuildRequest is one Build API build for Config.Build.
type BuildRequest struct {
	App, User string
	// Version labels the source (a commit sha); it becomes the release's
	// commit.
	Version  string
	Checksum string    // "SHA256:<hex>" or empty
	Source   io.Reader // the tarball (gzip'd or plain tar), or nil:
	// SourceURL is then fetched by the builder, from the internet.
	SourceURL  string
	Buildpacks []string // this build's list, or nil for the app's
	Output     io.Writer
}

// outputClaims is what an output_stream_url grants.
type outputClaims struct {
	App     string `json:"a"`
	ID      string `json:"i"`
	Created int64  `json:"c"`
}

// outputURLWindow is how long an output_stream_url works.
const outputURLWindow = 7 * 24 * time.Hour

var buildFields = []rangeField[schema.Build]{
	{"id", func(b schema.Build) string { return b.ID }, textKey},
	{"created_at", func(b schema.Build) string { return timeValue(b.CreatedAt) }, timeKey},
	{"updated_at", func(b schema.Build) string { return timeValue(b.UpdatedAt) }, timeKey},
}

func (s *server) buildView(ctx context.Context, a grid.App, b grid.Build) schema.Build {
	v := schema.Build{
		ID:              b.ID,
		App:             schema.IDRef{ID: a.ID},
		Buildpacks:      []schema.BuildpackInfo{},
		OutputStreamURL: s.base(ctx) + "/build-output/" + s.sign("build-output", outputClaims{App: a.Name, ID: b.ID, Created: s.now().Unix()}),
		SourceBlob:      schema.BuildSource{URL: b.SourceURL, Version: optional(b.Version), Checksum: optional(b.Checksum)},
		Stack:           grid.Stack,
		Status:          string(b.Status),
		User:            userRef(b.User),
		CreatedAt:       apiTime(b.CreatedAt),
		UpdatedAt:       apiTime(b.UpdatedAt),
	}
	for _, u := range b.Buildpacks {
		v.Buildpacks = append(v.Buildpacks, schema.BuildpackInfo{URL: u, Name: u})
	}
	if b.SlugID != "" {
		v.Slug = &schema.IDRef{ID: b.SlugID}
	}
	if b.Release > 0 {
		if r, err := s.store.Release(ctx, a.Name, b.Release); err == nil {
			v.Release = &schema.IDRef{ID: r.ID}
		}
	}
	return v
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// createBuild is POST /apps/{app}/builds.
func (s *server) createBuild(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	var body schema.BuildCreate
	if err := decode(r, &body); err != nil {
		return err
	}
	req, err := s.buildRequest(r.Context(), a, user, body)
	if err != nil {
		return err
	}
	if s.build == nil {
		return fmt.Errorf("this API runs no builds: %w", grid.ErrUnavailable)
	}
	now := s.now().UTC()
	b := grid.Build{ID: store.NewID(), App: a.Name, AppID: a.ID, Status: grid.BuildPending, SourceURL: body.SourceBlob.URL,
		Version: req.Version, Checksum: req.Checksum, Buildpacks: req.Buildpacks, User: user, CreatedAt: now, UpdatedAt: now}
	if err := s.store.PutBuild(r.Context(), b); err != nil {
		if c, ok := req.Source.(io.Closer); ok {
			c.Close()
		}
		return err
	}
	out := s.outputs.start(b.ID)
	go s.runBuild(b, req, out)
	writeJSON(w, http.StatusCreated, s.buildView(r.Context(), a, b))
	return nil
}

// buildRequest checks a build request and opens its source if it was
// uploaded here.
func (s *server) buildRequest(ctx context.Context, a grid.App, user string, body schema.BuildCreate) (BuildRequest, error) {
	req := BuildRequest{App: a.Name, User: user}
	sb := body.SourceBlob
	if sb == nil || sb.URL == "" {
		return req, invalid(`Give the source tarball's URL: {"source_blob": {"url": "https://..."}} (POST /sources makes an upload URL).`)
	}
	if !strings.HasPrefix(sb.URL, "https://") && !strings.HasPrefix(sb.URL, "http://") || len(sb.URL) > 4096 {
		return req, invalid("source_blob.url must be an http(s) URL of at most 4096 characters.")
	}
	if sb.Version != nil {
		if len(*sb.Version) > 256 || strings.ContainsFunc(*sb.Version, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return req, invalid("source_blob.version must be one line of at most 256 characters.")
		}
		req.Version = *sb.Version
	}
	if sb.Checksum != nil {
		if err := grid.ValidateChecksum(*sb.Checksum); err != nil {
			return req, err
		}
		req.Checksum = *sb.Checksum
	}
	for _, bp := range body.Buildpacks {
		req.Buildpacks = append(req.Buildpacks, cmp.Or(bp.URL, bp.Name))
	}
	refs, err := grid.ParseBuildpacks(req.Buildpacks)
	if err != nil {
		return req, err
	}
	req.Buildpacks = nil
	for _, ref := range refs {
		req.Buildpacks = append(req.Buildpacks, ref.URL)
	}
	c, ours := s.sourceOf(sb.URL)
	if !ours {
		if strings.Contains(sb.URL, sourcePath) {
			return req, errBadSource
		}
		req.SourceURL = sb.URL
		return req, nil
	}
	// The build reads it after this request has ended.
	rc, err := s.store.OpenSource(context.WithoutCancel(ctx), c.ID)
	if err != nil {
		if errors.Is(err, grid.ErrNotFound) {
			return req, invalid("Nothing was uploaded to that source URL yet: PUT the tarball to it first.")
		}
		return req, err
	}
	req.Source = rc
	return req, nil
}

// runBuild runs b to its end, then records how it went and its output.
// It outlives the request that started it.
func (s *server) runBuild(b grid.Build, req BuildRequest, out *liveOutput) {
	ctx := context.Background()
	if c, ok := req.Source.(io.Closer); ok {
		defer c.Close()
	}
	if req.Version == "" {
		req.Version = b.ID
	}
	req.Output = out
	rel, err := s.build(ctx, req)
	b.Status, b.UpdatedAt = grid.BuildSucceeded, s.now().UTC()
	if err != nil {
		b.Status = grid.BuildFailed
		s.logger.Info("build failed", "app", b.App, "build", b.ID, "err", err)
	} else {
		b.SlugID, b.Release = rel.SlugID, rel.Version
	}
	// Output and record are stored before followers hear the end, so
	// that what they ask next is already so.
	if err := s.store.PutBuildOutput(ctx, b.ID, bytes.NewReader(out.bytes())); err != nil {
		s.logger.Error("build output not stored", "app", b.App, "build", b.ID, "err", err)
	}
	if err := s.store.PutBuild(ctx, b); err != nil {
		s.logger.Error("build record not updated", "app", b.App, "build", b.ID, "status", b.Status, "err", err)
	}
	out.finish()
	s.outputs.remove(b.ID)
}

func (s *server) listBuilds(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	bs, err := s.store.Builds(r.Context(), a.Name)
	if err != nil {
		return err
	}
	views := make([]schema.Build, 0, len(bs))
	for _, b := range bs {
		if b.AppID == a.ID {
			views = append(views, s.buildView(r.Context(), a, b))
		}
	}
	return writeList(w, r, views, buildFields)
}

func (s *server) getBuild(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	b, err := s.store.Build(r.Context(), a.Name, r.PathValue("build"))
	if err != nil || b.AppID != a.ID {
		return notFound("build")
	}
	writeJSON(w, http.StatusOK, s.buildView(r.Context(), a, b))
	return nil
}

// purgeBuildCache is DELETE /apps/{app}/build-cache.
func (s *server) purgeBuildCache(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	if s.purgeCache == nil {
		return fmt.Errorf("this API runs no builds: %w", grid.ErrUnavailable)
	}
	if err := s.purgeCache(a.Name); err != nil {
		return err
	}
	s.audit(a.Name, "Build cache purged by user "+user)
	writeJSON(w, http.StatusAccepted, struct{}{})
	return nil
}

var errBadOutput = &userError{msg: "Unknown or expired build output URL.", resource: "build", err: grid.ErrNotFound}

// streamBuildOutput is GET /build-output/{token}: the build's output as
// plain text, followed until the build ends when it runs here. A build
// running on another server is waited for until its output is stored.
func (s *server) streamBuildOutput(w http.ResponseWriter, r *http.Request) {
	var c outputClaims
	if !s.open("build-output", r.PathValue("token"), &c) || s.now().Sub(time.Unix(c.Created, 0)) > outputURLWindow {
		s.writeError(w, r, errBadOutput)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if live := s.outputs.get(c.ID); live != nil {
		live.follow(r.Context(), w)
		return
	}
	ctx := r.Context()
	for {
		rc, err := s.store.OpenBuildOutput(ctx, c.ID)
		if err == nil {
			defer rc.Close()
			_, _ = io.Copy(w, rc)
			return
		}
		b, berr := s.store.Build(ctx, c.App, c.ID)
		if !errors.Is(err, grid.ErrNotFound) || berr != nil || b.Status != grid.BuildPending {
			s.writeError(w, r, errBadOutput)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// outputs are the outputs of the builds running in this process.
type outputs struct {
	mu   sync.Mutex
	live map[string]*liveOutput
}

func (o *outputs) start(id string) *liveOutput {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.live == nil {
		o.live = map[string]*liveOutput{}
	}
	l := &liveOutput{changed: make(chan struct{})}
	o.live[id] = l
	return l
}

func (o *outputs) get(id string) *liveOutput {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.live[id]
}

func (o *outputs) remove(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.live, id)
}

// liveOutput is a running build's output: kept whole (the builder caps
// it) and handed to any number of followers.
type liveOutput struct {
	mu      sync.Mutex
	buf     []byte
	done    bool
	changed chan struct{} // closed and replaced at each write, closed at the end
}

func (l *liveOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// bytes is the output so far.
func (l *liveOutput) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf
}

// finish ends the output: followers return once they have it all.
func (l *liveOutput) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		close(l.changed)
	}
}

// follow writes the output to w as it comes, until it ends or ctx does.
func (l *liveOutput) follow(ctx context.Context, w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	sent := 0
	for {
		l.mu.Lock()
		chunk, done, changed := l.buf[sent:], l.done, l.changed
		l.mu.Unlock()
		if len(chunk) > 0 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			sent += len(chunk)
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if done {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}
