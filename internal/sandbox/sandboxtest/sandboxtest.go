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

// CgroupParent is Manager's cgroup parent (under each hierarchy), where
// tests can see which sandboxes exist.
var CgroupParent string

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
	CgroupParent = "gridtest-" + name
	Manager, err = sandbox.New(sandbox.Config{
		StateDir:     state,
		Subnet:       netip.MustParsePrefix(subnet),
		CgroupParent: CgroupParent,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s tests: sandbox manager: %v\n", name, err)
		return 1
	}
	defer Manager.Close()
	// A run that was killed left sandboxes: they are no test's.
	if _, err := Manager.CollectGarbage(); err != nil {
		fmt.Fprintf(os.Stderr, "%s tests: sandbox leftovers: %v\n", name, err)
		return 1
	}
	return m.Run()
}
