package gitrecv

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	zero = "0000000000000000000000000000000000000000"
	revA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	revB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestPlanPush(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		updates []update
		deploy  string // ref, "" for none
		notes   []string
		err     string
	}{
		{name: "main", updates: []update{{zero, revA, mainRef}}, deploy: mainRef},
		{name: "master", updates: []update{{revA, revB, masterRef}}, deploy: masterRef},
		{name: "main wins", updates: []update{{zero, revA, masterRef}, {zero, revA, mainRef}}, deploy: mainRef,
			notes: []string{"Pushed to both main and master; only main deploys"}},
		{name: "feature branch", updates: []update{{zero, revA, "refs/heads/feature/x"}},
			notes: []string{"Pushed to non-deploy branch feature/x; only main or master deploys"}},
		{name: "tag and main", updates: []update{{zero, revA, "refs/tags/v1"}, {revA, revB, mainRef}}, deploy: mainRef,
			notes: []string{"Pushed tag v1; only main or master deploys"}},
		{name: "delete main", updates: []update{{revA, zero, mainRef}}, err: "deleting main is not allowed"},
		{name: "delete master with main", updates: []update{{zero, revA, mainRef}, {revA, zero, masterRef}}, err: "deleting master"},
		{name: "delete other branch is git's business", updates: []update{{revA, zero, "refs/heads/old"}}},
		{name: "nothing", updates: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planPush(tt.updates)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if p.deploy != nil {
				got = p.deploy.Ref
			}
			if got != tt.deploy {
				t.Errorf("deploy = %q, want %q", got, tt.deploy)
			}
			if diff := cmp.Diff(tt.notes, p.notes); diff != "" {
				t.Errorf("notes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSessionRefusesStrangers checks the session's checks on whoever
// connects to the socket: a wrong token gets nothing, a hook of another
// protocol version a clear rejection.
func TestSessionRefusesStrangers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		hello  hello
		output string // "" means the connection is just closed
	}{
		{name: "wrong token", hello: hello{Version: protocolVersion, Token: "guess"}},
		{name: "other version", hello: hello{Version: protocolVersion + 1, Token: "right"}, output: "The grid binary changed while this push ran"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &Receiver{pushing: map[string]bool{}, log: slog.New(slog.DiscardHandler)}
			ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
			if err != nil {
				t.Fatal(err)
			}
			s := &session{r: r, app: "myapp", token: "right", log: r.log}
			done := make(chan struct{})
			go func() { defer close(done); s.serve(context.Background(), ln) }()
			conn, err := net.Dial("unix", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fc := newFrameConn(conn)
			b, _ := json.Marshal(tt.hello)
			fc.send(frameHello, b)
			var out strings.Builder
			status := -1
			for {
				typ, p, err := fc.read()
				if err != nil {
					break
				}
				switch typ {
				case frameOutput:
					out.Write(p)
				case frameExit:
					status = int(p[0])
				}
			}
			<-done
			if tt.output == "" && (out.Len() > 0 || status != -1) {
				t.Errorf("a stranger got output %q, status %d", out.String(), status)
			}
			if tt.output != "" && (!strings.Contains(out.String(), tt.output) || status != 1) {
				t.Errorf("output %q, status %d; want %q and 1", out.String(), status, tt.output)
			}
			if s.locked {
				t.Errorf("a refused hook took the app's push lock")
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{1 << 30: "1 GiB", 3 << 20: "3 MiB", 64 << 10: "64 KiB", 1000: "1000 bytes"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
