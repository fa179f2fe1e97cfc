package manager

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dynogrid/grid/internal/grid"
)

func TestSlugsToDelete(t *testing.T) {
	// releases v1…vN, release v deploying slug s<v>; config releases reuse
	// the previous slug.
	deploys := func(n int) []grid.Release {
		var rs []grid.Release
		for v := 1; v <= n; v++ {
			rs = append(rs, grid.Release{Version: v, SlugID: fmt.Sprintf("s%d", v)})
		}
		return rs
	}
	slugs := func(ids ...string) []grid.Slug {
		var out []grid.Slug
		for _, id := range ids {
			out = append(out, grid.Slug{ID: id, App: "a"})
		}
		return out
	}
	all := slugs("s1", "s2", "s3", "s4", "s5")
	tests := []struct {
		name     string
		releases []grid.Release
		current  string
		slugs    []grid.Slug
		inUse    []string
		keep     int
		want     []string
	}{
		{name: "within retention: nothing", releases: deploys(5), current: "s5", slugs: all, keep: 10},
		{name: "beyond retention: the oldest go", releases: deploys(5), current: "s5", slugs: all, keep: 3, want: []string{"s1", "s2"}},
		{name: "a slug a dyno runs stays", releases: deploys(5), current: "s5", slugs: all, keep: 3, inUse: []string{"s1"}, want: []string{"s2"}},
		{
			name:     "a rollback keeps its old slug",
			releases: append(deploys(5), grid.Release{Version: 6, SlugID: "s1"}),
			current:  "s1", slugs: all, keep: 3, want: []string{"s2", "s3"},
		},
		{
			name:     "config releases count towards retention but reuse the slug",
			releases: append(deploys(2), grid.Release{Version: 3, SlugID: "s2"}, grid.Release{Version: 4, SlugID: "s2"}),
			current:  "s2", slugs: slugs("s1", "s2"), keep: 2, want: []string{"s1"},
		},
		{name: "the current slug stays whatever its age", releases: deploys(5), current: "s1", slugs: all, keep: 1, want: []string{"s2", "s3", "s4"}},
		{name: "slugs no release names stay (a build between storing and releasing)", releases: deploys(2), current: "s2", slugs: slugs("s1", "s2", "s9"), keep: 1, want: []string{"s1"}},
		{name: "releases without a slug", releases: []grid.Release{{Version: 1}}, slugs: slugs("s9"), keep: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inUse := map[string]bool{}
			for _, id := range tt.inUse {
				inUse[id] = true
			}
			got := slugsToDelete(tt.releases, tt.current, tt.slugs, inUse, tt.keep)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
		})
	}
}
