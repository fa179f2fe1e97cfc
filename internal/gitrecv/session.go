package gitrecv

import (
	"archive/tar"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// Deploy refs: Heroku deploys pushes to main or master only.
const (
	mainRef   = "refs/heads/main"
	masterRef = "refs/heads/master"
)

// helloTimeout bounds the wait for the hook's first frame once it has
// connected.
const helloTimeout = 30 * time.Second

// session is the Receiver's end of the conversation with one push's
// pre-receive hook. It lives as long as the receive-pack request that made
// its socket; the request handler reads locked and deployed after serve
// returns.
//
//	accept ─► hello (token, version) ─► lock app ─► plan refs ─┬─► nothing to deploy: exit 0
//	                                                           └─► ref unchanged since advertised?
//	                                                               ─► receive source ─► Deploy ─► exit 0 / 1
type session struct {
	r     *Receiver
	app   string
	user  string
	repo  string
	token string
	log   *slog.Logger

	locked   bool   // this push holds the app's push lock; the handler releases it after git exits
	deployed string // the ref Deploy accepted; empty if none
}

// serve accepts the one hook connection of this push and answers it. It
// returns when the conversation is over or ctx ends.
func (s *session) serve(ctx context.Context, ln net.Listener) {
	conn, err := ln.Accept()
	ln.Close() // one hook per push
	if err != nil {
		return // git finished without running the hook, or the request ended
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	fc := newFrameConn(conn)
	h, err := s.hello(conn, fc)
	if err != nil {
		s.log.Warn("hook refused", "err", err)
		return
	}
	if h.Version != protocolVersion {
		s.log.Warn("hook refused", "err", "protocol version mismatch", "version", h.Version)
		status := s.reject(fc.writer(frameOutput), "The grid binary changed while this push ran; push again.")
		fc.send(frameExit, []byte{byte(status)})
		return
	}
	status := s.run(ctx, fc, h.Updates)
	fc.send(frameExit, []byte{byte(status)})
}

// hello reads and checks the hook's first frame.
func (s *session) hello(conn net.Conn, fc *frameConn) (hello, error) {
	var h hello
	conn.SetReadDeadline(time.Now().Add(helloTimeout))
	defer conn.SetReadDeadline(time.Time{})
	t, p, err := fc.read()
	if err != nil {
		return h, err
	}
	if t != frameHello {
		return h, fmt.Errorf("first frame is %q, not hello", byte(t))
	}
	if err := json.Unmarshal(p, &h); err != nil {
		return h, err
	}
	if subtle.ConstantTimeCompare([]byte(h.Token), []byte(s.token)) != 1 {
		return h, errors.New("wrong token")
	}
	return h, nil
}

// run decides the push and returns the hook's exit status.
func (s *session) run(ctx context.Context, fc *frameConn, updates []update) int {
	out := fc.writer(frameOutput)
	// Held until git has applied the ref updates (see receivePack), so a
	// second push's hook never runs between our verdict and the ref update.
	if !s.r.tryLock(s.app) {
		return s.reject(out, fmt.Sprintf("another push to %s is in progress; wait for it to finish, then push again.", s.app))
	}
	s.locked = true
	p, err := planPush(updates)
	for _, note := range p.notes {
		fmt.Fprintln(out, note)
	}
	if err != nil {
		return s.reject(out, grid.Message(err))
	}
	if p.deploy == nil {
		return 0
	}
	return s.deploy(ctx, fc, out, *p.deploy)
}

// deploy receives the source of u and calls the Deployer.
func (s *session) deploy(ctx context.Context, fc *frameConn, out io.Writer, u update) int {
	log := s.log.With("ref", u.Ref, "rev", u.New)
	// git checks the old value only after the hook; a push that raced
	// another would be deployed and then fail to update the branch.
	cur, err := s.r.refValue(ctx, s.repo, u.Ref)
	if err != nil {
		log.Error("read ref failed", "err", err)
		return s.reject(out, "Cannot read the app's repository right now; try again shortly.")
	}
	if old := revOrEmpty(u.Old); cur != old {
		return s.reject(out, fmt.Sprintf("%s changed while this push was in flight; fetch and push again.", shortRef(u.Ref)))
	}
	src, err := os.CreateTemp(s.r.tmpDir, s.app+"-*.tar")
	if err != nil {
		log.Error("spool source failed", "err", err)
		return s.reject(out, "Cannot store the pushed source right now; try again shortly.")
	}
	defer os.Remove(src.Name())
	defer src.Close()
	paths, err := s.receiveSource(fc, u.New, src)
	if err != nil {
		log.Info("push rejected", "err", err)
		return s.reject(out, grid.Message(err))
	}
	fmt.Fprintf(out, "Updated %d paths from %s\nCompressing source files... done.\nBuilding source:\n\n", paths, u.New[:7])
	start := time.Now()
	err = s.callDeployer(ctx, Push{
		App:    s.app,
		User:   s.user,
		Ref:    u.Ref,
		OldRev: revOrEmpty(u.Old),
		NewRev: u.New,
		Source: src,
		Output: out,
	})
	if err != nil {
		log.Info("push rejected", "err", err, "duration", time.Since(start))
		return s.reject(out, grid.Message(err))
	}
	log.Info("push deployed", "duration", time.Since(start))
	s.deployed = u.Ref
	return 0
}

// receiveSource asks the hook for the tar of rev and spools it to f,
// rewound for reading. It returns the number of paths in the tree. Errors
// are for the pusher.
func (s *session) receiveSource(fc *frameConn, rev string, f *os.File) (int, error) {
	if err := fc.send(frameArchive, []byte(rev)); err != nil {
		return 0, fmt.Errorf("lost the connection to the hook: %v", err)
	}
	var size int64
	for {
		t, p, err := fc.read()
		if err != nil {
			return 0, fmt.Errorf("lost the connection to the hook: %v", err)
		}
		switch t {
		case frameData:
			if size += int64(len(p)); size > s.r.maxSource {
				return 0, fmt.Errorf("the pushed source is larger than the %s limit", formatSize(s.r.maxSource))
			}
			if _, err := f.Write(p); err != nil {
				s.log.Error("spool source failed", "err", err)
				return 0, errors.New("cannot store the pushed source right now; try again shortly")
			}
		case frameEnd:
			if len(p) > 0 {
				return 0, errors.New(string(p))
			}
			return countPaths(f)
		default:
			return 0, fmt.Errorf("unexpected message %q from the hook", byte(t))
		}
	}
}

// countPaths counts the files and symlinks in the tar f and rewinds it.
func countPaths(f io.ReadSeeker) (int, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	n := 0
	tr := tar.NewReader(f) // skips file contents by seeking
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("the pushed source is not a valid archive: %v", err)
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
			n++
		}
	}
	_, err := f.Seek(0, io.SeekStart)
	return n, err
}

// callDeployer calls the Deployer, turning a panic into a rejected push
// rather than a crash of every role in the process.
func (s *session) callDeployer(ctx context.Context, p Push) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("deployer panicked", "panic", v, "stack", string(debug.Stack()))
			err = errors.New("internal error while deploying; try again")
		}
	}()
	return s.r.cfg.Deployer.Deploy(ctx, p)
}

// reject prints msg Heroku-style and returns the exit status that makes
// git decline the push.
func (s *session) reject(out io.Writer, msg string) int {
	var b strings.Builder
	for line := range strings.Lines(strings.TrimSpace(msg)) {
		fmt.Fprintf(&b, " !     %s\n", strings.TrimRight(line, "\n"))
	}
	fmt.Fprintf(&b, "\n !     Push rejected to %s.\n\n", s.app)
	io.WriteString(out, b.String())
	return 1
}

// plan is what to do with the ref updates of one push.
type plan struct {
	deploy *update // nil when nothing deploys
	notes  []string
}

// planPush picks the update to deploy: main, else master. Other refs are
// stored without a build. Deleting a deploy branch rejects the push; other
// deletions are left to git, which refuses them (receive.denyDeletes).
func planPush(updates []update) (plan, error) {
	var p plan
	var main, master *update
	for i := range updates {
		u := &updates[i]
		switch u.Ref {
		case mainRef, masterRef:
			if isZero(u.New) {
				return p, fmt.Errorf("deleting %s is not allowed: the app deploys from it", shortRef(u.Ref))
			}
			if u.Ref == mainRef {
				main = u
			} else {
				master = u
			}
		default:
			if !isZero(u.New) {
				p.notes = append(p.notes, nonDeployNote(u.Ref))
			}
		}
	}
	switch {
	case main != nil && master != nil:
		p.deploy = main
		p.notes = append(p.notes, "Pushed to both main and master; only main deploys")
	case main != nil:
		p.deploy = main
	case master != nil:
		p.deploy = master
	}
	return p, nil
}

func nonDeployNote(ref string) string {
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		return fmt.Sprintf("Pushed tag %s; only main or master deploys", tag)
	}
	return fmt.Sprintf("Pushed to non-deploy branch %s; only main or master deploys", shortRef(ref))
}

// shortRef drops refs/heads/ from a branch name.
func shortRef(ref string) string {
	return strings.TrimPrefix(ref, "refs/heads/")
}

// revOrEmpty maps git's all-zero name to "".
func revOrEmpty(rev string) string {
	if isZero(rev) {
		return ""
	}
	return rev
}

// formatSize renders a byte limit for people.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
