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
	"syscall"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/slug"
)

// killWait bounds the wait for a sandbox to exit after SIGKILL; Destroy
// follows either way.
const killWait = 10 * time.Second

// dyno runs one assignment. Its goroutine (run) owns it; the watch loop
// only calls stop.
//
//	run ─► attempt: starting ─► slug ─► sandbox ─► (web: listening) ─► up
//	  ▲                                   │ exit / R10        │ exit
//	  │ back-off (not one-off)            ▼                   ▼
//	  └─────────────────────────────── crashed ◄──────────────┘
//	stop (ctx cancelled) at any point: down, SIGTERM, grace, SIGKILL,
//	destroy the sandbox, delete the record.
type dyno struct {
	a      *Agent
	asg    grid.Assignment
	cancel context.CancelFunc
	rec    grid.Dyno // the record as last written
	log    *slog.Logger
}

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

// run starts the dyno and restarts it after crashes until ctx ends, then
// stops it and deletes its record.
func (d *dyno) run(ctx context.Context) {
	crashes := 0
	for attempt := 0; ; attempt++ {
		ran, stopped := d.attempt(ctx, attempt)
		if stopped {
			return
		}
		if d.asg.OneOff {
			<-ctx.Done() // the manager removes finished one-off dynos
			d.forget(ctx)
			return
		}
		var wait time.Duration
		wait, crashes = d.a.cfg.Backoff.Next(crashes, ran)
		d.log.Info("dyno crashed", "exit_code", d.rec.ExitCode, "ran", ran, "restart_in", wait)
		if !sleep(ctx, wait) {
			d.forget(ctx)
			return
		}
		d.rec.Restarts++
	}
}

// attempt starts the dyno once and supervises it until it exits (a crash:
// the record says crashed, the sandbox is gone) or ctx ends (stopped is
// true: the dyno is stopped and its record deleted). ran is how long it
// ran.
func (d *dyno) attempt(ctx context.Context, n int) (ran time.Duration, stopped bool) {
	begin := d.a.now()
	if n > 0 {
		d.heroku("State changed from crashed to starting")
	}
	d.rec.Addr, d.rec.ExitCode = "", 0
	d.put(ctx, grid.DynoStarting)
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
	sb, err := d.a.cfg.Sandboxes.Start(ctx, d.spec(n, dir, port, out))
	if err != nil {
		return d.failedStart(ctx, begin, "sandbox start failed", err)
	}
	return d.supervise(ctx, sb, port, begin)
}

// spec describes the sandbox of attempt n.
func (d *dyno) spec(n int, dir string, port int, out io.Writer) sandbox.Spec {
	size, err := grid.LookupSize(d.asg.Size)
	if err != nil {
		size, _ = grid.LookupSize(grid.DefaultSize)
	}
	return sandbox.Spec{
		ID:        sandboxID(d.asg.DynoID, n),
		Hostname:  d.asg.DynoID,
		Args:      slug.ProcessCommand(d.asg.Command),
		Env:       slug.ProcessEnv(d.asg.Env, d.asg.Name, port),
		Dir:       "/app",
		UID:       d.asg.UID,
		GID:       d.asg.UID,
		AppDir:    dir,
		MemoryMB:  size.MemoryMB,
		PidsMax:   size.MaxProcs,
		CPUShares: size.CPUShares,
		Network:   true,
		Stdout:    out,
		Stderr:    out,
	}
}

// sandboxID is "d-<first 12 hex digits of the dyno ID>-<attempt>": unique
// among this host's live sandboxes, as every attempt gets a fresh one.
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
func (d *dyno) failedStart(ctx context.Context, begin time.Time, what string, err error) (time.Duration, bool) {
	if ctx.Err() != nil {
		d.forget(ctx)
		return 0, true
	}
	d.log.Error("dyno "+what, "err", err)
	d.crashed(ctx, -1)
	return d.a.now().Sub(begin), false
}

// supervise waits for a web dyno to listen, marks the dyno up, and waits
// for it to exit or be stopped.
func (d *dyno) supervise(ctx context.Context, sb *sandbox.Sandbox, port int, begin time.Time) (time.Duration, bool) {
	up := d.asg.Type != "web"
	if !up {
		bctx, cancel := context.WithTimeout(ctx, d.a.cfg.BootTimeout)
		err := sb.WaitListening(bctx, port)
		cancel()
		switch {
		case err == nil:
			up = true
		case ctx.Err() != nil:
			d.stopSandbox(ctx, sb)
			return 0, true
		case errors.Is(err, context.DeadlineExceeded):
			d.heroku("Error R10 (Boot timeout) -> Web process failed to bind to $PORT within %d seconds of launch", seconds(d.a.cfg.BootTimeout))
			d.heroku("Stopping process with SIGKILL")
			d.kill(sb)
		}
	}
	if up {
		d.rec.Addr = netip.AddrPortFrom(sb.Addr(), uint16(port)).String()
		d.put(ctx, grid.DynoUp)
		d.heroku("State changed from starting to up")
	}
	select {
	case <-sb.Done():
		d.exited(ctx, sb)
		return d.a.now().Sub(begin), false
	case <-ctx.Done():
		d.stopSandbox(ctx, sb)
		return 0, true
	}
}

// exited records a crash of a sandbox whose main process has exited (any
// exit is a crash, 0 included) and destroys the sandbox.
func (d *dyno) exited(ctx context.Context, sb *sandbox.Sandbox) {
	code, _ := sb.Wait()
	d.heroku("Process exited with status %d", code)
	d.destroy(sb)
	d.crashed(ctx, code)
}

func (d *dyno) crashed(ctx context.Context, code int) {
	from := d.rec.State
	d.rec.Addr, d.rec.ExitCode = "", code
	d.put(ctx, grid.DynoCrashed)
	d.heroku("State changed from %s to crashed", from)
}

// stopSandbox stops a running dyno as Heroku does: marked down first (so
// routers drop it; an up web dyno then gets DrainDelay for them to act),
// SIGTERM to every process, StopGrace, SIGKILL; then its sandbox and its
// record are deleted.
func (d *dyno) stopSandbox(ctx context.Context, sb *sandbox.Sandbox) {
	from := d.rec.State
	d.rec.Addr = ""
	d.put(ctx, grid.DynoDown)
	if from == grid.DynoUp && d.asg.Type == "web" {
		sleep(context.Background(), d.a.cfg.DrainDelay)
	}
	d.heroku("Stopping all processes with SIGTERM")
	if err := sb.Signal(syscall.SIGTERM); err != nil {
		d.log.Debug("sigterm", "err", err) // it may have exited just now
	}
	grace := time.NewTimer(d.a.cfg.StopGrace)
	defer grace.Stop()
	select {
	case <-sb.Done():
	case <-grace.C:
		d.heroku("Error R12 (Exit timeout) -> At least one process failed to exit within %d seconds of SIGTERM", seconds(d.a.cfg.StopGrace))
		d.heroku("Stopping remaining processes with SIGKILL")
		d.kill(sb)
	}
	code, _ := sb.Wait()
	d.heroku("Process exited with status %d", code)
	d.heroku("State changed from %s to down", from)
	d.destroy(sb)
	d.deleteRecord(ctx)
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

// forget stops a dyno that has no process (crashed, waiting to restart,
// or stopped while starting): its record is deleted.
func (d *dyno) forget(ctx context.Context) {
	if d.rec.State != "" {
		d.heroku("State changed from %s to down", d.rec.State)
	}
	d.deleteRecord(ctx)
	d.log.Info("dyno stopped")
}

func (d *dyno) destroy(sb *sandbox.Sandbox) {
	if err := sb.Destroy(); err != nil {
		d.log.Error("sandbox destroy failed", "err", err)
	}
}

// put writes the dyno's record in state st. Record writes outlive ctx: a
// stop (ctx ended) must still be reported.
func (d *dyno) put(ctx context.Context, st grid.DynoState) {
	d.rec.State, d.rec.UpdatedAt = st, d.a.now().UTC()
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if err := d.a.cfg.Store.PutDyno(wctx, d.rec); err != nil {
		d.log.Warn("dyno record write failed", "state", st, "err", err)
	}
}

func (d *dyno) deleteRecord(ctx context.Context) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if err := d.a.cfg.Store.DeleteDyno(wctx, grid.Dyno{Host: d.a.cfg.ID, App: d.asg.App, ID: d.asg.DynoID}); err != nil {
		d.log.Warn("dyno record delete failed", "err", err)
	}
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
