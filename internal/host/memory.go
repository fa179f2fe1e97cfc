package host

import (
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/sandbox"
)

// Memory, as on Heroku's Common Runtime: a dyno may use more than its
// size's memory (its quota). Above it, R14 is logged, with the use, at
// most every r14Every while it lasts; the dyno runs on. At r15Factor
// times the quota the kernel kills it inside its own cgroup (the
// sandbox's memory limit): R15, and the dyno crashes and restarts as any
// other. Use counts rss, page cache and swap for R14, as Heroku's does;
// the kernel reclaims cache before it kills, so R15 is in effect rss.
const (
	r14Every  = 20 * time.Second
	r15Factor = 2
)

// quotaMB is the dyno's memory quota: its size's memory.
func (d *dyno) quotaMB() int {
	size, err := grid.LookupSize(d.asg.Size)
	if err != nil {
		size, _ = grid.LookupSize(grid.DefaultSize)
	}
	return size.MemoryMB
}

// checkMemory logs R14 when the dyno is over its quota, and ends it with
// R15 when the kernel has killed one of its processes (its main process
// may live on after a child's kill: the dyno goes whole, as on Heroku).
func (d *dyno) checkMemory(sb *sandbox.Sandbox) {
	mem, err := sb.Memory()
	if err != nil {
		d.log.Debug("memory reading failed", "err", err)
		return
	}
	if mem.OOMKills > 0 {
		d.r15(sb)
		d.kill(sb)
		return
	}
	quota := uint64(d.quotaMB()) << 20
	now := d.a.now()
	if mem.Used() <= quota || now.Sub(d.lastR14) < r14Every {
		return
	}
	d.lastR14 = now
	d.heroku("Process running mem=%dMB(%.1f%%)", mem.Used()>>20, 100*float64(mem.Used())/float64(quota))
	d.heroku("Error R14 (Memory quota exceeded)")
}

// oomKilled logs R15 when the kernel killed a process of the dyno for
// reaching r15Factor times its quota. Read before the sandbox goes.
func (d *dyno) oomKilled(sb *sandbox.Sandbox) {
	if mem, err := sb.Memory(); err == nil && mem.OOMKills > 0 {
		d.r15(sb)
	}
}

// r15 logs R15, once per sandbox.
func (d *dyno) r15(sb *sandbox.Sandbox) {
	if d.r15Logged == sb {
		return
	}
	d.r15Logged = sb
	d.heroku("Error R15 (Memory quota vastly exceeded)")
	d.heroku("Stopping process with SIGKILL")
}
