package grid

import (
	"fmt"
	"strings"
)

// Size is a dyno size: the resources one dyno of it gets.
type Size struct {
	Name        string `json:"name"`
	MemoryMB    int    `json:"memory_mb"`
	CPUShares   int    `json:"cpu_shares"` // relative weight; 1024 = one share
	MaxProcs    int    `json:"max_procs"`  // processes and threads
	DisplayName string `json:"display_name"`
}

// Sizes are Heroku's Common Runtime dyno sizes.
var Sizes = []Size{
	{"eco", 512, 1024, 256, "Eco"},
	{"basic", 512, 1024, 256, "Basic"},
	{"standard-1x", 512, 1024, 256, "Standard-1X"},
	{"standard-2x", 1024, 2048, 512, "Standard-2X"},
	{"performance-m", 2560, 8192, 16384, "Performance-M"},
	{"performance-l", 14336, 16384, 32768, "Performance-L"},
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
