package sandbox

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

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
	layer := filepath.Join(dir, "layer")
	if err := makeLayerFS(filepath.Join(dir, "img"), layer, 64, loopOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountVolume(layer) })
	if n := largePages(t, layer); n > 0 {
		t.Errorf("%d of 512 pages of a 2 MB write are in large folios", n)
	}

	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(filepath.Join(dir, "plain.img"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "plain.img"), 64<<20); err != nil {
		t.Fatal(err)
	}
	if err := mkfs(filepath.Join(dir, "plain.img"), false); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountLoop(filepath.Join(dir, "plain.img"), plain, loopOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountVolume(plain) })
	t.Logf("without the verity feature, %d of 512 pages are in large folios", largePages(t, plain))
}

// TestLayerAllocatesAtWrite writes 1 MB to a layer and finds its blocks
// allocated when the write returns, before any writeback: the work was
// the writer's (see layerMountData). filefrag (e2fsprogs, beside
// mkfs.ext4) reads the extents with FIEMAP; a delayed allocation shows
// as an extent flagged delalloc.
func TestLayerAllocatesAtWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer")
	if err := makeLayerFS(filepath.Join(dir, "img"), layer, 64, loopOptions{direct: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountVolume(layer) })
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
