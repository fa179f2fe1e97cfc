package provider

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

func newTestExec(t *testing.T, timeout time.Duration) (*Exec, string) {
	t.Helper()
	state := t.TempDir()
	t.Setenv("HOSTS_STATE", state)
	script, err := filepath.Abs("testdata/hosts.sh")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewExec(ExecConfig{
		Script: script, Join: "nats://10.0.0.1:4222", Timeout: timeout,
		Password: func(id string) string { return "pw-" + id }, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, state
}

func TestExecConformance(t *testing.T) {
	p, state := newTestExec(t, time.Minute)
	testConformance(t, p, NameExec, func(h grid.HostControl) bool {
		_, err := os.Stat(filepath.Join(state, h.Handle))
		return err == nil
	})
}

// The script gets the id it should use, its password and where to join.
func TestExecEnvironment(t *testing.T) {
	p, state := newTestExec(t, time.Minute)
	h, err := p.Provision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(state, h.Handle))
	if err != nil {
		t.Fatal(err)
	}
	want := h.ID + "\nnats://10.0.0.1:4222\npw-" + h.ID + "\n"
	if string(b) != want {
		t.Errorf("script saw %q, want %q", b, want)
	}
	if !regexp.MustCompile(`^h[0-9a-f]{8}$`).MatchString(h.ID) {
		t.Errorf("id %q", h.ID)
	}
}

func TestExecErrors(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		timeout time.Duration
		want    string // regexp of the error
	}{
		{"fail", time.Minute, `hosts.sh provision: exit status 3; stderr: quota exceeded: no more machines in region test-1$`},
		{"badjson", time.Minute, `provision: invalid character 'c' .*want one JSON object .*got "creating machine\.\.\."`},
		{"noid", time.Minute, `provision: host id "" must be .*got "{\\"handle\\": \\"vm-1\\"}"`},
		{"slow", 300 * time.Millisecond, `hosts.sh provision: timed out after 300ms$`},
		{"noisy", time.Minute, `exit status 1; stderr: …line \d+ of(?s:.*)line 299 of a very chatty cloud CLI$`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			p, _ := newTestExec(t, tc.timeout)
			t.Setenv("HOSTS_MODE", tc.mode)
			start := time.Now()
			_, err := p.Provision(context.Background())
			if err == nil {
				t.Fatal("Provision succeeded")
			}
			msg := strings.TrimSuffix(err.Error(), ": "+grid.ErrUnavailable.Error())
			if !regexp.MustCompile(tc.want).MatchString(msg) {
				t.Errorf("error %q\nwant match for %q", msg, tc.want)
			}
			if !errors.Is(err, grid.ErrUnavailable) {
				t.Errorf("error %v is not ErrUnavailable", err)
			}
			if len(msg) > stderrTail+500 {
				t.Errorf("error is %d bytes long; stderr should be truncated", len(msg))
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
}

func TestExecConfig(t *testing.T) {
	for _, script := range []string{"", "testdata", "testdata/missing.sh", "exec_test.go"} {
		if _, err := NewExec(ExecConfig{Script: script}); !errors.Is(err, grid.ErrInvalid) {
			t.Errorf("NewExec(%q): %v, want ErrInvalid", script, err)
		}
	}
}
