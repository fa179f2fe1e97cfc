package sandbox

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/mounts"
)

// A volume is a directory of bounded size for files that sandboxes write
// through mounts and that outlive one sandbox (a build's tree, an app's
// build cache): a sparse ext4 image on a loop device, as the writable
// layer of /app is. Filling it gets ENOSPC; the host's disk is untouched.
// Unlike a dyno's layer, a volume's loop device is buffered: builds write
// many small files (npm, pip, go), and direct I/O made each of those
// writes wait for the disk, doubling a Node.js build's install time.

// MakeVolume makes an ext4 file system of sizeMB in a new sparse image
// file img and mounts it at dir (created, 0755). Its root is owned by
// uid and holds nothing (no lost+found).
func MakeVolume(img, dir string, sizeMB, uid int) error {
	if err := makeLayerFS(img, dir, sizeMB, loopOptions{}); err != nil {
		os.Remove(img)
		return fmt.Errorf("volume %s: %w", dir, err)
	}
	err := os.Remove(dir + "/lost+found")
	if err == nil {
		err = os.Lchown(dir, uid, uid)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("volume %s: %w", dir, err), UnmountVolume(dir))
	}
	return nil
}

// MountVolume mounts the existing volume image img at dir (created if
// missing).
func MountVolume(img, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := mountLoop(img, dir, loopOptions{}); err != nil {
		return fmt.Errorf("volume %s: %w", dir, err)
	}
	return nil
}

// UnmountVolume unmounts the volume at dir; its loop device frees itself.
// A volume still in use (a process has a file open on it) is detached:
// it goes when that ends.
func UnmountVolume(dir string) error {
	err := unix.Unmount(dir, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(dir, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount volume %s: %w", dir, err)
	}
	return nil
}

// UnmountUnder detaches every mount below dir: the volumes a killed
// process left mounted.
func UnmountUnder(dir string) error { return mounts.DetachBelow(dir) }
