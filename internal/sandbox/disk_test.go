package sandbox

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// TestLayerCachesInSmallPages writes 2 MB to a layer file system in one
// call and finds none of the file's cached pages in a large folio (see
// mkfs). The same write to an ext4 made without the verity feature
// shows whether this kernel would use large folios at all; it is logged,
// not asserted, since older kernels do not.
func TestLayerCachesInSmallPages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	layer := testLayer(t, dir, loopOptions{})
	if n := largePages(t, layer); n > 0 {
		t.Errorf("%d of 512 pages of a 2 MB write are in large folios", n)
	}

	plain := otherExt4(t, dir, func(img string) error { return mkfs(img, false) })
	t.Logf("without the verity feature, %d of 512 pages are in large folios", largePages(t, plain))
}

// TestLayerAllocatesAtWrite writes 1 MB to a layer and finds its blocks
// allocated when the write returns, before any writeback: the work was
// the writer's (see mountData). filefrag (e2fsprogs, beside
// mkfs.ext4) reads the extents with FIEMAP; a delayed allocation shows
// as an extent flagged delalloc.
func TestLayerAllocatesAtWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	layer := testLayer(t, dir, loopOptions{direct: true})
	file := filepath.Join(layer, "file")
	if err := os.WriteFile(file, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("filefrag", "-v", file).CombinedOutput()
	if err != nil {
		t.Fatalf("filefrag: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "delalloc") || !strings.Contains(string(out), "eof") {
		t.Errorf("the file's extents right after the write are not all allocated:\n%s", out)
	}
}

// TestLayerReusesInodes deletes a file on a layer and, a second later,
// finds its inode given to the next new file: ext4 skipped no recently
// deleted inodes, a search that never yields the CPU (see mkfs). The same
// on an ext4 without a journal shows what the test would catch; it is
// logged, not asserted, since that is the kernel's business.
func TestLayerReusesInodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	layer := testLayer(t, dir, loopOptions{direct: true})

	plain := otherExt4(t, dir, func(img string) error {
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-m", "0", img).CombinedOutput(); err != nil {
			return fmt.Errorf("mkfs.ext4: %v\n%s", err, out)
		}
		return nil
	})

	before := map[string]uint64{layer: inodeOf(t, filepath.Join(layer, "a")), plain: inodeOf(t, filepath.Join(plain, "a"))}
	for d := range before {
		if err := os.Remove(filepath.Join(d, "a")); err != nil {
			t.Fatal(err)
		}
	}
	// ext4 counts an inode as recently deleted from the next second on.
	time.Sleep(1100 * time.Millisecond)
	if got := inodeOf(t, filepath.Join(layer, "b")); got != before[layer] {
		t.Errorf("a new file on the layer got inode %d, not the deleted file's %d", got, before[layer])
	}
	t.Logf("without a journal, the new file got inode %d, the deleted one's was %d",
		inodeOf(t, filepath.Join(plain, "b")), before[plain])
}

// testLayer makes a 64 MB layer in dir as a sandbox's is made and
// returns where it is mounted.
func testLayer(t *testing.T, dir string, o loopOptions) string {
	t.Helper()
	layer := filepath.Join(dir, "layer")
	if err := makeLayerFS(filepath.Join(dir, "img"), layer, 64, o); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountVolume(layer) })
	return layer
}

// otherExt4 formats a 64 MB image in dir with format and mounts it as a
// layer is mounted (mountLoop), for a test to compare with a layer; it
// returns the mount point.
func otherExt4(t *testing.T, dir string, format func(img string) error) string {
	t.Helper()
	img, mnt := filepath.Join(dir, "other.img"), filepath.Join(dir, "other")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if err := format(img); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountLoop(img, mnt, loopOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountVolume(mnt) })
	return mnt
}

// inodeOf creates an empty file at path and returns its inode number.
func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// largePages writes 2 MB to a new file in dir with one write and counts
// the file's pages that the kernel holds in compound (large) folios, as
// /proc/kpageflags tells of the frames /proc/self/pagemap names.
func largePages(t *testing.T, dir string) int {
	t.Helper()
	const size = 2 << 20
	f, err := os.Create(filepath.Join(dir, "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pagemap, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer pagemap.Close()
	flags, err := os.Open("/proc/kpageflags")
	if err != nil {
		t.Fatal(err)
	}
	defer flags.Close()
	const (
		present      = 1 << 63
		pfnMask      = 1<<55 - 1
		compoundHead = 1 << 15
		compoundTail = 1 << 16
		pageSize     = 4096
		entry        = 8
	)
	base := uintptr(unsafe.Pointer(&m[0]))
	large := 0
	buf := make([]byte, entry)
	for off := 0; off < size; off += pageSize {
		if _, err := pagemap.ReadAt(buf, int64((base+uintptr(off))/pageSize*entry)); err != nil {
			t.Fatal(err)
		}
		e := binary.LittleEndian.Uint64(buf)
		if e&present == 0 || e&pfnMask == 0 {
			t.Fatalf("page %d of the mapping: pagemap entry %#x has no frame", off/pageSize, e)
		}
		if _, err := flags.ReadAt(buf, int64(e&pfnMask*entry)); err != nil {
			t.Fatal(err)
		}
		if binary.LittleEndian.Uint64(buf)&(compoundHead|compoundTail) != 0 {
			large++
		}
	}
	return large
}

// TestScratchLayerNeverFlushes fsyncs a file on a scratch layer, as a
// dyno's is mounted, and finds that its loop device was asked for no
// cache flush, which the host would have had to carry out as an fsync of
// the image (see mountData). The same on a volume, which keeps its
// flushes, shows that the count counts.
func TestScratchLayerNeverFlushes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		o       loopOptions
		flushes bool
	}{
		{"scratch layer", loopOptions{direct: true, scratch: true}, false},
		{"volume", loopOptions{}, true},
	} {
		layer := testLayer(t, t.TempDir(), c.o)
		before := loopFlushes(t, layer)
		f, err := os.Create(filepath.Join(layer, "file"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := unix.Syncfs(int(f.Fd())); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if n := loopFlushes(t, layer) - before; (n > 0) != c.flushes {
			t.Errorf("%s: %d flushes of its device after an fsync and a syncfs", c.name, n)
		}
	}
}

// loopFlushes reads how many flush requests the loop device mounted at
// dir has completed (/sys/block/<dev>/stat's 16th field, Linux 5.5+).
func loopFlushes(t *testing.T, dir string) int {
	t.Helper()
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir))
	if err != nil || len(ms) != 1 {
		t.Fatalf("mount at %s: %v %v", dir, ms, err)
	}
	stat, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(ms[0].Source), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(stat))
	if len(fields) < 16 {
		t.Fatalf("%s: no flush counts in %q", ms[0].Source, stat)
	}
	n, err := strconv.Atoi(fields[15])
	if err != nil {
		t.Fatal(err)
	}
	return n
}
