package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

// pin chooses the cores of a dyno of the current group placed on host h
// and returns them as a cpuset ("" when the host's cores are unknown).
//
// A dyno wants Cores cores (0 means 1, at most all of the host's). They
// are taken one by one, each time the core with, in this order:
//
//  1. the fewest dynos pinned to it (dispersal: on a host whose dynos are
//     all of one size, no core carries more than one dyno more than any
//     other);
//  2. the fewest dynos of the same group (a busy dyno does not share a
//     core with a sibling while an equally loaded core has none — and so
//     never while a core is free);
//  3. the lowest number.
func (s *state) pin(h, want int) string {
	n := s.host(h).Cores
	if n <= 0 {
		return ""
	}
	k := min(max(want, 1), n)
	load := s.loadOf(h)
	sib := s.curG.cores[h]
	if sib == nil {
		sib = make([]int32, n)
		s.curG.cores[h] = sib
	}
	if k == 1 {
		c := leastLoaded(load, sib)
		load[c]++
		sib[c]++
		return strconv.Itoa(c)
	}
	chosen := make([]int, n)
	for i := range chosen {
		chosen[i] = i
	}
	slices.SortStableFunc(chosen, func(a, b int) int {
		if load[a] != load[b] {
			return int(load[a] - load[b])
		}
		return int(sib[a] - sib[b])
	})
	chosen = chosen[:k]
	slices.Sort(chosen)
	for _, c := range chosen {
		load[c]++
		sib[c]++
	}
	return FormatCPUs(chosen)
}

// leastLoaded returns the core pin prefers for a one-core dyno.
func leastLoaded(load, sib []int32) int {
	best := 0
	for c := 1; c < len(load); c++ {
		if load[c] < load[best] || load[c] == load[best] && sib[c] < sib[best] {
			best = c
		}
	}
	return best
}

// loadOf returns host h's per-core load, copied from its HostState the
// first time a dyno is pinned there.
func (s *state) loadOf(h int) []int32 {
	if l := s.load[h]; l != nil {
		return l
	}
	hs := s.host(h)
	l := make([]int32, hs.Cores)
	for c, n := range hs.Load[:min(len(hs.Load), hs.Cores)] {
		l[c] = int32(n)
	}
	s.load[h] = l
	return l
}

// FormatCPUs writes core numbers in the kernel's cpuset list format:
// ascending, runs as ranges ("0-2,5"). Cores must be sorted and distinct.
func FormatCPUs(cores []int) string {
	var b strings.Builder
	for i := 0; i < len(cores); {
		j := i
		for j+1 < len(cores) && cores[j+1] == cores[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cores[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cores[j]))
		}
		i = j + 1
	}
	return b.String()
}

// ParseCPUs reads a cpuset list ("0-2,5") into sorted, distinct core
// numbers. The empty string is no cores.
func ParseCPUs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b-a > 1<<16 {
			return nil, fmt.Errorf("cpuset %q: bad element %q: %w", s, part, grid.ErrInvalid)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
