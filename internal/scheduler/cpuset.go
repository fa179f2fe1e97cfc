package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

// pin chooses the cores of a dyno of the current group placed on host h
// (of an idle size or not) and returns them as a cpuset ("" when the
// host's cores are unknown).
//
// A dyno wants Cores cores (0 means 1, at most all of the host's). They
// are taken one by one, each time the core with, in this order:
//
//  1. the fewest dynos pinned to it (dispersal: on a host whose dynos are
//     all of one size, no core carries more than one dyno more than any
//     other);
//  2. the fewest dynos of the other class (idle sizes or not): an eco
//     dyno, the tier anyone can run for little, shares a paying dyno's
//     core only when no core as lightly loaded is free of them. On a
//     kernel without preemption of kernel code, a neighbour's system
//     calls hold a shared core for milliseconds whatever its priority;
//  3. the fewest dynos of the same group (a busy dyno does not share a
//     core with a sibling while an equally loaded core has none — and so
//     never while a core is free);
//  4. the lowest number.
func (s *state) pin(h, want int, idle bool) string {
	n := s.host(h).Cores
	if n <= 0 {
		return ""
	}
	k := min(max(want, 1), n)
	load, idles := s.loadOf(h)
	sib := s.curG.cores[h]
	if sib == nil {
		sib = make([]int32, n)
		s.curG.cores[h] = sib
	}
	// other is the count of the other class on core c.
	other := func(c int) int32 {
		if idle {
			return load[c] - idles[c]
		}
		return idles[c]
	}
	cmp := func(a, b int) int {
		switch {
		case load[a] != load[b]:
			return int(load[a] - load[b])
		case other(a) != other(b):
			return int(other(a) - other(b))
		}
		return int(sib[a] - sib[b])
	}
	take := func(c int) {
		load[c]++
		sib[c]++
		if idle {
			idles[c]++
		}
	}
	if k == 1 { // the common case, without sorting or allocating
		best := 0
		for c := 1; c < n; c++ {
			if cmp(c, best) < 0 {
				best = c
			}
		}
		take(best)
		return strconv.Itoa(best)
	}
	chosen := make([]int, n)
	for i := range chosen {
		chosen[i] = i
	}
	slices.SortStableFunc(chosen, cmp)
	chosen = chosen[:k]
	slices.Sort(chosen)
	for _, c := range chosen {
		take(c)
	}
	return FormatCPUs(chosen)
}

// loadOf returns host h's per-core load and idle-size load, copied from
// its HostState the first time a dyno is pinned there.
func (s *state) loadOf(h int) (load, idle []int32) {
	if l := s.load[h]; l != nil {
		return l, s.idle[h]
	}
	hs := s.host(h)
	load, idle = make([]int32, hs.Cores), make([]int32, hs.Cores)
	for c, n := range hs.Load[:min(len(hs.Load), hs.Cores)] {
		load[c] = int32(n)
	}
	for c, n := range hs.IdleLoad[:min(len(hs.IdleLoad), hs.Cores)] {
		idle[c] = int32(n)
	}
	s.load[h], s.idle[h] = load, idle
	return load, idle
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
