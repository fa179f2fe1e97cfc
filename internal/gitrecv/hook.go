package gitrecv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Environment the Receiver gives git, which passes it on to the hook.
const (
	envSocket = "GRID_HOOK_SOCKET" // path of the request's unix socket
	envToken  = "GRID_HOOK_TOKEN"  // secret the hook proves itself with
)

// RunHook is `grid hook <args>`, run by git receive-pack as the
// pre-receive hook of every push; args are the words after "hook", that is
// ["pre-receive"]. It reads git's ref updates from stdin, hands them and
// the pushed source to the Receiver that started git, relays the
// Receiver's output to stdout unbuffered (git shows it to the pusher) and
// returns the exit status the Receiver decides: 0 accepts the push, 1
// rejects it. It reads its socket from the environment git passes on.
func RunHook(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "pre-receive" {
		fmt.Fprintln(stderr, "usage: grid hook pre-receive")
		return 2
	}
	sock, token := os.Getenv(envSocket), os.Getenv(envToken)
	if sock == "" || token == "" {
		fmt.Fprintln(stderr, "grid hook pre-receive: "+envSocket+" is not set; git runs this hook during a push to grid, it is not for running by hand")
		return 1
	}
	updates, err := parseUpdates(stdin)
	if err != nil {
		fmt.Fprintf(stderr, " !     grid hook pre-receive: %v\n", err)
		return 1
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Fprintf(stderr, " !     Cannot reach grid's git service: %v\n", err)
		return 1
	}
	defer conn.Close()
	return converse(newFrameConn(conn), hello{Version: protocolVersion, Token: token, Updates: updates}, stdout, stderr)
}

// parseUpdates reads pre-receive input: lines of "<old> <new> <ref>".
func parseUpdates(r io.Reader) ([]update, error) {
	var updates []update
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || !isObjectName(f[0]) || !isObjectName(f[1]) || !strings.HasPrefix(f[2], "refs/") {
			return nil, fmt.Errorf("unexpected ref update line %q", sc.Text())
		}
		updates = append(updates, update{Old: f[0], New: f[1], Ref: f[2]})
	}
	return updates, sc.Err()
}

// isObjectName reports whether s is a full SHA-1 or SHA-256 hex name.
func isObjectName(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isZero reports whether name is git's all-zero name for "no object".
func isZero(name string) bool { return strings.Trim(name, "0") == "" }

// converse is the hook's side of the protocol (see protocol.go).
func converse(fc *frameConn, h hello, stdout, stderr io.Writer) int {
	b, err := json.Marshal(h)
	if err == nil {
		err = fc.send(frameHello, b)
	}
	if err != nil {
		fmt.Fprintf(stderr, " !     Cannot talk to grid's git service: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	var archiving sync.WaitGroup
	defer archiving.Wait()
	defer fc.conn.Close() // unblocks a data write that nobody reads any more
	defer cancel()        // kills git archive
	started := false
	for {
		t, p, err := fc.read()
		if err != nil {
			fmt.Fprintf(stderr, " !     Lost the connection to grid's git service: %v\n", err)
			return 1
		}
		switch {
		case t == frameOutput:
			if _, err := stdout.Write(p); err != nil {
				return 1 // git is gone
			}
		case t == frameArchive && !started:
			started = true
			archiving.Go(func() { sendArchive(ctx, fc, string(p)) })
		case t == frameExit && len(p) == 1:
			return int(p[0])
		default:
			fmt.Fprintf(stderr, " !     Unexpected message %q from grid's git service\n", byte(t))
			return 1
		}
	}
}

// sendArchive streams `git archive` of rev as data frames and ends with an
// end frame carrying the error, if any. It runs inside git's quarantine
// environment, so the pushed objects are visible.
func sendArchive(ctx context.Context, fc *frameConn, rev string) {
	if !isObjectName(rev) {
		fc.send(frameEnd, []byte("bad revision to archive"))
		return
	}
	var stderr capBuffer
	cmd := exec.CommandContext(ctx, "git", "archive", "--format=tar", rev)
	cmd.Stdout = fc.writer(frameData)
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		fc.send(frameEnd, nil)
		return
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && stderr.String() != "" {
		err = errors.New(stderr.String())
	}
	fc.send(frameEnd, []byte("git archive failed: "+err.Error()))
}
