package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
	"github.com/dynogrid/grid/internal/store/storetest"
)

const (
	testKey   = "test-key"
	testEmail = "admin@example.com"
)

// testAPI is a real API on a real store.
type testAPI struct {
	t     *testing.T
	store *store.Store
	logs  *logs.Log
	srv   *httptest.Server
	s     *server
}

func startAPI(t *testing.T, mods ...func(*Config)) *testAPI {
	t.Helper()
	st := storetest.Start(t)
	if err := st.PutAPIKey(context.Background(), testKey, testEmail); err != nil {
		t.Fatal(err)
	}
	lg, err := logs.Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lg.Close)
	ta := &testAPI{t: t, store: st, logs: lg}
	ta.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ta.s.ServeHTTP(w, r) }))
	t.Cleanup(ta.srv.Close)
	cfg := Config{Store: st, Domain: "grid.test", BaseURL: ta.srv.URL, Logs: lg, SessionSecret: []byte("secret"), Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}
	for _, mod := range mods {
		mod(&cfg)
	}
	ta.s = newServer(cfg)
	return ta
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends an authenticated request; body is JSON-encoded unless it is a
// string. Extra headers come in name, value pairs.
func (ta *testAPI) do(method, path string, body any, headers ...string) response {
	ta.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ta.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ta.srv.URL+path, rd)
	if err != nil {
		ta.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := ta.srv.Client().Do(req)
	if err != nil {
		ta.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ta.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// want checks the status and decodes the body into v (if not nil).
func (r response) want(t *testing.T, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if r.header.Get("Request-Id") == "" {
		t.Error("no Request-Id")
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// wantError checks an error response.
func (r response) wantError(t *testing.T, status int, id, msgRE string) {
	t.Helper()
	var e schema.Error
	r.want(t, status, &e)
	if e.ID != id || !regexp.MustCompile(msgRE).MatchString(e.Message) {
		t.Errorf("error %+v, want id %s and message matching %q", e, id, msgRE)
	}
}

var ignoreVolatile = cmpopts.IgnoreFields(schema.Release{}, "ID", "CreatedAt", "UpdatedAt")

func (ta *testAPI) createApp(name string) schema.App {
	ta.t.Helper()
	var a schema.App
	ta.do("POST", "/apps", schema.AppCreate{Name: name}).want(ta.t, http.StatusCreated, &a)
	return a
}

func TestCreateApp(t *testing.T) {
	ta := startAPI(t)
	a := ta.createApp("hello")
	stack := schema.Ref{ID: stableID("stack", grid.Stack), Name: grid.Stack}
	want := schema.App{
		Name:         "hello",
		Owner:        schema.UserRef{ID: accountID(testEmail), Email: testEmail},
		Region:       schema.Ref{ID: stableID("region", "us"), Name: "us"},
		Stack:        stack,
		BuildStack:   stack,
		Generation:   schema.Ref{ID: stableID("generation", "cedar"), Name: "cedar"},
		GitURL:       ta.srv.URL + "/hello.git",
		WebURL:       "http://hello.grid.test/",
		CreateStatus: "complete",
	}
	if diff := cmp.Diff(want, a, cmpopts.IgnoreFields(schema.App{}, "ID", "CreatedAt", "UpdatedAt", "ReleasedAt")); diff != "" {
		t.Errorf("app (-want +got):\n%s", diff)
	}
	if a.ID == "" || a.CreatedAt.IsZero() || a.ReleasedAt == nil {
		t.Errorf("app lacks id or times: %+v", a)
	}
	// Null fields must be present, not omitted: clients read them.
	var raw map[string]any
	ta.do("GET", "/apps/hello", nil).want(t, 200, &raw)
	for _, k := range []string{"organization", "team", "space", "slug_size", "repo_size", "buildpack_provided_description", "internal_routing", "archived_at"} {
		if v, ok := raw[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}

	var got schema.App
	ta.do("GET", "/apps/"+a.ID, nil).want(t, 200, &got)
	if got.Name != "hello" {
		t.Errorf("app by id: %+v", got)
	}

	var rs []schema.Release
	ta.do("GET", "/apps/hello/releases", nil).want(t, 200, &rs)
	wantRel := []schema.Release{{
		Version: 1, Description: "Initial release", Status: "succeeded", Current: true,
		Artifacts: []schema.Artifact{}, App: schema.Ref{ID: a.ID, Name: "hello"},
		User: schema.UserRef{ID: accountID(testEmail), Email: testEmail}, AddonPlanNames: []string{},
	}}
	if diff := cmp.Diff(wantRel, rs, ignoreVolatile); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}

	ta.do("POST", "/apps", schema.AppCreate{Name: "hello"}).wantError(t, 422, "invalid_params", "^Name is already taken$")

	var gen schema.App
	ta.do("POST", "/apps", "").want(t, 201, &gen)
	if !regexp.MustCompile(`^[a-z]+-[a-z]+-\d{4}$`).MatchString(gen.Name) {
		t.Errorf("generated name %q", gen.Name)
	}
	var apps []schema.App
	ta.do("GET", "/users/~/apps", nil).want(t, 200, &apps)
	if len(apps) != 2 {
		t.Errorf("%d apps", len(apps))
	}
}

func TestBadAppNames(t *testing.T) {
	ta := startAPI(t)
	for _, name := range []string{"Hello", "a", strings.Repeat("a", 31), "-x", "1app", "héllo", "app_1", "ap p", "日本"} {
		t.Run(name, func(t *testing.T) {
			ta.do("POST", "/apps", schema.AppCreate{Name: name}).wantError(t, 422, "invalid_params", "must start with a letter")
		})
	}
	ta.createApp(strings.Repeat("a", 30))
}

func TestConfigAndReleases(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	var cfg schema.ConfigVars
	ta.do("PATCH", "/apps/hello/config-vars", map[string]string{"FOO": "bar", "BAZ": "1"}).want(t, 200, &cfg)
	if diff := cmp.Diff(schema.ConfigVars{"FOO": "bar", "BAZ": "1"}, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}

	// What the Heroku CLI's config:set reads to print "done, v2".
	var newest []schema.Release
	r := ta.do("GET", "/apps/hello/releases", nil, "Range", "version ..; order=desc,max=1")
	r.want(t, 206, &newest)
	if len(newest) != 1 || newest[0].Version != 2 || newest[0].Description != "Set BAZ, FOO config vars" || !newest[0].Current {
		t.Errorf("newest release: %+v", newest)
	}
	if got := r.header.Get("Next-Range"); got != "version ]2..; max=1, order=desc" {
		t.Errorf("Next-Range %q", got)
	}

	// No change, no release.
	ta.do("PATCH", "/apps/hello/config-vars", map[string]string{"FOO": "bar"}).want(t, 200, &cfg)
	ta.do("PATCH", "/apps/hello/config-vars", map[string]any{}).want(t, 200, &cfg)
	ta.do("PATCH", "/apps/hello/config-vars", map[string]any{"NOPE": nil}).want(t, 200, &cfg)
	var after schema.ConfigVars
	ta.do("PATCH", "/apps/hello/config-vars", map[string]any{"BAZ": nil}).want(t, 200, &after)
	if diff := cmp.Diff(schema.ConfigVars{"FOO": "bar"}, after); diff != "" {
		t.Errorf("config after unset (-want +got):\n%s", diff)
	}
	var rs []schema.Release
	ta.do("GET", "/apps/hello/releases", nil, "Range", "version ..; max=15, order=desc").want(t, 200, &rs)
	var descs []string
	for _, r := range rs {
		descs = append(descs, r.Description)
	}
	if diff := cmp.Diff([]string{"Remove BAZ config vars", "Set BAZ, FOO config vars", "Initial release"}, descs); diff != "" {
		t.Errorf("releases (-want +got):\n%s", diff)
	}

	var old schema.ConfigVars
	ta.do("GET", "/apps/hello/releases/v2/config-vars", nil).want(t, 200, &old)
	if diff := cmp.Diff(schema.ConfigVars{"FOO": "bar", "BAZ": "1"}, old); diff != "" {
		t.Errorf("v2 config (-want +got):\n%s", diff)
	}
	var byID, byVersion schema.Release
	ta.do("GET", "/apps/hello/releases/2", nil).want(t, 200, &byVersion)
	ta.do("GET", "/apps/hello/releases/"+byVersion.ID, nil).want(t, 200, &byID)
	if byID.Version != 2 || byVersion.Current {
		t.Errorf("release by id %+v, by version %+v", byID, byVersion)
	}
	ta.do("GET", "/apps/hello/releases/9", nil).wantError(t, 404, "not_found", "Couldn't find that release")

	ta.do("PATCH", "/apps/hello/config-vars", map[string]string{"BAD-KEY": "x"}).wantError(t, 422, "invalid_params", "BAD-KEY")
	ta.do("PATCH", "/apps/hello/config-vars", `{"A": 1}`).wantError(t, 400, "bad_request", "Invalid JSON")
	ta.do("PATCH", "/apps/hello/config-vars", `{"A": "x"`).wantError(t, 400, "bad_request", "Invalid JSON")
	big := `{"A":"` + strings.Repeat("x", 2<<20) + `"}`
	ta.do("PATCH", "/apps/hello/config-vars", big).wantError(t, 413, "request_entity_too_large", "larger than")
	ta.do("PATCH", "/apps/hello/config-vars", map[string]string{"A": strings.Repeat("x", 70<<10)}).wantError(t, 413, "request_entity_too_large", "allowed")
	ta.do("GET", "/apps/hello/releases", nil, "Range", "colour ..").wantError(t, 416, "requested_range_not_satisfiable", "version, id")
}

func TestRollback(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	ctx := context.Background()
	ta.do("POST", "/apps/hello/releases", map[string]string{"release": "1"}).wantError(t, 422, "invalid_params", "no code")
	if err := ta.store.PutSlug(ctx, grid.Slug{ID: "slug-1", App: "hello"}, strings.NewReader("archive")); err != nil {
		t.Fatal(err)
	}
	deploy, err := ta.store.CommitRelease(ctx, "hello", func(cur grid.App) (grid.Release, error) {
		return grid.Release{Description: grid.DeployDescription("0123456789abcdef"), SlugID: "slug-1", Commit: "0123456789abcdef", Config: map[string]string{"A": "1"}, User: testEmail}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ta.do("PATCH", "/apps/hello/config-vars", map[string]string{"A": "2"}).want(t, 200, nil)

	var rel schema.Release
	ta.do("POST", "/apps/hello/releases", map[string]string{"release": deploy.ID}).want(t, 201, &rel)
	want := schema.Release{
		Version: 4, Description: "Rollback to v2", Status: "succeeded", Current: true, EligibleForRollback: true,
		Slug: &schema.IDRef{ID: "slug-1"}, Artifacts: []schema.Artifact{{Type: "slug", ID: "slug-1"}},
		App: rel.App, User: schema.UserRef{ID: accountID(testEmail), Email: testEmail}, AddonPlanNames: []string{},
	}
	if diff := cmp.Diff(want, rel, ignoreVolatile); diff != "" {
		t.Errorf("rollback (-want +got):\n%s", diff)
	}
	var cfg schema.ConfigVars
	ta.do("GET", "/apps/hello/config-vars", nil).want(t, 200, &cfg)
	if diff := cmp.Diff(schema.ConfigVars{"A": "1"}, cfg); diff != "" {
		t.Errorf("config after rollback (-want +got):\n%s", diff)
	}
	ta.do("POST", "/apps/hello/releases", map[string]string{"release": "v3"}).want(t, 201, &rel)
	if rel.Description != "Rollback to v3" || rel.Version != 5 {
		t.Errorf("rollback by vN: %+v", rel)
	}
	ta.do("POST", "/apps/hello/releases", map[string]string{"release": "42"}).wantError(t, 404, "not_found", "release")

	// A release whose slug was collected cannot come back.
	if _, err := ta.store.CommitRelease(ctx, "hello", func(cur grid.App) (grid.Release, error) {
		return grid.Release{Description: grid.DeployDescription("fedcba9876543210"), SlugID: "slug-gone", Commit: "fedcba9876543210", User: testEmail}, nil
	}); err != nil {
		t.Fatal(err)
	}
	ta.do("POST", "/apps/hello/releases", map[string]string{"release": "6"}).wantError(t, 422, "invalid_params", `^Cannot roll back to v6: its slug was deleted \(only the newest releases keep theirs\)\. Push that commit \(fedcba98\) again instead\.$`)
	ta.do("POST", "/apps/hello/releases", map[string]string{}).wantError(t, 422, "invalid_params", "which release")
}

// seedFormation gives hello the process types a deploy would.
func (ta *testAPI) seedFormation() {
	ta.t.Helper()
	_, err := ta.store.UpdateFormation(context.Background(), "hello", func(f *grid.Formation) error {
		*f = f.WithProcessTypes(map[string]string{"web": "./server", "worker": "./work", "beat": "./beat"})
		return nil
	})
	if err != nil {
		ta.t.Fatal(err)
	}
}

func TestFormation(t *testing.T) {
	ta := startAPI(t)
	app := ta.createApp("hello")
	ta.do("PATCH", "/apps/hello/formation", map[string]any{"updates": []map[string]any{{"type": "web", "quantity": 1}}}).
		wantError(t, 404, "not_found", "no process types")
	ta.seedFormation()
	var fs []schema.Formation
	body := `{"updates":[{"quantity":"3","size":"Standard-2X","type":"web"},{"quantity":"+1","type":"worker"}]}`
	ta.do("PATCH", "/apps/hello/formation", body).want(t, 200, &fs)
	appRef := schema.Ref{ID: app.ID, Name: "hello"}
	want := []schema.Formation{
		{ID: stableID("formation", app.ID, "web"), Type: "web", Command: "./server", Quantity: 3, Size: "Standard-2X",
			DynoSize: schema.DynoSize{ID: sizeID("standard-2x"), Name: "Standard-2X"}, App: appRef},
		{ID: stableID("formation", app.ID, "worker"), Type: "worker", Command: "./work", Quantity: 1, Size: "Standard-1X",
			DynoSize: schema.DynoSize{ID: sizeID("standard-1x"), Name: "Standard-1X"}, App: appRef},
	}
	ignoreTimes := cmpopts.IgnoreFields(schema.Formation{}, "CreatedAt", "UpdatedAt")
	if diff := cmp.Diff(want, fs, ignoreTimes); diff != "" {
		t.Errorf("formation (-want +got):\n%s", diff)
	}
	// Web first, as everywhere.
	beat := schema.Formation{ID: stableID("formation", app.ID, "beat"), Type: "beat", Command: "./beat", Size: "Standard-1X",
		DynoSize: schema.DynoSize{ID: sizeID("standard-1x"), Name: "Standard-1X"}, App: appRef}
	ta.do("GET", "/apps/hello/formation", nil).want(t, 200, &fs)
	if diff := cmp.Diff([]schema.Formation{want[0], beat, want[1]}, fs, ignoreTimes); diff != "" {
		t.Errorf("GET formation (-want +got):\n%s", diff)
	}
	var one schema.Formation
	ta.do("PATCH", "/apps/hello/formation/web", map[string]any{"quantity": 2, "dyno_size": map[string]string{"name": "basic"}}).want(t, 200, &one)
	if one.Quantity != 2 || one.Size != "Basic" {
		t.Errorf("single patch: %+v", one)
	}
	ta.do("GET", "/apps/hello/formation/web", nil).want(t, 200, &one)
	ta.do("GET", "/apps/hello/formation/clock", nil).wantError(t, 404, "not_found", "formation")
	ta.do("PATCH", "/apps/hello/formation", `{"updates":[{"type":"clock","quantity":1}]}`).wantError(t, 404, "not_found", "no clock process type.*web, beat, worker")
	ta.do("PATCH", "/apps/hello/formation", `{"updates":[{"type":"web","quantity":"-5"}]}`).wantError(t, 422, "invalid_params", "below 0")
	ta.do("PATCH", "/apps/hello/formation", `{"updates":[{"type":"web","quantity":1,"size":"huge"}]}`).wantError(t, 422, "invalid_params", "huge")
}

func TestDynos(t *testing.T) {
	ta := startAPI(t)
	app := ta.createApp("hello")
	ctx := context.Background()
	// Two records for web.1 while it is being replaced; the newer wins.
	now := time.Now().UTC()
	for _, d := range []grid.Dyno{
		{ID: "d1", Host: "h1", App: "hello", Name: "web.1", Type: "web", Command: "./server", Size: "basic", Release: 1, Epoch: 0, State: grid.DynoUp, CreatedAt: now.Add(-time.Hour), UpdatedAt: now},
		{ID: "d2", Host: "h1", App: "hello", Name: "web.1", Type: "web", Command: "./server", Size: "basic", Release: 1, Epoch: 1, State: grid.DynoStarting, CreatedAt: now, UpdatedAt: now},
		{ID: "d10", Host: "h1", App: "hello", Name: "web.10", Type: "web", Command: "./server", Size: "basic", Release: 1, State: grid.DynoCrashed, CreatedAt: now, UpdatedAt: now},
		{ID: "d3", Host: "h2", App: "hello", Name: "web.2", Type: "web", Command: "./server", Size: "basic", Release: 1, State: grid.DynoUp, CreatedAt: now, UpdatedAt: now},
	} {
		if err := ta.store.PutDyno(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	var ds []schema.Dyno
	ta.do("GET", "/apps/hello/dynos", nil).want(t, 200, &ds)
	var v1 schema.Release
	ta.do("GET", "/apps/hello/releases/1", nil).want(t, 200, &v1)
	rel1 := schema.ReleaseRef{ID: v1.ID, Version: 1}
	appRef := schema.Ref{ID: app.ID, Name: "hello"}
	want := []schema.Dyno{
		{ID: "d2", Name: "web.1", Type: "web", State: "starting", Command: "./server", Size: "Basic", Release: rel1, App: appRef, Host: &schema.Ref{ID: "h1", Name: "h1"}},
		{ID: "d3", Name: "web.2", Type: "web", State: "up", Command: "./server", Size: "Basic", Release: rel1, App: appRef, Host: &schema.Ref{ID: "h2", Name: "h2"}},
		{ID: "d10", Name: "web.10", Type: "web", State: "crashed", Command: "./server", Size: "Basic", Release: rel1, App: appRef, Host: &schema.Ref{ID: "h1", Name: "h1"}},
	}
	if diff := cmp.Diff(want, ds, cmpopts.IgnoreFields(schema.Dyno{}, "CreatedAt", "UpdatedAt")); diff != "" {
		t.Errorf("dynos (-want +got):\n%s", diff)
	}
	var raw []map[string]any
	ta.do("GET", "/apps/hello/dynos", nil).want(t, 200, &raw)
	if v, ok := raw[0]["attach_url"]; !ok || v != nil {
		t.Errorf("attach_url %v present %v", v, ok)
	}
	var d schema.Dyno
	ta.do("GET", "/apps/hello/dynos/web.2", nil).want(t, 200, &d)
	ta.do("GET", "/apps/hello/dynos/d3", nil).want(t, 200, &d)
	ta.do("GET", "/apps/hello/dynos/web.7", nil).wantError(t, 404, "not_found", "dyno")
}

// assigned lists the dyno ids that have assignments.
func (ta *testAPI) assigned() []string {
	ta.t.Helper()
	as, err := ta.store.Assignments(context.Background(), "")
	if err != nil {
		ta.t.Fatal(err)
	}
	var ids []string
	for _, a := range as {
		ids = append(ids, a.DynoID)
	}
	slices.Sort(ids)
	return ids
}

func (ta *testAPI) assign(as ...grid.Assignment) {
	ta.t.Helper()
	for _, a := range as {
		if err := ta.store.PutAssignment(context.Background(), a); err != nil {
			ta.t.Fatal(err)
		}
	}
}

func TestRestartAndStop(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	ta.seedFormation()
	ctx := context.Background()
	epochs := func() map[string]int {
		f, err := ta.store.Formation(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		return map[string]int{"web": f.Types["web"].Epoch, "worker": f.Types["worker"].Epoch}
	}
	var empty map[string]any
	ta.do("DELETE", "/apps/hello/dynos", nil).want(t, 202, &empty)
	if diff := cmp.Diff(map[string]int{"web": 1, "worker": 1}, epochs()); diff != "" || len(empty) != 0 {
		t.Errorf("epochs after restart all (-want +got):\n%s (body %v)", diff, empty)
	}
	ta.do("DELETE", "/apps/hello/formations/worker", nil).want(t, 202, nil)
	if diff := cmp.Diff(map[string]int{"web": 1, "worker": 2}, epochs()); diff != "" {
		t.Errorf("epochs after restart worker (-want +got):\n%s", diff)
	}
	ta.do("DELETE", "/apps/hello/formations/clock", nil).wantError(t, 404, "not_found", "formation")

	// Restarting or stopping one dyno removes its assignment.
	ta.assign(
		grid.Assignment{DynoID: "d2", App: "hello", Host: "h1", Name: "web.1", Type: "web"},
		grid.Assignment{DynoID: "d3", App: "hello", Host: "h2", Name: "web.2", Type: "web"},
		grid.Assignment{DynoID: "w1", App: "hello", Host: "h2", Name: "worker.1", Type: "worker"},
		grid.Assignment{DynoID: "o1", App: "other", Host: "h1", Name: "web.1", Type: "web"},
	)
	ta.do("DELETE", "/apps/hello/dynos/web.1", nil).want(t, 202, nil)
	ta.do("POST", "/apps/hello/dynos/d3/actions/stop", nil).want(t, 202, nil)
	ta.do("POST", "/apps/hello/dynos/web.9/actions/stop", nil).wantError(t, 404, "not_found", "dyno")
	if diff := cmp.Diff([]string{"o1", "w1"}, ta.assigned()); diff != "" {
		t.Errorf("assignments after restart/stop (-want +got):\n%s", diff)
	}
	ta.do("POST", "/apps/hello/formations/worker/actions/stop", nil).want(t, 202, nil)
	if diff := cmp.Diff([]string{"o1"}, ta.assigned()); diff != "" {
		t.Errorf("assignments after stopping workers (-want +got):\n%s", diff)
	}
}

func TestDeleteApp(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	ta.seedFormation()
	ta.assign(
		grid.Assignment{DynoID: "d9", App: "hello", Host: "h1", Name: "web.1", Type: "web"},
		grid.Assignment{DynoID: "o1", App: "other", Host: "h1", Name: "web.1", Type: "web"},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ta.logs.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var gone schema.App
	ta.do("DELETE", "/apps/hello", nil).want(t, 200, &gone)
	if gone.Name != "hello" {
		t.Errorf("delete returned %+v", gone)
	}
	ta.do("GET", "/apps/hello", nil).wantError(t, 404, "not_found", "^Couldn't find that app.$")
	ta.do("GET", "/apps/hello/releases", nil).wantError(t, 404, "not_found", "app")
	if _, err := ta.store.Release(ctx, "hello", 1); err == nil {
		t.Error("release v1 survived the app")
	}
	if f, err := ta.store.Formation(ctx, "hello"); err != nil || len(f.Types) != 0 {
		t.Errorf("formation survived the app: %+v %v", f, err)
	}
	if diff := cmp.Diff([]string{"o1"}, ta.assigned()); diff != "" {
		t.Errorf("assignments after delete (-want +got):\n%s", diff)
	}
	ta.do("DELETE", "/apps/hello", nil).wantError(t, 404, "not_found", "app")
	lines, err := ta.logs.Read(ctx, "hello", logs.Query{})
	if err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		t.Errorf("log line survived the app: %s", l.Format())
	}
}

func TestAppUpdate(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	var a schema.App
	ta.do("PATCH", "/apps/hello", map[string]any{"maintenance": true}).want(t, 200, &a)
	if !a.Maintenance {
		t.Error("maintenance not on")
	}
	ta.do("PATCH", "/apps/hello", map[string]any{"name": "other"}).wantError(t, 422, "invalid_params", "Renaming apps is not supported")
	ta.do("PATCH", "/apps/hello", map[string]any{"name": "hello", "maintenance": false}).want(t, 200, &a)
	if a.Maintenance {
		t.Error("maintenance not off")
	}
}

func TestAuthAndConventions(t *testing.T) {
	ta := startAPI(t)
	ta.createApp("hello")
	ta.do("GET", "/apps", nil, "Authorization", "").wantError(t, 401, "unauthorized", "^Invalid credentials provided.$")
	ta.do("GET", "/apps", nil, "Authorization", "Bearer wrong").wantError(t, 401, "unauthorized", "Invalid credentials")
	ta.do("GET", "/apps", nil, "Authorization", "Basic OnRlc3Qta2V5").want(t, 200, nil) // ":test-key"
	ta.do("GET", "/apps", nil, "Accept", "application/vnd.heroku+json; version=3.sdk").want(t, 200, nil)
	ta.do("GET", "/apps", nil, "Accept", "").want(t, 200, nil)
	ta.do("GET", "/apps", nil, "Accept", "application/vnd.heroku+json; version=2").wantError(t, 406, "not_acceptable", "version=3")
	ta.do("GET", "/nope", nil).wantError(t, 404, "not_found", `endpoint was not found.*GET.*/nope`)
	ta.do("PUT", "/apps/hello", nil).wantError(t, 404, "not_found", "PUT")
	ta.do("GET", "/apps/nope", nil).wantError(t, 404, "not_found", "^Couldn't find that app.$")
	ta.do("GET", "/apps/NOPE/config-vars", nil).wantError(t, 404, "not_found", "app")
	var acct schema.Account
	ta.do("GET", "/account", nil).want(t, 200, &acct)
	if acct.Email != testEmail || acct.ID != accountID(testEmail) || acct.Name != "admin" {
		t.Errorf("account %+v", acct)
	}
	var a schema.App
	ta.do("POST", "/apps/hello", `{"maintenance":true}`, "X-Http-Method-Override", "PATCH").want(t, 200, &a)
	if !a.Maintenance {
		t.Error("method override ignored")
	}
	r := ta.do("GET", "/apps", nil)
	if r.header.Get("Accept-Ranges") == "" || r.header.Get("Content-Range") != "name hello..hello" {
		t.Errorf("range headers %v", r.header)
	}
}

func TestPanicIsJSON(t *testing.T) {
	ta := startAPI(t)
	ta.s.mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	ta.do("GET", "/boom", nil).wantError(t, 500, "internal_server_error", "Internal server error")
}

func TestGitPassThrough(t *testing.T) {
	ta := startAPI(t)
	ta.s.git = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "git "+r.URL.Path)
	})
	// No API key and no API Accept header: git authenticates itself.
	r := ta.do("GET", "/hello.git/info/refs?service=git-receive-pack", nil, "Authorization", "", "Accept", "*/*")
	if r.status != 200 || string(r.body) != "git /hello.git/info/refs" {
		t.Errorf("git: %d %s", r.status, r.body)
	}
	ta.do("GET", "/.git/x", nil).wantError(t, 404, "not_found", "endpoint")
}
