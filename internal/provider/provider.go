// Package provider starts and stops hosts for the dyno manager: netns
// runs `grid host` in a network namespace of this machine (tests, demos),
// exec runs an operator's script that talks to any cloud API.
//
// A provider only makes and removes machines running a host agent; the
// agent joins the cluster by itself. Providers never touch the store:
// whoever calls them records the grid.HostControl they return, so a
// provider stays testable without a grid and replaceable by a script.
//
// Every provider implements
//
//	Provision(ctx) (grid.HostControl, error)  start one more host
//	Release(ctx, grid.HostControl) error      stop it gracefully and remove it
//
// Release must be idempotent: releasing a host that is already gone
// succeeds.
package provider

import (
	"fmt"
	"regexp"

	"github.com/dynogrid/grid/internal/grid"
)

// Provider names, as grid.HostControl.Provider records them.
const (
	NameNetNS = "netns"
	NameExec  = "exec"
)

// hostIDRE is what a host id may look like: the store's role ids
// (store.ValidateRoleID), repeated here because providers do not import
// the store.
var hostIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func validateID(id string) error {
	if !hostIDRE.MatchString(id) {
		return fmt.Errorf("host id %q must be 1 to 64 letters, digits, '-' or '_': %w", id, grid.ErrInvalid)
	}
	return nil
}
