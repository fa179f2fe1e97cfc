package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
)

// The release phase (Heroku's "release:" process type) runs once per
// deploy, after the boot check and before the release goes live: a
// database migration, say. It runs as a one-off dyno of the new slug
// would (same sandbox, size, config and network as the app's dynos) on
// the building server, named release.NNNN in the logs. If it exits 0
// the release is committed; otherwise the push fails, a failed release
// is recorded under the next version and the current one keeps serving.

// runRelease runs command and reports whether the push may go on; on
// failure it has recorded the failed release and told the pusher.
func (b *Builder) runRelease(ctx context.Context, j *job, req Request, command string, out *output) error {
	dyno := fmt.Sprintf("release.%d", 1000+rand.IntN(9000))
	app := j.app.Name
	out.step("Running release command...")
	b.apiLog(app, "Running release command by user %s", req.User)
	b.herokuLog(app, dyno, "Starting process with command `%s`", command)
	logw := io.WriteCloser(nopCloser{io.Discard})
	if b.cfg.Logs != nil {
		logw = b.cfg.Logs.Writer(app, "app", dyno)
	}
	w := io.MultiWriter(out, logw)
	code, took, err := b.runDyno(ctx, j, dyno, command, w)
	logw.Close()
	switch {
	case err == nil && code == 0:
		b.herokuLog(app, dyno, "Process exited with status 0")
		out.detail("Release command succeeded in %.1fs", took.Seconds())
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		b.herokuLog(app, dyno, "Stopping process: the release command ran past its %s limit", b.cfg.ReleaseTimeout)
		err = fmt.Errorf("the release command ran past its %s limit", b.cfg.ReleaseTimeout)
	case err != nil:
		return err
	default:
		b.herokuLog(app, dyno, "Process exited with status %d", code)
		err = fmt.Errorf("the release command exited with status %d", code)
	}
	failed, rerr := b.cfg.Store.RecordFailedRelease(ctx, app, grid.Release{
		Description: grid.DeployDescription(req.Commit), Commit: req.Commit, Config: j.app.Release.Config, User: req.User,
	})
	if rerr != nil {
		return rerr
	}
	b.apiLog(app, "Release v%d command failed by user %s", failed.Version, req.User)
	return reject(fmt.Errorf("app %s: %w: %w", app, err, grid.ErrInvalid), out,
		fmt.Sprintf("Push rejected: %s.", err),
		fmt.Sprintf("Release v%d is marked failed; v%d keeps serving. See grid logs --dyno %s.", failed.Version, j.app.Release.Version, dyno))
}

// runDyno runs command in a sandbox like a dyno of the built tree and
// waits for it to exit, at most ReleaseTimeout.
func (b *Builder) runDyno(ctx context.Context, j *job, dyno, command string, w io.Writer) (code int, took time.Duration, err error) {
	start := time.Now()
	sb, err := b.cfg.Sandboxes.Start(ctx, b.dynoSpec(ctx, j, "release", "release", dyno, command, 10000+rand.IntN(50000), w))
	if err != nil {
		return -1, 0, fmt.Errorf("release command sandbox: %w", err)
	}
	defer func() {
		if err := sb.Destroy(); err != nil {
			b.log.Warn("release sandbox destroy failed", "app", j.app.Name, "err", err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, b.cfg.ReleaseTimeout)
	defer cancel()
	select {
	case <-sb.Done():
		code, err = sb.Wait()
		return code, time.Since(start), err
	case <-wctx.Done():
		sb.Stop(5 * time.Second)
		return -1, time.Since(start), wctx.Err()
	}
}

// herokuLog writes a platform line (heroku[release.1234]: ...).
func (b *Builder) herokuLog(app, dyno, format string, args ...any) {
	b.cfg.Logs.Write(logs.Line{App: app, Source: "heroku", Dyno: dyno, Text: fmt.Sprintf(format, args...)})
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
