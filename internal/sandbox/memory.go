package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Memory is what a sandbox's memory cgroup says of it: its use, as Heroku
// counts a dyno's (rss, page cache, swap), and how many times the kernel
// killed a process in it for reaching MemoryMB.
type Memory struct {
	RSS, Cache, Swap uint64 // bytes
	OOMKills         int
}

// Used is the sandbox's memory use by Heroku's R14 rule: rss + swap +
// cache.
func (m Memory) Used() uint64 { return m.RSS + m.Swap + m.Cache }

// Memory reads the sandbox's memory cgroup (v1).
func (s *Sandbox) Memory() (Memory, error) {
	dir := s.cgroupDir("memory")
	var mem Memory
	stat, err := os.ReadFile(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return mem, fmt.Errorf("sandbox %q: memory: %w", s.spec.ID, err)
	}
	fields := map[string]*uint64{"total_rss": &mem.RSS, "total_cache": &mem.Cache, "total_swap": &mem.Swap}
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		name, value, _ := bytes.Cut(sc.Bytes(), []byte(" "))
		if p := fields[string(name)]; p != nil {
			*p, _ = strconv.ParseUint(string(value), 10, 64)
		}
	}
	oom, err := os.ReadFile(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return mem, fmt.Errorf("sandbox %q: memory: %w", s.spec.ID, err)
	}
	sc = bufio.NewScanner(bytes.NewReader(oom))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("oom_kill ")); ok {
			mem.OOMKills, _ = strconv.Atoi(string(v))
		}
	}
	return mem, nil
}
