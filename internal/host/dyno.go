package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/slug"
)

// killWait bounds the wait for a sandbox to exit after SIGKILL; Destroy
// follows either way.
const killWait = 10 * time.Second

// dyno runs one assignment. Its goroutine (run) owns it; the watch loop
// only calls stop and leave.
//
//	run ─► adopted sandbox? ──────────────────────────────────┐
//	  │                                                         ▼
//	  └► attempt: starting ─► slug ─► sandbox ─► (web: listening) ─► up
//	       ▲                            │ exit / R10        │ exit
//	       │ back-off (not one-off)     ▼                   ▼
//	       └───────────────────────── crashed ◄─────────────┘
//	stop (ctx cancelled) at any point: down, SIGTERM, grace, SIGKILL,
//	destroy the sandbox, delete the record.
//	leave (ctx cancelled, leaving set): the sandbox is detached and runs
//	on for the next agent; the record stays as it is.
type dyno struct {
	a       *Agent
	asg     grid.Assignment
	cancel  context.CancelFunc
	leaving atomic.Bool
	rec     grid.Dyno // the record as last written
	log     *slog.Logger
	next    int // number of the next attempt (its sandbox ID)
	// inherited are the sandboxes an earlier agent left for this dyno,
	// adopted, newest first: the first, if running, is resumed; the
	// others are destroyed.
	inherited []inherited
	lastR14   time.Time        // when R14 was last logged (memory.go)
	r15Logged *sandbox.Sandbox // the sandbox R15 was logged for
}

type inherited struct {
	sb   *sandbox.Sandbox
	out  io.WriteCloser // its output, for this agent's log
	port int
}

// outcome is how a dyno's sandbox ended.
type outcome int

const (
	noSandbox outcome = iota // nothing ran (no inherited sandbox)
	crashed                  // it exited (or never started): the record says crashed
	stopped                  // stopped on purpose: the record is deleted
	left                     // the agent is leaving: it runs on, detached
)

func newDyno(a *Agent, asg grid.Assignment, cancel context.CancelFunc) *dyno {
	now := a.now().UTC()
	return &dyno{
		a: a, asg: asg, cancel: cancel,
		log: a.log.With("app", asg.App, "dyno", asg.Name, "dyno_id", asg.DynoID),
		rec: grid.Dyno{
			ID: asg.DynoID, App: asg.App, Name: asg.Name, Type: asg.Type, Command: asg.Command,
			Size: asg.Size, Release: asg.Release, Epoch: asg.Epoch, Host: a.cfg.ID, CreatedAt: now,
		},
	}
}

// stop asks the dyno to stop; run returns once it has.
func (d *dyno) stop() { d.cancel() }

// leave asks the dyno to let its sandbox run on without this agent; run
// returns at once.
func (d *dyno) leave() {
	d.leaving.Store(true)
	d.cancel()
}

// run resumes an inherited sandbox or starts the dyno, and restarts it
// after crashes, until ctx ends; then it stops (or leaves) it.
func (d *dyno) run(ctx context.Context) {
	crashes := 0
	ran, how := d.resume(ctx)
	for {
		switch how {
		case stopped, left:
			return
		case crashed:
			if d.asg.OneOff {
				<-ctx.Done() // the manager removes finished one-off dynos
				d.forget()
				return
			}
			var wait time.Duration
			wait, crashes = d.a.cfg.Backoff.Next(crashes, ran)
			d.log.Info("dyno crashed", "exit_code", d.rec.ExitCode, "ran", ran, "restart_in", wait)
			if !sleep(ctx, wait) {
				d.forget()
				return
			}
			d.rec.Restarts++
		}
		ran, how = d.attempt(ctx)
	}
}

// resume supervises the newest inherited sandbox if it still runs, and
// destroys the others. A dyno that exited while no agent watched is a
// crash, restarted as any other.
func (d *dyno) resume(ctx context.Context) (time.Duration, outcome) {
	ins := d.inherited
	d.inherited = nil
	if len(ins) == 0 {
		return 0, noSandbox
	}
	for _, in := range ins[1:] {
		d.destroy(in.sb)
		in.out.Close()
	}
	in := ins[0]
	defer in.out.Close()
	if isDone(in.sb.Done()) {
		code, _ := in.sb.Wait()
		d.log.Info("dyno exited while no agent watched", "exit_code", code)
		d.heroku("Process exited with status %d", code)
		d.destroy(in.sb)
		d.crashed(code)
		return d.a.now().Sub(in.sb.Started()), crashed
	}
	d.log.Info("dyno adopted", "pid", in.sb.Pid(), "addr", in.sb.Addr(), "state", d.rec.State)
	return d.supervise(ctx, in.sb, in.port, in.sb.Started(), true)
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// attempt starts the dyno once and supervises it until it exits (a crash:
// the record says crashed, the sandbox is gone) or ctx ends (stopped, or
// left). ran is how long it ran.
func (d *dyno) attempt(ctx context.Context) (ran time.Duration, how outcome) {
	begin := d.a.now()
	n := d.next
	d.next++
	if d.rec.State == grid.DynoCrashed {
		d.heroku("State changed from crashed to starting")
	}
	d.rec.Addr, d.rec.ExitCode = "", 0
	d.put(grid.DynoStarting)
	if n == 0 {
		switch d.asg.Reason {
		case "cycle":
			d.heroku("Cycling")
		case "hung":
			d.heroku("Restarting: the routers found the previous %s hung", d.asg.Name)
		}
	}
	d.heroku("Starting process with command `%s`", d.asg.Command)
	dir, err := d.a.cfg.Slugs.Path(ctx, d.asg.SlugID, d.asg.UID, func(ctx context.Context) (io.ReadCloser, error) {
		return d.a.cfg.Store.OpenSlug(ctx, d.asg.SlugID)
	})
	if err != nil {
		return d.failedStart(ctx, begin, "slug unavailable", err)
	}
	port := 10000 + rand.IntN(50000)
	out := d.a.cfg.Logs.Writer(d.asg.App, "app", d.asg.Name)
	defer out.Close()
	spec := d.spec(n, dir, port, out)
	var at *attached
	if d.asg.Attach {
		if at, err = d.a.runs.await(ctx, d.asg.DynoID, d.a.cfg.AttachWait); err != nil {
			if ctx.Err() == nil {
				d.heroku("Error: no client attached within %s", d.a.cfg.AttachWait)
			}
			return d.failedStart(ctx, begin, "one-off dyno not attached", err)
		}
		defer at.close()
		spec.Stdin, spec.Stdout, spec.Stderr = at.stdin, at, at
		if d.asg.TTY {
			spec.TTY = &at.size
		}
	}
	sb, err := d.a.cfg.Sandboxes.Start(ctx, spec)
	if err != nil {
		if at != nil {
			at.exit(-1)
		}
		return d.failedStart(ctx, begin, "sandbox start failed", err)
	}
	if d.asg.OneOff {
		go d.limitOneOff(ctx, sb, at)
	}
	ran, how = d.supervise(ctx, sb, port, begin, false)
	if at != nil && how != left {
		code, _ := sb.Wait()
		at.exit(code)
	}
	return ran, how
}

// limitOneOff ends a one-off dyno, as Heroku does, once it is RunMaxAge
// (or its TimeToLive) old, once its session has been idle for RunIdle,
// or once its client hangs up (SIGHUP, as a terminal closing would
// send); each gets SIGTERM-grace-SIGKILL after. It returns when the
// sandbox exits or the dyno is stopped.
func (d *dyno) limitOneOff(ctx context.Context, sb *sandbox.Sandbox, at *attached) {
	maxAge := d.a.cfg.RunMaxAge
	if ttl := time.Duration(d.asg.TimeToLive) * time.Second; ttl > 0 && ttl < maxAge {
		maxAge = ttl
	}
	deadline := time.NewTimer(max(d.asg.CreatedAt.Add(maxAge).Sub(d.a.now()), 0))
	defer deadline.Stop()
	var hangup <-chan struct{}
	var resize <-chan sandbox.WindowSize
	idleCheck := make(<-chan time.Time)
	if at != nil {
		hangup, resize = at.hangup, at.resize
		t := time.NewTicker(min(d.a.cfg.RunIdle/4, time.Minute))
		defer t.Stop()
		idleCheck = t.C
	}
	var why string
	first := syscall.SIGTERM
	for why == "" {
		select {
		case <-sb.Done():
			return
		case <-ctx.Done():
			return
		case ws := <-resize:
			if err := sb.Resize(ws); err != nil {
				d.log.Debug("resize", "err", err)
			}
		case <-idleCheck:
			if at.idle() >= d.a.cfg.RunIdle {
				why = fmt.Sprintf("idle for %s", at.idle().Round(time.Second))
			}
		case <-deadline.C:
			why = fmt.Sprintf("one-off dyno limit of %s reached", maxAge)
		case <-hangup:
			why, first = "client hung up", syscall.SIGHUP
		}
	}
	d.terminate(ctx, sb, first, why)
}

// terminate stops the sandbox as Heroku stops a dyno: sig to every
// process, StopGrace for the main one to exit, then R12 and SIGKILL for
// what is left. why, if any, is added to the log line. It gives up
// waiting when ctx ends.
func (d *dyno) terminate(ctx context.Context, sb *sandbox.Sandbox, sig syscall.Signal, why string) {
	name := unix.SignalName(sig)
	if why != "" {
		d.heroku("Stopping all processes with %s: %s", name, why)
	} else {
		d.heroku("Stopping all processes with %s", name)
	}
	if err := sb.Signal(sig); err != nil {
		d.log.Debug("signal", "signal", name, "err", err) // it may have exited just now
	}
	grace := time.NewTimer(d.a.cfg.StopGrace)
	defer grace.Stop()
	select {
	case <-sb.Done():
	case <-ctx.Done():
	case <-grace.C:
		d.heroku("Error R12 (Exit timeout) -> At least one process failed to exit within %d seconds of %s", seconds(d.a.cfg.StopGrace), name)
		d.heroku("Stopping remaining processes with SIGKILL")
		d.kill(sb)
	}
}

// size is the dyno's size, or the default for a name this host does not
// know.
func (d *dyno) size() grid.Size {
	size, err := grid.LookupSize(d.asg.Size)
	if err != nil {
		size, _ = grid.LookupSize(grid.DefaultSize)
	}
	return size
}

// spec describes the sandbox of attempt n.
func (d *dyno) spec(n int, dir string, port int, out io.Writer) sandbox.Spec {
	size := d.size()
	return sandbox.Spec{
		ID:         sandboxID(d.asg.DynoID, n),
		Hostname:   d.asg.DynoID,
		Args:       slug.ProcessCommand(d.asg.Command),
		Env:        slug.ProcessEnv(d.asg.Env, d.asg.Name, port),
		Dir:        "/app",
		UID:        d.asg.UID,
		GID:        d.asg.UID,
		AppDir:     dir,
		MemoryMB:   r15Factor * size.MemoryMB, // the kernel's OOM kill is R15 (memory.go)
		PidsMax:    size.MaxProcs,
		CPUShares:  size.CPUShares,
		CPUMilli:   size.CPUMilli,
		Idle:       size.Idle,
		DiskMBps:   size.DiskMBps,
		DiskIOPS:   size.DiskIOPS,
		EgressMbit: size.EgressMbit,
		CPUs:       d.asg.CPUs,
		Network:    true,
		Reach:      d.asg.Reach,
		Labels:     map[string]string{labelDyno: d.asg.DynoID, labelPort: strconv.Itoa(port)},
		Stdout:     out,
		Stderr:     out,
	}
}

// sandboxID is "d-<first 12 hex digits of the dyno ID>-<attempt>": unique
// among this host's sandboxes, as every attempt gets a fresh one.
func sandboxID(dynoID string, attempt int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(dynoID) {
		if b.Len() == 12 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return "d-" + b.String() + "-" + strconv.Itoa(attempt)
}

// failedStart handles a start that got no process: a stop during it, or
// a crash (the platform failed, not the app: no exit status).
func (d *dyno) failedStart(ctx context.Context, begin time.Time, what string, err error) (time.Duration, outcome) {
	if ctx.Err() != nil {
		if d.leaving.Load() {
			return 0, left
		}
		d.forget()
		return 0, stopped
	}
	d.log.Error("dyno "+what, "err", err)
	d.crashed(-1)
	return d.a.now().Sub(begin), crashed
}

// supervise waits for a web dyno to listen, marks the dyno up, and waits
// for it to exit or be stopped. An adopted sandbox that listens already
// (it was up) keeps its record as it is: no state change.
func (d *dyno) supervise(ctx context.Context, sb *sandbox.Sandbox, port int, begin time.Time, adopted bool) (time.Duration, outcome) {
	up := d.asg.Type != "web"
	if !up {
		if adopted && d.rec.State != grid.DynoStarting && d.rec.State != grid.DynoUp {
			d.put(grid.DynoStarting)
		}
		// Whatever of the boot timeout is left: an adopted dyno may have
		// been booting for a while already.
		boot := max(d.a.cfg.BootTimeout-d.a.now().Sub(begin), time.Second)
		bctx, cancel := context.WithTimeout(ctx, boot)
		err := sb.WaitListening(bctx, port)
		cancel()
		switch {
		case err == nil:
			up = true
		case ctx.Err() != nil:
			return d.end(ctx, sb)
		case errors.Is(err, context.DeadlineExceeded):
			d.heroku("Error R10 (Boot timeout) -> Web process failed to bind to $PORT within %d seconds of launch", seconds(d.a.cfg.BootTimeout))
			d.heroku("Stopping process with SIGKILL")
			d.kill(sb)
		}
	}
	if up {
		addr := netip.AddrPortFrom(sb.Addr(), uint16(port)).String()
		if !adopted || d.rec.State != grid.DynoUp || d.rec.Addr != addr {
			d.rec.Addr = addr
			d.put(grid.DynoUp)
			d.heroku("State changed from starting to up")
		}
	}
	check := time.NewTicker(d.a.cfg.MemoryCheck)
	defer check.Stop()
	var cpuCheck <-chan time.Time // nil for idle sizes: in the idle class for good (sandbox.Spec.Idle)
	if !d.size().Idle {
		t := time.NewTicker(d.a.cfg.CPUCheck)
		defer t.Stop()
		cpuCheck = t.C
	}
	cpu := &cpuWatch{sb: sb, limit: sb.CPULimit()}
	for {
		select {
		case <-sb.Done():
			d.exited(sb)
			return d.a.now().Sub(begin), crashed
		case <-ctx.Done():
			return d.end(ctx, sb)
		case <-check.C:
			d.checkMemory(sb)
		case <-cpuCheck:
			d.checkCPU(cpu)
		}
	}
}

// end handles ctx ending while the sandbox runs: stop it, or, when the
// agent leaves, let it run on.
func (d *dyno) end(ctx context.Context, sb *sandbox.Sandbox) (time.Duration, outcome) {
	if d.leaving.Load() {
		sb.Detach()
		d.log.Debug("dyno left running")
		return 0, left
	}
	d.stopSandbox(ctx, sb)
	return 0, stopped
}

// exited records a crash of a sandbox whose main process has exited (any
// exit is a crash, 0 included) and destroys the sandbox.
func (d *dyno) exited(sb *sandbox.Sandbox) {
	code, _ := sb.Wait()
	d.oomKilled(sb)
	d.heroku("Process exited with status %d", code)
	d.destroy(sb)
	d.crashed(code)
}

func (d *dyno) crashed(code int) {
	from := d.rec.State
	d.rec.Addr, d.rec.ExitCode = "", code
	d.put(grid.DynoCrashed)
	d.heroku("State changed from %s to crashed", from)
}

// stopSandbox stops a running dyno as Heroku does: marked down first (so
// routers drop it; an up web dyno then gets DrainDelay for them to act),
// SIGTERM to every process, StopGrace, SIGKILL; then its sandbox and its
// record are deleted.
func (d *dyno) stopSandbox(ctx context.Context, sb *sandbox.Sandbox) {
	from := d.rec.State
	d.rec.Addr = ""
	written := d.put(grid.DynoDown)
	if from == grid.DynoUp && d.asg.Type == "web" {
		// Routers learn of the down state from the store: wait for the
		// write, then for them. With NATS away they cannot learn it.
		if d.a.cfg.Store.Conn().IsConnected() {
			t := time.NewTimer(writeTimeout)
			select {
			case <-written:
			case <-t.C:
			}
			t.Stop()
		}
		sleep(context.Background(), d.a.cfg.DrainDelay)
	}
	d.terminate(context.Background(), sb, syscall.SIGTERM, "")
	code, _ := sb.Wait()
	d.heroku("Process exited with status %d", code)
	d.heroku("State changed from %s to down", from)
	d.destroy(sb)
	d.deleteRecord()
	d.log.Info("dyno stopped", "exit_code", code)
}

// kill SIGKILLs every process and waits (boundedly) for the exit.
func (d *dyno) kill(sb *sandbox.Sandbox) {
	if err := sb.Signal(syscall.SIGKILL); err != nil {
		d.log.Debug("sigkill", "err", err)
	}
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-sb.Done():
	case <-t.C:
		d.log.Error("sandbox still running after SIGKILL; destroying it")
		d.destroy(sb)
	}
}

// forget ends a dyno that has no process (crashed, waiting to restart,
// or stopped while starting): its record is deleted, unless the agent is
// leaving, when it stays for the next one.
func (d *dyno) forget() {
	if d.leaving.Load() {
		return
	}
	if d.rec.State != "" {
		d.heroku("State changed from %s to down", d.rec.State)
	}
	d.deleteRecord()
	d.log.Info("dyno stopped")
}

func (d *dyno) destroy(sb *sandbox.Sandbox) {
	if err := sb.Destroy(); err != nil {
		d.log.Error("sandbox destroy failed", "err", err)
	}
}

// put records the dyno in state st, in the background (see reporter);
// the channel is closed once the record is written.
func (d *dyno) put(st grid.DynoState) <-chan struct{} {
	d.rec.State, d.rec.UpdatedAt = st, d.a.now().UTC()
	return d.a.rep.put(d.rec)
}

func (d *dyno) deleteRecord() {
	d.a.rep.remove(grid.Dyno{Host: d.a.cfg.ID, App: d.asg.App, ID: d.asg.DynoID})
}

// heroku writes a heroku[<dyno>] line to the app's log.
func (d *dyno) heroku(format string, args ...any) {
	d.a.cfg.Logs.Write(logs.Line{Time: d.a.now().UTC(), App: d.asg.App, Source: "heroku", Dyno: d.asg.Name, Text: fmt.Sprintf(format, args...)})
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func seconds(d time.Duration) int { return int(math.Round(d.Seconds())) }
