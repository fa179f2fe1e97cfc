package scheduler

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// state is Place's working copy of the hosts, laid out for a fast scan:
// one slice entry per host, in ID order, and per-group and per-app counts
// kept sparse (only hosts that have some) but mirrored into dense slices
// for the group and app being placed right now.
type state struct {
	in    []HostState     // the caller's hosts; read only
	order []int           // in's indexes sorted by ID; nil when in is sorted
	free  []int64         // free memory per host
	load  map[int][]int32 // dynos per core of hosts a dyno was pinned to
	idle  map[int][]int32 // of those, dynos of idle sizes

	groups map[Group]*tally
	apps   map[string]*tally

	// cg and ca hold, per host, the counts of group cur and of its app;
	// zero everywhere else. They are switched when the group changes.
	cur    Group
	curG   *tally
	curA   *tally
	cg, ca []int32
	// key[i] is host i's preference key without free memory (see best),
	// and inv[i] its free memory inverted: key[i]|inv[i] orders hosts.
	key, inv []int64
}

// host returns the i'th host in ID order.
func (s *state) host(i int) *HostState {
	if s.order != nil {
		return &s.in[s.order[i]]
	}
	return &s.in[i]
}

// tally counts one group's or app's dynos per host, and for groups also
// per core of each host.
type tally struct {
	n     map[int]int32   // host index → dynos
	cores map[int][]int32 // host index → dynos per core (groups only)
}

func newTally() *tally { return &tally{n: map[int]int32{}, cores: map[int][]int32{}} }

func newState(hosts []HostState, want []Request) *state {
	s := &state{in: hosts, load: map[int][]int32{}, idle: map[int][]int32{}, groups: map[Group]*tally{}, apps: map[string]*tally{}}
	byID := func(a, b HostState) int { return strings.Compare(a.ID, b.ID) }
	if !slices.IsSortedFunc(hosts, byID) {
		s.order = make([]int, len(hosts))
		for i := range s.order {
			s.order[i] = i
		}
		sort.SliceStable(s.order, func(i, j int) bool { return hosts[s.order[i]].ID < hosts[s.order[j]].ID })
	}
	for _, r := range want {
		g := Group{r.App, r.Type}
		if s.groups[g] == nil {
			s.groups[g] = newTally()
		}
		if s.apps[r.App] == nil {
			s.apps[r.App] = newTally()
		}
	}
	n := len(hosts)
	wide, narrow := make([]int64, 3*n), make([]int32, 2*n)
	s.free, s.key, s.inv = wide[:n:n], wide[n:2*n:2*n], wide[2*n:]
	s.cg, s.ca = narrow[:n:n], narrow[n:]
	for i := range n {
		h := s.host(i)
		s.setFree(i, int64(h.MemoryMB-h.ReservedMB))
		if len(h.Running) > 0 || len(h.Pinned) > 0 {
			s.count(i, h)
		}
	}
	return s
}

// count records host i's running dynos of the requested groups and apps.
func (s *state) count(i int, h *HostState) {
	for g, n := range h.Running {
		if t := s.apps[g.App]; t != nil && n > 0 {
			t.n[i] += int32(n)
		}
		if t := s.groups[g]; t != nil && n > 0 {
			t.n[i] += int32(n)
		}
	}
	for g, per := range h.Pinned {
		if t := s.groups[g]; t != nil && h.Cores > 0 {
			c := make([]int32, h.Cores)
			for k, n := range per[:min(len(per), h.Cores)] {
				c[k] = int32(n)
			}
			t.cores[i] = c
		}
	}
}

func (s *state) place(r Request) Placement {
	g := Group{r.App, r.Type}
	s.switchTo(g)
	best := s.best(r.MemoryMB)
	if best < 0 {
		return Placement{Request: r, Reason: s.noRoom(r)}
	}
	s.setFree(best, s.free[best]-int64(r.MemoryMB))
	s.cg[best]++
	s.ca[best]++
	s.setKey(best)
	s.curG.n[best]++
	s.curA.n[best]++
	return Placement{Request: r, Host: s.host(best).ID, CPUs: s.pin(best, r.Cores, r.Idle)}
}

// switchTo makes cg, ca and key hold the counts of group g and its app.
func (s *state) switchTo(g Group) {
	if s.curG != nil && s.cur == g {
		return
	}
	oldG, oldA := s.curG, s.curA
	s.curG, s.curA, s.cur = s.groups[g], s.apps[g.App], g
	if oldA != s.curA {
		s.refill(s.ca, oldA, s.curA)
	}
	s.refill(s.cg, oldG, s.curG)
}

// refill replaces old's counts in dense by next's and recomputes the keys
// of the hosts either touches.
func (s *state) refill(dense []int32, old, next *tally) {
	if old != nil {
		for i := range old.n {
			dense[i] = 0
			s.setKey(i)
		}
	}
	for i, n := range next.n {
		dense[i] = n
		s.setKey(i)
	}
}

// The preference of Place is folded into one integer per host, smallest
// best: group count in the top bits, then app count, then free memory
// inverted. Counts beyond these limits compare as equal; no host runs
// that many.
const (
	maxGroupCount = 1<<19 - 1
	maxAppCount   = 1<<20 - 1
	maxFree       = 1<<24 - 1 // MB: 16 TB
)

func (s *state) setKey(i int) {
	s.key[i] = int64(min(s.cg[i], maxGroupCount))<<44 | int64(min(s.ca[i], maxAppCount))<<24
}

// setFree sets host i's free memory. inv is maxFree-free, which exceeds
// maxFree (spilling into the count bits) only for hosts with negative free
// memory, and best never lets those through its room check.
func (s *state) setFree(i int, free int64) {
	s.free[i] = free
	s.inv[i] = maxFree - min(free, maxFree)
}

// best returns the index of the preferred host with mem MB free, or -1.
// A tie keeps the earlier (smaller) ID.
func (s *state) best(mem int) int {
	if mem > maxFree {
		return -1
	}
	lim := int64(maxFree - max(mem, 0))
	key, inv := s.key, s.inv[:len(s.key)]
	best, bestKey := -1, int64(math.MaxInt64)
	for i, k := range key {
		v := inv[i]
		if v > lim {
			continue
		}
		if k|v < bestKey {
			best, bestKey = i, k|v
		}
	}
	return best
}

func (s *state) noRoom(r Request) string {
	if len(s.in) == 0 {
		return "no live hosts"
	}
	most := s.free[0]
	for _, f := range s.free {
		most = max(most, f)
	}
	return fmt.Sprintf("needs %d MB of memory; the most any of %d hosts has free is %d MB", r.MemoryMB, len(s.in), max(most, 0))
}
