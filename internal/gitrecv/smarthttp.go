package gitrecv

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// service is a git program that smart HTTP runs.
type service string

const (
	receivePack service = "git-receive-pack"
	uploadPack  service = "git-upload-pack"
)

// route is a parsed smart HTTP request.
type route struct {
	app       string // not yet validated
	svc       service
	advertise bool // GET info/refs rather than POST of an RPC
}

// httpError is a request refused before authentication.
type httpError struct {
	status int
	msg    string
	allow  string // Allow header for 405
}

func (e *httpError) write(w http.ResponseWriter) {
	if e.allow != "" {
		w.Header().Set("Allow", e.allow)
	}
	http.Error(w, e.msg, e.status)
}

// parseRequest maps a request to a route. Only smart HTTP is served: the
// dumb protocol would expose repository files directly.
func parseRequest(req *http.Request) (route, *httpError) {
	app, rest, ok := parsePath(req.URL.Path)
	if !ok {
		return route{}, &httpError{status: http.StatusNotFound, msg: "Not a git repository path: git remotes look like https://<host>/<app>.git"}
	}
	switch rest {
	case "info/refs":
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			return route{}, &httpError{status: http.StatusMethodNotAllowed, msg: "Use GET.", allow: "GET, HEAD"}
		}
		svc := service(req.URL.Query().Get("service"))
		switch svc {
		case receivePack, uploadPack:
			return route{app: app, svc: svc, advertise: true}, nil
		case "":
			return route{}, &httpError{status: http.StatusForbidden, msg: "The dumb HTTP git protocol is not supported; use git 1.6.6 or later, which speaks smart HTTP."}
		default:
			return route{}, &httpError{status: http.StatusForbidden, msg: "Unsupported git service; only git-receive-pack and git-upload-pack are served."}
		}
	case string(receivePack), string(uploadPack):
		if req.Method != http.MethodPost {
			return route{}, &httpError{status: http.StatusMethodNotAllowed, msg: "Use POST.", allow: "POST"}
		}
		if req.Header.Get("Content-Type") != "application/x-"+rest+"-request" {
			return route{}, &httpError{status: http.StatusUnsupportedMediaType, msg: "Unsupported content type."}
		}
		return route{app: app, svc: service(rest)}, nil
	}
	return route{}, &httpError{status: http.StatusNotFound, msg: "Only smart HTTP git is served."}
}

// parsePath splits "/<app>.git/<rest>". The app is not validated.
func parsePath(p string) (app, rest string, ok bool) {
	p, ok1 := strings.CutPrefix(p, "/")
	first, rest, ok2 := strings.Cut(p, "/")
	app, ok3 := strings.CutSuffix(first, ".git")
	if !ok1 || !ok2 || !ok3 {
		return "", "", false
	}
	return app, rest, true
}

// advertise answers GET info/refs: the service banner and git's ref
// advertisement.
func (r *Receiver) advertise(w http.ResponseWriter, req *http.Request, rt route, log *slog.Logger) {
	repo, err := r.ensureRepo(req.Context(), rt.app)
	if err != nil {
		log.Error("create repo failed", "err", err)
		http.Error(w, "Cannot open the app's repository right now; try again shortly.", http.StatusServiceUnavailable)
		return
	}
	proto := gitProtocol(req)
	var out bytes.Buffer
	var stderr capBuffer
	cmd := r.command(req.Context(), protocolEnv(proto), r.serviceArgs(rt.svc, repo, true)...)
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	if err := r.run(cmd); err != nil {
		log.Error("git advertisement failed", "err", err, "stderr", stderr.String())
		http.Error(w, "git failed; try again.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/x-"+string(rt.svc)+"-advertisement")
	noCache(h)
	// Protocol v2 (upload-pack only) starts with git's own capability
	// advertisement; v0 and v1 expect the service banner first.
	if rt.svc != uploadPack || !strings.Contains(":"+proto+":", ":version=2:") {
		io.WriteString(w, pktLine("# service="+string(rt.svc)+"\n")+"0000")
	}
	w.Write(out.Bytes())
}

// uploadPack answers POST git-upload-pack (clone, fetch).
func (r *Receiver) uploadPack(w http.ResponseWriter, req *http.Request, app string, log *slog.Logger) {
	repo, err := r.ensureRepo(req.Context(), app)
	if err != nil {
		log.Error("create repo failed", "err", err)
		http.Error(w, "Cannot open the app's repository right now; try again shortly.", http.StatusServiceUnavailable)
		return
	}
	r.rpc(req.Context(), w, req, uploadPack, repo, log)
}

// receivePack answers POST git-receive-pack (push). It opens the socket the
// pre-receive hook reports to and serves the hook's session while git runs.
func (r *Receiver) receivePack(w http.ResponseWriter, req *http.Request, app, user string, log *slog.Logger) {
	repo, err := r.ensureRepo(req.Context(), app)
	if err != nil {
		log.Error("create repo failed", "err", err)
		http.Error(w, "Cannot open the app's repository right now; try again shortly.", http.StatusServiceUnavailable)
		return
	}
	// A private directory (0700 from MkdirTemp) in the system temp dir:
	// short enough for a socket path, reachable only by our uid.
	sockDir, err := os.MkdirTemp("", "gitrecv-")
	if err != nil {
		log.Error("hook socket failed", "err", err)
		http.Error(w, "Cannot accept pushes right now; try again shortly.", http.StatusServiceUnavailable)
		return
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "hook")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		log.Error("hook socket failed", "err", err)
		http.Error(w, "Cannot accept pushes right now; try again shortly.", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	s := &session{r: r, app: app, user: user, repo: repo, token: rand.Text(), log: log}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve(ctx, ln)
	}()
	err = r.rpc(ctx, w, req, receivePack, repo, log, envSocket+"="+sock, envToken+"="+s.token)
	cancel() // stops a Deploy whose hook is gone
	ln.Close()
	<-done
	if !s.locked {
		return
	}
	// The lock is held until git has updated (or refused) the refs, so no
	// other push's hook can see the refs in between.
	if err == nil && s.deployed != "" {
		if err := r.setHead(req.Context(), repo, s.deployed); err != nil {
			log.Warn("set HEAD failed", "err", err)
		}
	}
	r.unlock(app)
}

// rpc runs one stateless-rpc exchange of svc (content type checked by
// parseRequest): the request body is git's stdin, git's stdout streams to
// the response as it comes. It returns git's error, if any.
func (r *Receiver) rpc(ctx context.Context, w http.ResponseWriter, req *http.Request, svc service, repo string, log *slog.Logger, env ...string) error {
	body, herr := r.requestBody(w, req)
	if herr != nil {
		herr.write(w)
		return errors.New(herr.msg)
	}
	defer body.Close()
	rc := http.NewResponseController(w)
	// HTTP/1 would otherwise drop the rest of the body at the first write;
	// git may write progress before it has read the whole pack. HTTP/2 is
	// full duplex already and reports an error we can ignore.
	_ = rc.EnableFullDuplex()
	h := w.Header()
	h.Set("Content-Type", "application/x-"+string(svc)+"-result")
	noCache(h)
	out := &flushWriter{w: w, rc: rc}
	var stderr capBuffer
	cmd := r.command(ctx, append(protocolEnv(gitProtocol(req)), env...), r.serviceArgs(svc, repo, false)...)
	cmd.Stdin = body
	cmd.Stdout = out
	cmd.Stderr = &stderr
	start := time.Now()
	err := r.run(cmd)
	switch {
	case err != nil && ctx.Err() != nil:
		log.Info("git client went away", "err", err)
	case err != nil:
		log.Warn("git failed", "err", err, "stderr", stderr.String())
	default:
		log.Debug("git done", "duration", time.Since(start))
	}
	if err != nil && !out.wrote {
		http.Error(w, "git failed; try again.", http.StatusInternalServerError)
	}
	return err
}

// bodySlack is room above MaxPushBytes for the ref commands before the
// pack, so that an oversized pack is refused by git (receive.maxInputSize)
// with a message the pusher understands rather than cut off mid-stream.
const bodySlack = 1 << 20

// requestBody decodes the body and caps its size.
func (r *Receiver) requestBody(w http.ResponseWriter, req *http.Request) (io.ReadCloser, *httpError) {
	limit := r.maxPush + bodySlack
	body := http.MaxBytesReader(w, req.Body, limit)
	switch req.Header.Get("Content-Encoding") {
	case "", "identity":
		return body, nil
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(body)
		if err != nil {
			return nil, &httpError{status: http.StatusBadRequest, msg: "Bad gzip request body."}
		}
		return http.MaxBytesReader(w, gz, limit), nil
	}
	return nil, &httpError{status: http.StatusUnsupportedMediaType, msg: "Unsupported content encoding."}
}

// serviceArgs are git's arguments for svc on repo. Every receive-pack gets
// the receive policy on its command line, where a repository's own config
// cannot override it.
func (r *Receiver) serviceArgs(svc service, repo string, advertise bool) []string {
	var args []string
	if svc == receivePack {
		for _, kv := range r.receiveConfig() {
			args = append(args, "-c", kv)
		}
		args = append(args, "receive-pack", "--stateless-rpc")
	} else {
		args = append(args, "upload-pack", "--strict", "--stateless-rpc")
	}
	if advertise {
		args = append(args, "--advertise-refs")
	}
	return append(args, repo)
}

// command prepares git with a clean environment (nothing of this process's
// environment but PATH) in its own process group, which is killed when ctx
// ends: the group includes the pre-receive hook and its git archive.
func (r *Receiver) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, r.git, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"LC_ALL=C",
	}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs cmd from command and then kills whatever is left of its process
// group, so nothing outlives a request.
func (r *Receiver) run(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	err := cmd.Wait()
	// The group outlives its leader while members remain, and Linux does
	// not reuse a pid that is still a process group id.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return err
}

var gitProtocolRE = regexp.MustCompile(`^[A-Za-z0-9=:._-]{1,256}$`)

// gitProtocol returns the client's Git-Protocol header if it is well formed.
func gitProtocol(req *http.Request) string {
	p := req.Header.Get("Git-Protocol")
	if !gitProtocolRE.MatchString(p) {
		return ""
	}
	return p
}

func protocolEnv(proto string) []string {
	if proto == "" {
		return nil
	}
	return []string{"GIT_PROTOCOL=" + proto}
}

// pktLine encodes s as a git pkt-line.
func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

func noCache(h http.Header) {
	h.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
	h.Set("Pragma", "no-cache")
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
}

// flushWriter flushes every write so git's output reaches the client as it
// comes (build output, keepalives).
type flushWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	wrote bool // read only after the writer's user is done
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// capBuffer keeps the first 4 KiB written, for logging git's stderr.
type capBuffer struct{ b bytes.Buffer }

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := 4096 - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capBuffer) String() string { return strings.TrimSpace(c.b.String()) }
