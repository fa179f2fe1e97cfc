package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox"
	"github.com/dynogrid/grid/internal/slug"
)

// bootLines is how much of a failed web process's output the pusher sees.
const bootLines = 20

// bootCheck starts the web process of the built tree exactly as a dyno
// would run it and waits until it listens on $PORT, then stops it. A
// process that exits first or does not bind within BootTimeout rejects
// the deploy, showing its last lines of output.
func (b *Builder) bootCheck(ctx context.Context, j *job, command string, out *output) error {
	port := 10000 + rand.IntN(50000)
	logs := &tail{n: bootLines}
	spec := b.dynoSpec(ctx, j, "boot", "web", "web.1", command, port, logs)
	start := time.Now()
	sb, err := b.cfg.Sandboxes.Start(ctx, spec)
	if err != nil {
		return fmt.Errorf("boot check sandbox: %w", err)
	}
	defer func() {
		if err := sb.Destroy(); err != nil {
			b.log.Warn("boot sandbox destroy failed", "app", j.app.Name, "err", err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, b.cfg.BootTimeout)
	defer cancel()
	err = sb.WaitListening(wctx, port)
	took := time.Since(start)
	if err == nil {
		out.detail("web bound to $PORT in %.1fs", took.Seconds())
		sb.Stop(5 * time.Second)
		return nil
	}
	var why string
	select {
	case <-sb.Done():
		code, _ := sb.Wait()
		why = fmt.Sprintf("Push rejected: the web process exited with status %d before binding to $PORT", code)
	default:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("boot check: %w", err)
		}
		why = fmt.Sprintf("Push rejected: the web process did not bind to $PORT within %s", seconds(b.cfg.BootTimeout))
		sb.Stop(time.Second)
	}
	out.fail("%s", why)
	if l := logs.Lines(); len(l) > 0 {
		out.detail("Its last lines of output:")
		for _, s := range l {
			out.detail("  %s", s)
		}
	}
	return reject(fmt.Errorf("app %s: web process failed the boot check: %w", j.app.Name, grid.ErrInvalid), out)
}

// dynoSpec is a sandbox (ID kind-app-random) that runs command on the
// built tree as a dyno of process type typ would run it: at the type's
// size, with the app's config, $PORT and the dynos' network; its output
// goes to w.
func (b *Builder) dynoSpec(ctx context.Context, j *job, kind, typ, dyno, command string, port int, w io.Writer) sandbox.Spec {
	size, err := grid.LookupSize(b.typeSize(ctx, j.app.Name, typ))
	if err != nil {
		size, _ = grid.LookupSize(grid.DefaultSize)
	}
	return sandbox.Spec{
		ID:       sandboxID(kind, j.app.Name),
		Args:     slug.ProcessCommand(command),
		Env:      slug.ProcessEnv(j.app.Release.Config, dyno, port),
		Dir:      "/app",
		UID:      j.app.UID,
		GID:      j.app.UID,
		AppDir:   j.dir,
		Network:  true,
		Reach:    j.app.Release.Reach,
		MemoryMB: size.MemoryMB, PidsMax: size.MaxProcs, CPUShares: size.CPUShares, CPUMilli: size.CPUMilli,
		DiskMBps: size.DiskMBps, DiskIOPS: size.DiskIOPS, EgressMbit: size.EgressMbit,
		Stdout: w, Stderr: w,
	}
}

// typeSize is the dyno size the app's dynos of a process type run at;
// empty (the default size) for a type without a formation entry.
func (b *Builder) typeSize(ctx context.Context, app, typ string) string {
	f, err := b.cfg.Store.Formation(ctx, app)
	if err != nil {
		return grid.DefaultSize
	}
	return f.Types[typ].Size
}

// seconds renders a duration as the boot messages do: "60 seconds".
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d seconds", int(d/time.Second))
	}
	return d.String()
}
