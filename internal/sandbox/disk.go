package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/cgroupfs"
)

// The writable layer of /app lives in a file system of its own: an ext4
// image of Spec.DiskMB, sparse (it takes disk space only as the dyno
// writes), on a loop device. A dyno that fills it gets ENOSPC; the host's
// disk, and every other sandbox on it, is untouched. Docker's overlay2
// leaves this unbounded without XFS project quotas, which the host's file
// system may not offer; a loop device works on any. The loop device frees
// itself (LO_FLAGS_AUTOCLEAR) once the file system is unmounted, which
// removeDir does lazily when the sandbox goes.

// mkfs formats img as a small-footprint ext4: the smallest journal (4
// MB, allocated but not written), no reserved blocks, inode tables left
// unwritten (see mountData), so that an image starts at about 4 MB and
// formats in milliseconds.
//
// The journal is there for what it turns off. Without one, ext4 will not
// reuse an inode deleted in the last 5 minutes or so (its deletion may not
// be on disk yet), and to find a free one it looks at each candidate's
// deletion time in turn, in a loop that never yields the CPU. A dyno that
// creates and deletes files ran that loop for every file: beside one held
// to half a core at idle priority, a 1 ms sleeper on its core woke after
// 0.17–0.41 ms at p50 and 1.1–1.5 ms at p99, and the dyno, which could not
// be throttled inside the loop, took 84% of the core. With the journal:
// 0.04 and 0.08–0.10 ms (beside a busy loop that makes no system calls:
// 0.02–0.03 and 0.05–0.22), within its half core, and it made 14,000
// files a second rather than 1,300–3,600. The layer dies with the
// sandbox, so nothing relies on the journal after a crash.
//
// The verity feature is there for what it turns off too: since Linux 6.16,
// ext4 caches a file in folios as large as each write (up to 2 MB)
// unless the file system may hold verity or encrypted files. The kernel
// copies a write into one folio without a point where it can be
// preempted, so a dyno writing 1 MB at a time kept its core for up to
// 20 ms per write, idle priority or not, while a neighbour's request
// waited (BenchmarkNoisyNeighbour's disk fill). In 4 KB pages the copy
// yields between pages. Having the feature lets a tenant seal its own
// files with fs-verity, which touches nothing outside its layer. A
// kernel built without fs-verity will not mount such a file system
// read-write; makeLayerFS then formats it again without the feature.
func mkfs(img string, verity bool) error {
	features := "has_journal,^resize_inode"
	if verity {
		features += ",verity"
	}
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-O", features, "-J", "size=4",
		"-E", "nodiscard,lazy_itable_init=1", "-m", "0", img).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %v: %s", img, err, out)
	}
	return nil
}

// makeLayerFS makes an ext4 file system of sizeMB in a new sparse image
// file img and mounts it at dir (see mountLoop for o).
func makeLayerFS(img, dir string, sizeMB int, o loopOptions) error {
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
	if err := mkfs(img, true); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	err = mountLoop(img, dir, o)
	if errors.Is(err, unix.EINVAL) {
		if err := mkfs(img, false); err != nil {
			return err
		}
		err = mountLoop(img, dir, o)
	}
	return err
}

// loopOptions say how a loop device runs.
type loopOptions struct {
	// direct asks for direct I/O: the image's pages are not cached a
	// second time in the host's page cache, which halves the kernel's
	// copying and writeback work for a dyno that writes a lot (outside
	// its cgroup, so uncapped). Where the host's file system cannot do
	// it, the device runs buffered.
	direct bool
	// mbps and iops bound the device's reads and writes (each); zero is
	// no bound. See limitLoop.
	mbps, iops int
	// scratch says the file system dies with its sandbox: it need not
	// survive a crash of the host (see mountData).
	scratch bool
}

// mountData are the ext4 mount options of a layer or volume.
//
// nodelalloc has the kernel find blocks for a write in the write call
// itself, in the writer's cgroup and at its priority, rather than at
// writeback, in the kernel's flusher and end-of-I/O workers: those run at
// normal priority on any core, charged to nobody. Beside a SCHED_IDLE
// writer held to half a core and 100 MB/s, they took 190 ms of every 5 s
// of the writer's core in slices of up to 2 ms, and a 1 ms sleeper's
// wake-up p99 there was 0.67–0.95 ms; with nodelalloc, 80 ms and
// 0.06–0.21 ms (with no writer: 0.05 ms), while the writer wrote 85
// rather than 99 MB/s within its own half core. Delayed allocation's
// gains (fewer fragments, no blocks at all for a temporary file deleted
// before writeback) matter little on a layer that lives as long as the
// dyno.
//
// noinit_itable and, for scratch layers, nobarrier keep the layer's
// journal from waiting on anything outside the dyno. In
// BenchmarkNoisyNeighbour's inode fill, a dyno's unlink slept
// uninterruptibly for over two minutes, and so outlived SIGKILL: it
// waited for the journal's checkpoint lock, which the kernel's
// ext4lazyinit thread held while it waited for a cache flush of the
// layer's device. A loop device carries out a flush as an fsync of its
// image on the host's file system, which waits for the host's journal
// and for whatever the host has to write back.
//   - noinit_itable: ext4lazyinit would write zeros over the inode
//     tables of an image that mkfs left uninitialized; a new sparse
//     image reads as zeros there already, so that work is pure waste.
//   - nobarrier: ext4 asks for a flush at each journal commit and each
//     fsync, so that what it wrote survives a power cut. A scratch
//     layer dies with its sandbox (nothing reads it after a crash), so
//     it needs none: no commit of a dyno's waits on the host, and a
//     tenant that fsyncs in a loop no longer makes the host's file
//     system commit for it. Volumes, which outlive a sandbox (an app's
//     build cache), keep their flushes.
func mountData(o loopOptions) string {
	data := "nodelalloc,noinit_itable"
	if o.scratch {
		data += ",nobarrier"
	}
	return data
}

// mountLoop attaches img to a free loop device and mounts its ext4 at
// dir (mountData). The device is held by the mount alone: closing
// it here is fine with LO_FLAGS_AUTOCLEAR, which frees it at the
// unmount.
func mountLoop(img, dir string, o loopOptions) error {
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
		flags := uint32(unix.LO_FLAGS_AUTOCLEAR)
		if o.direct {
			flags |= unix.LO_FLAGS_DIRECT_IO
		}
		cfg := unix.LoopConfig{Fd: uint32(file.Fd()), Info: unix.LoopInfo64{Flags: flags}}
		err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		if o.direct && errors.Is(err, unix.EINVAL) {
			cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
			err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		}
		if errors.Is(err, unix.EBUSY) {
			loop.Close()
			continue
		}
		if err == nil {
			err = limitLoop(loop, o.mbps, o.iops)
		}
		if err != nil {
			loop.Close()
			return fmt.Errorf("configure %s: %w", dev, err)
		}
		err = unix.Mount(dev, dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOATIME, mountData(o))
		loop.Close() // after the mount: with AUTOCLEAR the last close before it would free the device
		if err != nil {
			return fmt.Errorf("mount %s at %s: %w", dev, dir, err)
		}
		return nil
	}
	return errors.New("no free loop device after 10 tries")
}

// limitLoop bounds the loop device's reads and writes to mbps MB/s and
// iops operations/s each, or lifts the bounds (zero). A dyno's writes to
// its layer land in the page cache and reach the device through the
// kernel's flusher threads, which cgroup v1 charges to nobody, so the
// sandbox's own blkio cgroup cannot bound them. The device is the
// dyno's alone, though, so a rule for the device in the root blkio
// cgroup bounds exactly that dyno, whoever submits the I/O. Its
// writeback is also held to a strict dirty limit of one second of its
// rate: the dyno then waits in its own write calls, at that rate,
// instead of filling memory with dirty pages the flushers must chase.
// Every attach sets the rules afresh, since they outlive the detach of
// the device they name.
func limitLoop(loop *os.File, mbps, iops int) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(loop.Fd()), &st); err != nil {
		return err
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	bps := int64(mbps) << 20
	strict := "0"
	if bps > 0 {
		strict = "1"
	}
	writes := []struct{ path, value string }{
		{"blkio/blkio.throttle.read_bps_device", fmt.Sprintf("%s %d", dev, bps)},
		{"blkio/blkio.throttle.write_bps_device", fmt.Sprintf("%s %d", dev, bps)},
		{"blkio/blkio.throttle.read_iops_device", fmt.Sprintf("%s %d", dev, iops)},
		{"blkio/blkio.throttle.write_iops_device", fmt.Sprintf("%s %d", dev, iops)},
	}
	for _, w := range writes {
		if err := os.WriteFile(filepath.Join(cgroupfs.Root, w.path), []byte(w.value), 0); err != nil {
			return fmt.Errorf("disk rate: %w", err)
		}
	}
	bdi := filepath.Join("/sys/class/bdi", dev)
	var err error
	if bps > 0 {
		err = os.WriteFile(filepath.Join(bdi, "max_bytes"), []byte(strconv.FormatInt(bps, 10)), 0)
	} else {
		err = os.WriteFile(filepath.Join(bdi, "max_ratio"), []byte("100"), 0) // the default
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(bdi, "strict_limit"), []byte(strict), 0)
	}
	if err != nil {
		return fmt.Errorf("disk dirty limit: %w", err)
	}
	return nil
}
