package manager

import (
	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/scheduler"
)

// hostUse is what the assignments on one host take: memory, cores and,
// per app and process type, dynos. The view keeps it up to date with
// every assignment it adds or removes, so describing the hosts to the
// scheduler costs one step per host, not one per assignment.
type hostUse struct {
	reservedMB int
	dynos      int
	load       []int                          // dynos pinned to each core
	idleLoad   []int                          // of those, of idle sizes
	apps       map[string]map[string]*typeUse // app → process type
}

// typeUse counts one process type's dynos on a host and the cores they
// are pinned to.
type typeUse struct {
	n     int
	cores []int
}

// account adds (sign 1) or removes (sign -1) an assignment's share of its
// host. Every assignment reserves its memory until it is deleted, stale
// ones included: during a start-before-stop both dynos run.
func (v *view) account(a grid.Assignment, sign int) {
	if a.Host == grid.PendingHost {
		return // on no host yet
	}
	u := v.useOf(a.Host)
	u.reservedMB += sign * memoryMB(a.Size)
	u.dynos += sign
	types := u.apps[a.App]
	if types == nil {
		types = map[string]*typeUse{}
		u.apps[a.App] = types
	}
	t := types[a.Type]
	if t == nil {
		t = &typeUse{}
		types[a.Type] = t
	}
	t.n += sign
	cores, _ := scheduler.ParseCPUs(a.CPUs) // an unreadable cpuset pins nothing
	idle := lookupSize(a.Size).Idle
	for _, c := range cores {
		u.load = grow(u.load, c)
		t.cores = grow(t.cores, c)
		u.load[c] += sign
		t.cores[c] += sign
		if idle {
			u.idleLoad = grow(u.idleLoad, c)
			u.idleLoad[c] += sign
		}
	}
	if t.n <= 0 {
		delete(types, a.Type)
	}
	if len(types) == 0 {
		delete(u.apps, a.App)
	}
	if _, known := v.hosts[a.Host]; u.dynos <= 0 && !known {
		delete(v.use, a.Host)
	}
}

// useOf returns a host's use, creating it. Known hosts always have one, so
// a policy may hold on to it for a batch of decisions.
func (v *view) useOf(host string) *hostUse {
	u := v.use[host]
	if u == nil {
		u = &hostUse{apps: map[string]map[string]*typeUse{}}
		v.use[host] = u
	}
	return u
}

// grow makes xs long enough to index i. Slices may be shared with a
// scheduler.HostState only while no write is in flight, which holds: the
// view changes only between decisions.
func grow(xs []int, i int) []int {
	if i < len(xs) {
		return xs
	}
	return append(xs, make([]int, i+1-len(xs))...)
}

// placeHost is a placeable host as a policy keeps it for a batch.
type placeHost struct {
	id    string
	mem   int
	cores int
	use   *hostUse
}

// hostStates describes the placeable hosts to the scheduler for placing
// dynos of app: every host's memory and core load, and only that app's
// dynos (the scheduler reads no others). It reuses the policy's buffer
// and costs one step per host plus one per dyno of the app: no map
// lookups per host.
func hostStates(v *view, app string, p policy) []scheduler.HostState {
	out := p.buf[:len(p.hosts)]
	for i, h := range p.hosts {
		out[i] = scheduler.HostState{ID: h.id, MemoryMB: h.mem, Cores: h.cores, ReservedMB: h.use.reservedMB, Load: h.use.load, IdleLoad: h.use.idleLoad}
	}
	for id := range v.appAssignments[app] {
		a := v.assignments[id]
		i, ok := p.index[a.Host]
		if !ok || out[i].Running != nil {
			continue
		}
		types := p.hosts[i].use.apps[app]
		out[i].Running = make(map[scheduler.Group]int, len(types))
		out[i].Pinned = make(map[scheduler.Group][]int, len(types))
		for typ, t := range types {
			g := scheduler.Group{App: app, Type: typ}
			out[i].Running[g] = t.n
			out[i].Pinned[g] = t.cores
		}
	}
	return out
}

// memoryMB is a size's memory; an unknown size counts as the default.
func memoryMB(size string) int {
	return lookupSize(size).MemoryMB
}

// coresFor is how many cores a dyno of a size is pinned to: one per 1024
// CPU shares, at least one (eco to standard-1x: 1; standard-2x: 2;
// performance-m: 8; performance-l: 16). The scheduler caps it at the
// host's cores, so on small hosts performance dynos get all of them.
func coresFor(size string) int {
	return max(1, lookupSize(size).CPUShares/1024)
}

func lookupSize(size string) grid.Size {
	s, err := grid.LookupSize(size)
	if err != nil {
		s, _ = grid.LookupSize(grid.DefaultSize)
	}
	return s
}
