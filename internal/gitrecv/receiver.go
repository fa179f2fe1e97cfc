package gitrecv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/dynogrid/grid/internal/grid"
)

// Push is one accepted push of a deploy branch, handed to a Deployer while
// git waits for the verdict.
type Push struct {
	// App is the app pushed to; a valid, existing app name.
	App string
	// User is the email of the account whose API key authenticated the push.
	User string
	// Ref is the pushed branch: refs/heads/main or refs/heads/master.
	Ref string
	// OldRev is the commit Ref pointed to before the push, or empty when
	// the branch is new.
	OldRev string
	// NewRev is the pushed commit, a full hex object name.
	NewRev string
	// Source is an uncompressed tar of NewRev's tree as `git archive`
	// writes it (no .git directory; .gitattributes export-ignore and
	// export-subst are not applied). It is readable only until Deploy
	// returns.
	Source io.Reader
	// Output is shown to the pusher live, each line prefixed "remote: " by
	// git. It is safe for concurrent use; writes fail once Deploy has
	// returned or the pusher has gone.
	Output io.Writer
}

// Deployer builds and releases a push. Deploy returning nil accepts the
// push (git updates the branch); an error rejects it, and its message is
// shown to the pusher. ctx ends when the pusher disconnects; a Deployer
// that wants to finish anyway must detach from it.
type Deployer interface {
	Deploy(ctx context.Context, p Push) error
}

// DeployerFunc adapts a function to a Deployer.
type DeployerFunc func(ctx context.Context, p Push) error

// Deploy calls f.
func (f DeployerFunc) Deploy(ctx context.Context, p Push) error { return f(ctx, p) }

// Config configures a Receiver. Fields are read by New only.
type Config struct {
	// ReposDir holds the bare repositories, ReposDir/<app>.git, each
	// created on the app's first push or fetch. The Receiver owns the
	// directory: it keeps its hook in ReposDir/.hooks and temporary files
	// in ReposDir/.tmp, which New clears. Required.
	ReposDir string
	// HookExe is the absolute path of the grid binary; git runs
	// `HookExe hook pre-receive` for every push. Required.
	HookExe string
	// Authenticate maps the HTTP Basic password, an API key, to the
	// account's email. The user name is ignored, as on Heroku. An error
	// wrapping grid.ErrUnavailable answers 503; any other error 401.
	// Required.
	Authenticate func(ctx context.Context, password string) (email string, err error)
	// AppExists returns nil if app exists, an error wrapping
	// grid.ErrNotFound if not (404), grid.ErrForbidden (403); anything
	// else answers 503. Required.
	AppExists func(ctx context.Context, app string) error
	// Deployer deploys pushes to main or master. Required.
	Deployer Deployer
	// Logger receives operational logs. Nil discards them.
	Logger *slog.Logger
	// MaxPushBytes caps one request body (the pushed pack). Zero means
	// 1 GiB.
	MaxPushBytes int64
	// MaxSourceBytes caps the uncompressed tar of the pushed tree. Zero
	// means 1 GiB, Heroku's limit on a checkout.
	MaxSourceBytes int64
}

// Receiver serves git smart HTTP for all apps. It is an http.Handler for
// the paths /<app>.git/info/refs, /<app>.git/git-receive-pack and
// /<app>.git/git-upload-pack; mount it at the root of its own origin (or
// strip a prefix). The server must not time out writes of a push response:
// it lasts as long as the build. Safe for concurrent use.
type Receiver struct {
	cfg       Config
	log       *slog.Logger
	git       string // absolute path of the git binary
	dir       string // absolute ReposDir
	hooksDir  string // core.hooksPath for every receive-pack
	tmpDir    string // same filesystem as the repos, for atomic renames
	maxPush   int64
	maxSource int64

	mu      sync.Mutex
	pushing map[string]bool // apps whose push is past its pre-receive hook; see session.run
}

// New checks cfg, writes the pre-receive hook and clears leftovers of a
// previous process.
func New(cfg Config) (*Receiver, error) {
	if cfg.ReposDir == "" || cfg.Authenticate == nil || cfg.AppExists == nil || cfg.Deployer == nil {
		return nil, fmt.Errorf("gitrecv: ReposDir, Authenticate, AppExists and Deployer are required: %w", grid.ErrInvalid)
	}
	if err := checkExecutable(cfg.HookExe); err != nil {
		return nil, err
	}
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("gitrecv: git is not installed: %v: %w", err, grid.ErrUnavailable)
	}
	dir, err := filepath.Abs(cfg.ReposDir)
	if err != nil {
		return nil, fmt.Errorf("gitrecv: repos dir %q: %v: %w", cfg.ReposDir, err, grid.ErrInvalid)
	}
	r := &Receiver{
		cfg:       cfg,
		log:       cfg.Logger,
		git:       git,
		dir:       dir,
		hooksDir:  filepath.Join(dir, ".hooks"),
		tmpDir:    filepath.Join(dir, ".tmp"),
		maxPush:   cfg.MaxPushBytes,
		maxSource: cfg.MaxSourceBytes,
		pushing:   make(map[string]bool),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.maxPush <= 0 {
		r.maxPush = 1 << 30
	}
	if r.maxSource <= 0 {
		r.maxSource = 1 << 30
	}
	if err := r.prepareDirs(cfg.HookExe); err != nil {
		return nil, err
	}
	return r, nil
}

func checkExecutable(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("gitrecv: HookExe %q must be an absolute path: %w", path, grid.ErrInvalid)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("gitrecv: HookExe: %v: %w", err, grid.ErrInvalid)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("gitrecv: HookExe %q is not an executable file: %w", path, grid.ErrInvalid)
	}
	return nil
}

// ServeHTTP serves one git smart HTTP request.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rt, herr := parseRequest(req)
	if herr != nil {
		herr.write(w)
		return
	}
	user, ok := r.authenticate(w, req)
	if !ok {
		return
	}
	if !r.checkApp(w, req, rt.app) {
		return
	}
	log := r.log.With("app", rt.app, "user", user, "service", string(rt.svc))
	switch {
	case rt.advertise:
		r.advertise(w, req, rt, log)
	case rt.svc == receivePack:
		r.receivePack(w, req, rt.app, user, log)
	default:
		r.uploadPack(w, req, rt.app, log)
	}
}

// authenticate checks the Basic password. On failure it has answered.
func (r *Receiver) authenticate(w http.ResponseWriter, req *http.Request) (string, bool) {
	if _, key, ok := req.BasicAuth(); ok && key != "" {
		email, err := r.cfg.Authenticate(req.Context(), key)
		if err == nil {
			return email, true
		}
		if errors.Is(err, grid.ErrUnavailable) {
			r.log.Warn("git authentication unavailable", "err", err)
			http.Error(w, "Authentication is unavailable right now; try again shortly.", http.StatusServiceUnavailable)
			return "", false
		}
		r.log.Info("git authentication rejected", "remote_addr", req.RemoteAddr)
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="grid"`)
	http.Error(w, "Authentication required: use your API key as the password.", http.StatusUnauthorized)
	return "", false
}

// checkApp answers 404 for invalid or unknown app names (the name is
// validated before anything touches the filesystem). On failure it has
// answered.
func (r *Receiver) checkApp(w http.ResponseWriter, req *http.Request, app string) bool {
	if grid.ValidateAppName(app) != nil {
		http.Error(w, "No such app: app names are 2 to 30 lowercase letters, digits and dashes.", http.StatusNotFound)
		return false
	}
	err := r.cfg.AppExists(req.Context(), app)
	switch {
	case err == nil:
		return true
	case errors.Is(err, grid.ErrNotFound):
		http.Error(w, fmt.Sprintf("No such app as %s.", app), http.StatusNotFound)
	case errors.Is(err, grid.ErrForbidden):
		http.Error(w, fmt.Sprintf("You do not have access to the app %s.", app), http.StatusForbidden)
	default:
		r.log.Warn("app lookup failed", "app", app, "err", err)
		http.Error(w, "Cannot look up the app right now; try again shortly.", http.StatusServiceUnavailable)
	}
	return false
}

// RemoveRepo deletes app's repository, for app destroy. A push in flight
// fails. Removing a repository that does not exist is not an error.
func (r *Receiver) RemoveRepo(app string) error {
	if err := grid.ValidateAppName(app); err != nil {
		return fmt.Errorf("gitrecv: remove repo: %w", err)
	}
	// Rename first so the repository disappears at once, not file by file.
	tmp, err := os.MkdirTemp(r.tmpDir, app+".removed-")
	if err != nil {
		return fmt.Errorf("gitrecv: remove repo of app %q: %v: %w", app, err, grid.ErrUnavailable)
	}
	err = os.Rename(r.repoPath(app), filepath.Join(tmp, "repo"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		os.Remove(tmp)
		return fmt.Errorf("gitrecv: remove repo of app %q: %v: %w", app, err, grid.ErrUnavailable)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("gitrecv: remove repo of app %q: %v: %w", app, err, grid.ErrUnavailable)
	}
	return nil
}

// tryLock takes app's push lock unless another push holds it.
func (r *Receiver) tryLock(app string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pushing[app] {
		return false
	}
	r.pushing[app] = true
	return true
}

func (r *Receiver) unlock(app string) {
	r.mu.Lock()
	delete(r.pushing, app)
	r.mu.Unlock()
}
