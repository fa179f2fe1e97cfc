package grid

import (
	"fmt"
	"strings"
)

// Size is a dyno size: the resources one dyno of it gets.
type Size struct {
	Name      string `json:"name"`
	MemoryMB  int    `json:"memory_mb"`
	CPUShares int    `json:"cpu_shares"` // relative weight; 1024 = one share
	// CPUMilli caps the CPU a dyno may use, in thousandths of a core, even
	// when the host is idle: a busy loop in one dyno leaves its
	// neighbours' cores free. One core per 1024 shares; eco, the cheap
	// tier that sleeps, half of one.
	CPUMilli int `json:"cpu_milli"`
	MaxProcs int `json:"max_procs"` // processes and threads
	// DiskMBps and DiskIOPS bound the reads and writes (each) of the
	// dyno's writable disk, in MB/s and operations/s: one dyno filling its
	// disk must not take the host's I/O, and the kernel's work for it,
	// from its neighbours. They grow with the size, as cloud disks do.
	// That work (the loop device's, writeback's, the I/O completions')
	// runs at normal priority outside the dyno's cgroup, about a tenth of
	// a core at 100 MB/s; it raised a neighbour's p99 by half, so eco,
	// the idle tier, gets a quarter of that rate (Fly.io bounds every
	// machine's ephemeral disk to 8 MiB/s).
	DiskMBps int `json:"disk_mbps"`
	DiskIOPS int `json:"disk_iops"`
	// EgressMbit caps what the dyno sends out on its own (to the internet
	// and its add-ons; never its responses to the routers), in megabits a
	// second: one dyno uploading as fast as it can must not take the
	// host's link from the others. It grows with the size; eco, the idle
	// tier, gets half of basic's.
	EgressMbit  int    `json:"egress_mbit"`
	DisplayName string `json:"display_name"`
	// Idle sizes run at the lowest CPU priority (SCHED_IDLE): a waking
	// dyno of another size preempts theirs at once. Eco only.
	Idle bool `json:"idle,omitempty"`
}

// Sizes are Heroku's Common Runtime dyno sizes.
var Sizes = []Size{
	{"eco", 512, 1024, 500, 256, 25, 2000, 50, "Eco", true},
	{"basic", 512, 1024, 1000, 256, 100, 2000, 100, "Basic", false},
	{"standard-1x", 512, 1024, 1000, 256, 100, 2000, 100, "Standard-1X", false},
	{"standard-2x", 1024, 2048, 2000, 512, 200, 4000, 200, "Standard-2X", false},
	{"performance-m", 2560, 8192, 8000, 16384, 400, 8000, 1000, "Performance-M", false},
	{"performance-l", 14336, 16384, 16000, 32768, 800, 16000, 2000, "Performance-L", false},
}

// LookupSize finds a size by name, case-insensitively.
func LookupSize(name string) (Size, error) {
	if name == "" {
		name = DefaultSize
	}
	for _, s := range Sizes {
		if strings.EqualFold(s.Name, name) {
			return s, nil
		}
	}
	return Size{}, fmt.Errorf("unknown dyno size %q: %w", name, ErrInvalid)
}
