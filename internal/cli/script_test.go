package cli_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/dynogrid/grid/internal/api"
	"github.com/dynogrid/grid/internal/cli"
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/localca"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store"
)

// The scripts run `grid` as a command: this test binary, re-executed,
// calls cli.Main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"grid": gridMain})
}

func gridMain() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	wd, _ := os.Getwd()
	code := cli.Main(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Dir: wd})
	stop()
	os.Exit(code)
}

const (
	scriptKey   = "script-key"
	scriptEmail = "admin@example.com"
)

// TestScripts runs testdata/script/*.txtar, each against its own API on
// its own embedded NATS. The environment has GRID_API_URL and
// GRID_API_KEY set, HOME=$WORK/home and TZ=UTC; $API is the API URL.
//
// Extra script commands seed what builds and hosts would produce here:
//
//	seed-formation APP TYPE=COMMAND...  process types of a slug
//	seed-deploy APP COMMIT              a release with a slug
//	seed-dyno APP NAME STATE            a dyno record
//	seed-assignment APP NAME            an assignment for the dyno NAME
//	seed-log APP SOURCE DYNO TEXT...    a log line
//	formation APP                       print TYPE qty SIZE epoch=N lines
//	assignments APP                     print the app's assigned dyno names
//	seed-host ID MEMORY_MB [lost]       a host record (heartbeat now, or 1m ago)
//	host-control ID                     print a host's control record
//	issue-cert [-expired] CRT KEY NAME... a certificate for NAMEs from a fresh CA
//
// The API's host provider (hosts:add, hosts:fail) is scriptHosts.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: setupGrid,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"seed-formation":  seedFormation,
			"seed-deploy":     seedDeploy,
			"seed-dyno":       seedDyno,
			"seed-assignment": seedAssignment,
			"seed-log":        seedLog,
			"formation":       printFormation,
			"assignments":     printAssignments,
			"seed-host":       seedHost,
			"host-control":    printHostControl,
			"issue-cert":      issueCert,
		},
	})
}

type grids struct {
	store *store.Store
	logs  *logs.Log
}

func setupGrid(env *testscript.Env) error {
	dir, err := os.MkdirTemp("", "grid-cli-nats")
	if err != nil {
		return err
	}
	env.Defer(func() { os.RemoveAll(dir) })
	srv, err := store.StartServer(store.ServerConfig{Dir: dir, Secret: []byte("t")})
	if err != nil {
		return err
	}
	env.Defer(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := store.Role{Kind: store.RoleServer, ID: "cli-test"}
	st, err := store.Open(ctx, store.Config{URL: srv.ClientURL(), Role: admin, Password: admin.Password([]byte("t")), Name: "cli-test"})
	if err != nil {
		return err
	}
	env.Defer(st.Close)
	lg, err := logs.Open(ctx, st)
	if err != nil {
		return err
	}
	env.Defer(lg.Close)
	if err := st.PutAPIKey(ctx, scriptKey, scriptEmail); err != nil {
		return err
	}
	h := httptest.NewUnstartedServer(nil)
	url := "http://" + h.Listener.Addr().String()
	h.Config.Handler = api.New(api.Config{
		Store: st, Logs: lg, Domain: "grid.test", BaseURL: url,
		SessionSecret: []byte("secret"),
		Logger:        slog.New(slog.DiscardHandler),
		Hosts:         &scriptHosts{st: st},
		RolePassword:  func(r store.Role) string { return "pw-" + string(r.Kind) + "-" + r.ID },
	})
	h.Start()
	env.Defer(h.Close)
	env.Values["grid"] = grids{st, lg}
	home := filepath.Join(env.WorkDir, "home")
	env.Setenv("HOME", home)
	env.Setenv("API", url)
	env.Setenv("APIHOST", h.Listener.Addr().String())
	env.Setenv("GRID_API_URL", url)
	env.Setenv("GRID_API_KEY", scriptKey)
	env.Setenv("TZ", "UTC")
	// For git, which the scripts use to make remotes.
	env.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	return os.MkdirAll(home, 0o755)
}

func gridOf(ts *testscript.TestScript) grids { return ts.Value("grid").(grids) }

func seedFormation(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: seed-formation APP TYPE=COMMAND...")
	}
	types := map[string]string{}
	for _, a := range args[1:] {
		t, c, _ := strings.Cut(a, "=")
		types[t] = c
	}
	_, err := gridOf(ts).store.UpdateFormation(context.Background(), args[0], func(f *grid.Formation) error {
		*f = f.WithProcessTypes(types)
		return nil
	})
	ts.Check(err)
}

func seedDeploy(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: seed-deploy APP COMMIT")
	}
	st, slugID := gridOf(ts).store, "slug-"+args[1]
	ts.Check(st.PutSlug(context.Background(), grid.Slug{ID: slugID, App: args[0], Commit: args[1]}, strings.NewReader("archive")))
	_, err := st.CommitRelease(context.Background(), args[0], func(cur grid.App) (grid.Release, error) {
		return grid.Release{Description: grid.DeployDescription(args[1]), SlugID: slugID, Commit: args[1], Config: cur.Release.Config, User: scriptEmail}, nil
	})
	ts.Check(err)
}

func seedDyno(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: seed-dyno APP NAME STATE")
	}
	ctx := context.Background()
	st := gridOf(ts).store
	a, err := st.App(ctx, args[0])
	ts.Check(err)
	f, err := st.Formation(ctx, args[0])
	ts.Check(err)
	typ, _, _ := strings.Cut(args[1], ".")
	ft := f.Types[typ]
	now := time.Now().UTC()
	ts.Check(st.PutDyno(ctx, grid.Dyno{
		ID: dynoID(args[1]), App: args[0], Name: args[1], Type: typ, Command: ft.Command, Size: ft.Size,
		Release: a.Release.Version, Epoch: ft.Epoch, Host: "h1", State: grid.DynoState(args[2]),
		CreatedAt: now.Add(-time.Minute), UpdatedAt: now.Add(-2 * time.Second),
	}))
}

func seedAssignment(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: seed-assignment APP NAME")
	}
	typ, _, _ := strings.Cut(args[1], ".")
	ts.Check(gridOf(ts).store.PutAssignment(context.Background(), grid.Assignment{
		DynoID: dynoID(args[1]), App: args[0], Host: "h1", Name: args[1], Type: typ,
	}))
}

// dynoID is a store-safe id for a dyno name: keys are dot-separated.
func dynoID(name string) string { return "d-" + strings.ReplaceAll(name, ".", "-") }

func seedLog(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 4 {
		ts.Fatalf("usage: seed-log APP SOURCE DYNO TEXT...")
	}
	g := gridOf(ts)
	g.logs.Write(logs.Line{App: args[0], Source: args[1], Dyno: args[2], Text: strings.Join(args[3:], " ")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts.Check(g.logs.Flush(ctx))
}

func printFormation(ts *testscript.TestScript, neg bool, args []string) {
	f, err := gridOf(ts).store.Formation(context.Background(), args[0])
	ts.Check(err)
	for _, t := range f.SortedTypes() {
		ft := f.Types[t]
		fmt.Fprintf(ts.Stdout(), "%s %d %s epoch=%d\n", t, ft.Quantity, ft.Size, ft.Epoch)
	}
}

func printAssignments(ts *testscript.TestScript, neg bool, args []string) {
	as, err := gridOf(ts).store.Assignments(context.Background(), "")
	ts.Check(err)
	var names []string
	for _, a := range as {
		if a.App == args[0] {
			names = append(names, a.Name)
		}
	}
	slices.Sort(names)
	fmt.Fprintln(ts.Stdout(), strings.Join(names, " "))
}

// scriptHosts is a host provider as cmd/grid wires one: Add records the
// control record of a new netns host (h100, h101, ...), Fail accepts
// netns hosts only.
type scriptHosts struct {
	st *store.Store
	n  int
}

func (h *scriptHosts) Add(ctx context.Context) (grid.HostControl, error) {
	id := fmt.Sprintf("h%d", 100+h.n)
	h.n++
	return h.st.UpdateHostControl(ctx, id, func(c *grid.HostControl) error {
		c.Provider, c.Handle, c.Since = "netns", "gridh"+id[1:], time.Now().UTC()
		return nil
	})
}

func (h *scriptHosts) Fail(ctx context.Context, id string) error { return h.netns(ctx, id, "fail") }

func (h *scriptHosts) Cut(ctx context.Context, id string, cut bool) error {
	return h.netns(ctx, id, "be cut off")
}

func (h *scriptHosts) netns(ctx context.Context, id, what string) error {
	ctls, err := h.st.HostControls(ctx)
	if err != nil {
		return err
	}
	for _, c := range ctls {
		if c.ID == id && c.Provider == "netns" {
			return nil
		}
		if c.ID == id {
			return fmt.Errorf("host %s was not made by the netns provider; only netns hosts can %s: %w", id, what, grid.ErrInvalid)
		}
	}
	return fmt.Errorf("host %s: %w", id, grid.ErrNotFound)
}

func seedHost(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: seed-host ID MEMORY_MB [lost]")
	}
	mem, err := strconv.Atoi(args[1])
	ts.Check(err)
	now := time.Now().UTC()
	beat := now
	if len(args) > 2 && args[2] == "lost" {
		beat = now.Add(-time.Minute)
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(args[0], "h"))
	ts.Check(gridOf(ts).store.PutHost(context.Background(), grid.Host{
		ID: args[0], Addr: fmt.Sprintf("10.199.0.%d", n+1), Subnet: "10.208.0.0/20", Cores: 2, MemoryMB: mem,
		StartedAt: now.Add(-time.Hour), HeartbeatAt: beat,
	}))
}

func printHostControl(ts *testscript.TestScript, neg bool, args []string) {
	ctls, err := gridOf(ts).store.HostControls(context.Background())
	ts.Check(err)
	for _, c := range ctls {
		if c.ID == args[0] {
			fmt.Fprintf(ts.Stdout(), "%s draining=%v provider=%s handle=%s\n", c.ID, c.Draining, c.Provider, c.Handle)
		}
	}
}

func issueCert(ts *testscript.TestScript, neg bool, args []string) {
	at := time.Now()
	if len(args) > 0 && args[0] == "-expired" {
		at, args = at.Add(-2*localca.LeafValidity), args[1:]
	}
	if len(args) < 3 {
		ts.Fatalf("usage: issue-cert [-expired] CRT KEY NAME...")
	}
	ca, err := localca.Ensure(ts.MkAbs("ca-"+filepath.Base(args[0])), at)
	ts.Check(err)
	crt, key, err := ca.Issue(args[2:], at)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), crt, 0o644))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), key, 0o600))
}
