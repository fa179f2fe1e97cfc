package build

import (
	"slices"
	"testing"

	"github.com/dynogrid/grid/internal/grid"
)

// TestBuiltinsMatchGrid: the names the API accepts are the buildpacks
// this package ships, in the same order, and each has its scripts.
func TestBuiltinsMatchGrid(t *testing.T) {
	var names []string
	for _, n := range builtinOrder {
		names = append(names, "heroku/"+n)
		for _, s := range []string{"detect", "compile"} {
			if _, err := builtins.ReadFile("buildpacks/" + n + "/bin/" + s); err != nil {
				t.Errorf("built-in %s: %v", n, err)
			}
		}
	}
	if !slices.Equal(names, grid.BuiltinBuildpacks) {
		t.Errorf("built-ins %q, grid.BuiltinBuildpacks %q", names, grid.BuiltinBuildpacks)
	}
}
