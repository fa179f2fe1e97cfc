// Package mounts finds and detaches the mounts a sandbox run leaves below
// a directory: overlays, tmpfs and netns bind mounts that outlive a killed
// process and must go before the directory can be removed.
package mounts

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Below lists the mount points strictly below dir.
//
// mountinfo reads the calling thread's table, not /proc/self's: that is
// the main thread's, and libcontainer (like a netns helper) may leave the
// main thread wedged in a namespace it entered on a locked goroutine.
func Below(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range mounts {
		if m.Mountpoint != dir {
			out = append(out, m.Mountpoint)
		}
	}
	return out, nil
}

// DetachBelow lazily unmounts every mount point below dir, deepest first,
// and the latest first at one depth, so a mount goes before the one it
// hides or sits on. A point
// already gone (EINVAL, ENOENT) is not an error.
func DetachBelow(dir string) error {
	points, err := Below(dir)
	if err != nil {
		return err
	}
	slices.Reverse(points)
	slices.SortStableFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
