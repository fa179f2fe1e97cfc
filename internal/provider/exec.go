package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// ExecConfig configures an Exec provider.
type ExecConfig struct {
	// Script is the operator's program (docs/hosts.md). Required.
	Script string
	// Join is the NATS URLs new hosts join, comma-separated, given to the
	// script as GRID_JOIN. Empty: the script knows them itself.
	Join string
	// Password returns a host's NATS password, given to `provision` as
	// GRID_HOST_PASSWORD for the id in GRID_HOST_ID. Nil gives none.
	Password func(id string) string
	// Timeout bounds each run of the script; it and everything it
	// started are killed after it. Zero means 10 minutes.
	Timeout time.Duration
	// Logger receives lifecycle logs. Nil discards them.
	Logger *slog.Logger
}

// Exec provisions and releases hosts by running an operator's script, so
// any cloud API can supply hosts:
//
//	SCRIPT provision            env GRID_HOST_ID, GRID_HOST_PASSWORD, GRID_JOIN
//	  stdout: {"id": "...", "handle": "...", "addr": "..."}
//	SCRIPT release HANDLE ID    env GRID_HOST_ID
//
// A non-zero exit, a timeout or output that is not one such object is an
// error carrying the end of the script's stderr.
type Exec struct {
	cfg ExecConfig
	log *slog.Logger
}

// NewExec checks cfg and returns the provider.
func NewExec(cfg ExecConfig) (*Exec, error) {
	if cfg.Script == "" {
		return nil, fmt.Errorf("exec provider: no script: %w", grid.ErrInvalid)
	}
	if st, err := os.Stat(cfg.Script); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("exec provider: %s must be an executable file: %w", cfg.Script, grid.ErrInvalid)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Exec{cfg: cfg, log: cfg.Logger}, nil
}

// execHost is what `SCRIPT provision` prints.
type execHost struct {
	ID     string `json:"id"`
	Handle string `json:"handle"`
	Addr   string `json:"addr"`
}

// Provision runs `SCRIPT provision` and returns the host it reports.
func (p *Exec) Provision(ctx context.Context) (grid.HostControl, error) {
	id := "h" + randomHex(4)
	env := []string{"GRID_HOST_ID=" + id, "GRID_JOIN=" + p.cfg.Join}
	if p.cfg.Password != nil {
		env = append(env, "GRID_HOST_PASSWORD="+p.cfg.Password(id))
	}
	start := time.Now()
	out, err := p.run(ctx, env, "provision")
	if err != nil {
		return grid.HostControl{}, err
	}
	var h execHost
	dec := json.NewDecoder(bytes.NewReader(out))
	if err := dec.Decode(&h); err != nil {
		return grid.HostControl{}, p.badOutput(out, err.Error())
	}
	if dec.More() {
		return grid.HostControl{}, p.badOutput(out, "more than one JSON value")
	}
	if h.Handle == "" {
		return grid.HostControl{}, p.badOutput(out, `no "handle"`)
	}
	if err := validateID(h.ID); err != nil {
		return grid.HostControl{}, p.badOutput(out, grid.Message(err))
	}
	p.log.Info("host provisioned", "host", h.ID, "handle", h.Handle, "addr", h.Addr, "duration", time.Since(start).Round(time.Millisecond))
	return grid.HostControl{ID: h.ID, Provider: NameExec, Handle: h.Handle, Since: time.Now().UTC()}, nil
}

// Release runs `SCRIPT release HANDLE ID`.
func (p *Exec) Release(ctx context.Context, hc grid.HostControl) error {
	if hc.Handle == "" {
		return fmt.Errorf("host %s has no handle to release: %w", hc.ID, grid.ErrInvalid)
	}
	start := time.Now()
	if _, err := p.run(ctx, []string{"GRID_HOST_ID=" + hc.ID}, "release", hc.Handle, hc.ID); err != nil {
		return err
	}
	p.log.Info("host released", "host", hc.ID, "handle", hc.Handle, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// maxOutput bounds what is read of the script's stdout; stderrTail is how
// much of the end of its stderr an error quotes.
const (
	maxOutput  = 1 << 20
	stderrTail = 2000
)

// run runs the script in its own process group, killed as a whole when
// ctx ends or the timeout passes, and returns its stdout.
func (p *Exec) run(ctx context.Context, env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.cfg.Script, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // children holding stdout open
	var stdout limitedBuffer
	var stderr tailBuffer
	stdout.max, stderr.max = maxOutput, stderrTail
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	what := p.cfg.Script + " " + args[0]
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("host provider %s: timed out after %v%s: %w", what, p.cfg.Timeout, quote(stderr.String()), grid.ErrUnavailable)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		return nil, fmt.Errorf("host provider %s: %v%s: %w", what, err, quote(stderr.String()), grid.ErrUnavailable)
	case stdout.over:
		return nil, fmt.Errorf("host provider %s: more than %d bytes of output: %w", what, maxOutput, grid.ErrUnavailable)
	}
	return stdout.Bytes(), nil
}

func (p *Exec) badOutput(out []byte, why string) error {
	s := strings.TrimSpace(string(out))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Errorf(`host provider %s provision: %s; want one JSON object {"id": ..., "handle": ..., "addr": ...} on stdout, got %q: %w`, p.cfg.Script, why, s, grid.ErrUnavailable)
}

// quote renders the script's stderr for an error message.
func quote(stderr string) string {
	s := strings.TrimSpace(stderr)
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}

// limitedBuffer keeps the first max bytes written and notes the rest.
type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.over = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// tailBuffer keeps the last max bytes written; String shows the whole
// lines among them.
type tailBuffer struct {
	b         []byte
	max       int
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
		t.truncated = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if t.truncated {
		s := string(t.b)
		if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
			s = s[i+1:] // whole lines only
		}
		return "…" + s
	}
	return string(t.b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
