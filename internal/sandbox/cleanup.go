package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/cgroupfs"
)

// killTimeout bounds how long cleanup waits for killed processes to leave
// their cgroup.
const killTimeout = 10 * time.Second

// removeCgroup kills what runs in the cgroup at path (and below), waits
// for it to leave and removes the directories, deepest first.
func removeCgroup(path string) error {
	children, _ := os.ReadDir(path)
	for _, c := range children {
		if c.IsDir() {
			if err := removeCgroup(filepath.Join(path, c.Name())); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(killTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		killCgroupProcs(path)
		err := unix.Rmdir(path)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", path, err)
		}
		time.Sleep(wait)
	}
}

// killCgroupProcs SIGKILLs every process listed in the cgroup.
func killCgroupProcs(path string) {
	for _, pid := range cgroupfs.Procs(path) {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// listLinks lists the host's links, retrying dumps that other link
// changes (such as concurrent sandbox starts) interrupted.
func listLinks() ([]netlink.Link, error) {
	for range 10 {
		links, err := netlink.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			if err != nil {
				return nil, fmt.Errorf("list links: %w", err)
			}
			return links, nil
		}
	}
	return nil, fmt.Errorf("list links: %w", netlink.ErrDumpInterrupted)
}
