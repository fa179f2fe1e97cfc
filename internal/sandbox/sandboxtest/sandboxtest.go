// Package sandboxtest gives a test binary that starts real sandboxes its
// own sandbox manager, on a subnet and cgroup parent of its own so that
// packages tested at the same time never meet.
package sandboxtest

import (
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/dynogrid/grid/internal/sandbox"
)

// Manager is the test binary's sandbox manager, set by Main; nil when the
// tests do not run as root.
var Manager *sandbox.Manager

// Main is a TestMain body: it runs the sandbox init when re-executed by
// libcontainer, otherwise starts Manager on subnet (a /22 or larger
// unique to the package) and runs the tests. name labels the cgroup
// parent and messages.
func Main(m *testing.M, name, subnet string) {
	sandbox.MaybeInit()
	os.Exit(run(m, name, subnet))
}

func run(m *testing.M, name, subnet string) int {
	if os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "%s: not root, integration tests (real sandboxes) will be skipped\n", name)
		return m.Run()
	}
	state, err := os.MkdirTemp("", name+"test-sandbox-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(state)
	Manager, err = sandbox.New(sandbox.Config{
		StateDir:     state,
		Subnet:       netip.MustParsePrefix(subnet),
		CgroupParent: "gridtest-" + name,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s tests: sandbox manager: %v\n", name, err)
		return 1
	}
	defer Manager.Close()
	return m.Run()
}
