package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"

	"golang.org/x/sys/unix"
)

// The writable layer of /app lives in a file system of its own: an ext4
// image of Spec.DiskMB, sparse (it takes disk space only as the dyno
// writes), on a loop device. A dyno that fills it gets ENOSPC; the host's
// disk, and every other sandbox on it, is untouched. Docker's overlay2
// leaves this unbounded without XFS project quotas, which the host's file
// system may not offer; a loop device works on any. The loop device frees
// itself (LO_FLAGS_AUTOCLEAR) once the file system is unmounted, which
// removeDir does lazily when the sandbox goes.

// mkfsArgs make a small-footprint ext4: no journal (the layer dies with
// the sandbox), no reserved blocks, inode tables initialized lazily, so
// that an image starts at about 150 KB and formats in milliseconds.
var mkfsArgs = []string{"-q", "-F", "-O", "^has_journal,^resize_inode", "-E", "nodiscard,lazy_itable_init=1", "-m", "0"}

// makeLayerFS makes an ext4 file system of sizeMB in a new sparse image
// file img and mounts it at dir (with direct I/O, see mountLoop).
func makeLayerFS(img, dir string, sizeMB int, direct bool) error {
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(int64(sizeMB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("layer image: %w", err)
	}
	if out, err := exec.Command("mkfs.ext4", append(mkfsArgs, img)...).CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %v: %s", img, err, out)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	return mountLoop(img, dir, direct)
}

// mountLoop attaches img to a free loop device and mounts its ext4 at
// dir. The device is held by the mount alone: closing it here is fine
// with LO_FLAGS_AUTOCLEAR, which frees it at the unmount. direct asks for
// direct I/O (below).
func mountLoop(img, dir string, direct bool) error {
	file, err := os.OpenFile(img, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer file.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loop devices: %w", err)
	}
	defer ctl.Close()
	// Another process may take the free device between the two calls: the
	// configure then fails with EBUSY, and a next one is asked for.
	for range 10 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return fmt.Errorf("free loop device: %w", err)
		}
		dev := "/dev/loop" + strconv.Itoa(n)
		loop, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", dev, err)
		}
		// Direct I/O: the image's pages are not cached a second time in
		// the host's page cache, which halves the kernel's copying and
		// writeback work for a dyno that writes a lot (outside its
		// cgroup, so uncapped). Where the host's file system cannot do
		// it, the device runs buffered.
		flags := uint32(unix.LO_FLAGS_AUTOCLEAR)
		if direct {
			flags |= unix.LO_FLAGS_DIRECT_IO
		}
		cfg := unix.LoopConfig{Fd: uint32(file.Fd()), Info: unix.LoopInfo64{Flags: flags}}
		err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		if direct && errors.Is(err, unix.EINVAL) {
			cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
			err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		}
		if errors.Is(err, unix.EBUSY) {
			loop.Close()
			continue
		}
		if err != nil {
			loop.Close()
			return fmt.Errorf("configure %s: %w", dev, err)
		}
		err = unix.Mount(dev, dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOATIME, "")
		loop.Close() // after the mount: with AUTOCLEAR the last close before it would free the device
		if err != nil {
			return fmt.Errorf("mount %s at %s: %w", dev, dir, err)
		}
		return nil
	}
	return errors.New("no free loop device after 10 tries")
}
