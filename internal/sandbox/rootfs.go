package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dynogrid/grid/internal/mounts"
)

// layout names the paths of one sandbox. Small, hot files live on the
// Manager's tmpfs (creating them on a journaling disk filesystem cost
// 5-15 ms per start); only the /app overlay layers, which can grow, are
// on disk. Removing both directories (after the netns bind mount is
// gone) removes the sandbox's files.
//
//	<StateDir>/.run/<id>/      tmpfs (runDirName)
//	  sandbox.json  what a later Manager needs to adopt the sandbox (record)
//	  rootfs/       generated root: /etc files and mount points (read-only inside)
//	  netns         bind mount of the sandbox's network namespace (Network only)
//	  state/<id>/   libcontainer state (state.json, exec fifo)
//	  stdout        FIFO: the command's stdout, relayed by the init
//	  stderr        FIFO: the command's stderr, relayed by the init
//	  exit          the command's exit status, written by the init as it exits
//	<StateDir>/<id>/           disk, only with an AppDir
//	  layer.img     sparse ext4 image of Spec.DiskMB (disk.go)
//	  layer/        its mount, through a loop device:
//	    upper/      writable layer of /app (owned by the sandbox uid)
//	    work/       overlayfs work dir
type layout struct {
	run  string // on the tmpfs
	disk string
}

func newLayout(stateDir, id string) layout {
	return layout{run: filepath.Join(stateDir, runDirName, id), disk: filepath.Join(stateDir, id)}
}

func (l layout) rootfs() string { return filepath.Join(l.run, "rootfs") }
func (l layout) netns() string  { return filepath.Join(l.run, "netns") }
func (l layout) state() string  { return filepath.Join(l.run, "state") }
func (l layout) image() string  { return filepath.Join(l.disk, "layer.img") }
func (l layout) layer() string  { return filepath.Join(l.disk, "layer") }
func (l layout) upper() string  { return filepath.Join(l.layer(), "upper") }
func (l layout) work() string   { return filepath.Join(l.layer(), "work") }
func (l layout) record() string { return filepath.Join(l.run, "sandbox.json") }
func (l layout) stdout() string { return filepath.Join(l.run, "stdout") }
func (l layout) stderr() string { return filepath.Join(l.run, "stderr") }
func (l layout) exit() string   { return filepath.Join(l.run, "exit") }

// runDirName is the Manager's tmpfs under StateDir. The leading dot keeps
// it apart from sandbox IDs.
const runDirName = ".run"

// runTmpfsMB caps that tmpfs; a sandbox uses about 60 KB of it.
const runTmpfsMB = 256

// mountRunDir mounts a fresh tmpfs at dir, unless an earlier Manager's is
// still there: it holds the state of sandboxes that may still run.
func mountRunDir(dir string) error {
	if mounted, err := isMountPoint(dir); err != nil || mounted {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data := fmt.Sprintf("mode=0700,size=%dm", runTmpfsMB)
	if err := unix.Mount("gridsandbox", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return fmt.Errorf("mount tmpfs at %s: %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether something is mounted at dir.
func isMountPoint(dir string) (bool, error) {
	points, err := mounts.Below(filepath.Dir(dir))
	if err != nil {
		return false, err
	}
	return slices.Contains(points, filepath.Clean(dir)), nil
}

// initTarget is where the sandbox's pid 1 (this binary, see dynoinit.go)
// is bind-mounted, read-only, inside every sandbox. The C init in
// dynoinit.go checks argv[0] against the same string.
const initTarget = "/.grid/init"

// rootDirs are the mount points and empty directories of every root.
var rootDirs = []string{"usr", "proc", "dev", "sys", "tmp", "etc", ".grid"}

// mergedUsrLinks are the top-level symlinks of a merged-/usr system
// (Debian 12) that the sandbox root repeats, e.g. bin -> usr/bin.
var mergedUsrLinks = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// copiedEtc are host /etc files every sandbox gets a copy of; missing ones
// are skipped.
var copiedEtc = []string{"resolv.conf", "services", "protocols", "ld.so.cache", "host.conf", "gai.conf"}

// hostEtcBinds are host /etc paths bind-mounted read-only when present:
// the CA bundle (TLS) and Debian's alternatives symlinks (awk, which, ...).
// /etc/ssl/private is deliberately not among them.
var hostEtcBinds = []string{"/etc/ssl/certs", "/etc/ssl/openssl.cnf", "/etc/ca-certificates", "/etc/alternatives"}

// makeRoot creates the sandbox's root directory: mount points, merged-/usr
// symlinks and a generated /etc. addr is the sandbox's address, if any.
func makeRoot(l layout, spec Spec, addr netip.Addr) error {
	root := l.rootfs()
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	for _, d := range rootDirs {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, initTarget), nil, 0o555); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := linkMergedUsr(root); err != nil {
		return err
	}
	if err := writeEtc(filepath.Join(root, "etc"), spec, addr); err != nil {
		return fmt.Errorf("generate /etc: %w", err)
	}
	if spec.AppDir != "" {
		return makeAppLayers(l, spec)
	}
	return nil
}

// linkMergedUsr repeats the host's /bin -> usr/bin style links.
func linkMergedUsr(root string) error {
	for _, name := range mergedUsrLinks {
		target, err := os.Readlink("/" + name)
		if err != nil || !strings.HasPrefix(strings.TrimPrefix(target, "/"), "usr/") {
			continue // not a merged-/usr link on this host
		}
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			return err
		}
	}
	return nil
}

// makeAppLayers creates the overlay's upper and work dirs, in a file
// system of their own of Spec.DiskMB (disk.go). The upper dir is the root
// of the merged /app, so its owner and mode are what the dyno sees.
func makeAppLayers(l layout, spec Spec) error {
	if err := os.Mkdir(filepath.Join(l.rootfs(), "app"), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(l.disk, 0o700); err != nil {
		return err
	}
	if err := makeLayerFS(l.image(), l.layer(), spec.DiskMB, loopOptions{direct: true, mbps: spec.DiskMBps, iops: spec.DiskIOPS, scratch: true}); err != nil {
		return err
	}
	if err := os.Mkdir(l.upper(), 0o755); err != nil {
		return err
	}
	if err := os.Chown(l.upper(), spec.UID, spec.GID); err != nil {
		return err
	}
	return os.Mkdir(l.work(), 0o700)
}

// writeEtc writes the generated /etc: users, groups, hosts, name service
// switch, and copies of a few host files.
func writeEtc(etc string, spec Spec, addr netip.Addr) error {
	files := map[string]string{
		"passwd":        passwd(spec),
		"group":         group(spec),
		"hosts":         hosts(spec.Hostname, addr),
		"hostname":      spec.Hostname + "\n",
		"nsswitch.conf": nsswitch,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	for _, name := range copiedEtc {
		if err := copyHostFile(filepath.Join("/etc", name), filepath.Join(etc, name)); err != nil {
			return err
		}
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		return os.Symlink(target, filepath.Join(etc, "localtime"))
	}
	return nil
}

func copyHostFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// userName is the sandbox user's name in the generated /etc/passwd.
func userName(uid int) string { return fmt.Sprintf("u%d", uid) }

func passwd(spec Spec) string {
	s := "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
	if spec.UID != 65534 {
		s += fmt.Sprintf("%s:x:%d:%d::/app:/bin/bash\n", userName(spec.UID), spec.UID, spec.GID)
	}
	return s
}

func group(spec Spec) string {
	s := "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"
	switch {
	case spec.GID == 5 || spec.GID == 65534:
	case spec.GID == spec.UID:
		s += fmt.Sprintf("%s:x:%d:\n", userName(spec.UID), spec.GID)
	default:
		s += fmt.Sprintf("g%d:x:%d:\n", spec.GID, spec.GID)
	}
	return s
}

func hosts(hostname string, addr netip.Addr) string {
	own := "127.0.1.1"
	if addr.IsValid() {
		own = addr.String()
	}
	return "127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		own + "\t" + hostname + "\n"
}

const nsswitch = `passwd:    files
group:     files
shadow:    files
hosts:     files dns
networks:  files
protocols: files
services:  files
ethers:    files
rpc:       files
`
