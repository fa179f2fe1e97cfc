package gridtest

import (
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// FreeAddr returns a loopback address free to listen on, for a grid
// started later, and reserves its port for the rest of this process.
//
// Its port is below the kernel's ephemeral range: a port from that range
// (what listening on port 0 gives) can be taken, before the grid binds it,
// by any outgoing connection of the tests or of other grids ("bind:
// address already in use"); below it, only by a listener.
//
// The listener that proves the port free is closed before the grid binds
// it, so two callers could still be handed one port: two tests of one
// package, or two test binaries that `go test ./...` runs side by side.
// Each port is therefore reserved with an flock on a file named for it,
// held until the process ends; a port whose file another caller has
// locked is skipped. Files are left behind for the next run to lock again.
func FreeAddr(t testing.TB) string {
	t.Helper()
	low := ephemeralLow()
	for range 100 {
		port := firstTestPort + rand.IntN(low-firstTestPort)
		if !reservePort(t, port) {
			continue // another caller's
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken by a listener that is not ours
		}
		ln.Close()
		return ln.Addr().String()
	}
	t.Fatalf("no free port in %d-%d", firstTestPort, low-1)
	return ""
}

// firstTestPort is the lowest port FreeAddr picks: above the usual
// services' ports.
const firstTestPort = 10000

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// where it cannot be read).
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if fields := strings.Fields(string(data)); err == nil && len(fields) == 2 {
		if low, err := strconv.Atoi(fields[0]); err == nil && low > firstTestPort {
			return low
		}
	}
	return 32768
}

var (
	reservedMu sync.Mutex
	// reserved keeps the locked files open (and out of the garbage
	// collector's reach, whose finalizer would close them): the lock
	// lasts as long as the file description.
	reserved []*os.File
)

// reservePort locks port's file in the machine-wide reservation
// directory; false if another caller, in this process or another, holds it.
func reservePort(t testing.TB, port int) bool {
	dir := filepath.Join(os.TempDir(), "gridtest-ports")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// flock, not fcntl locks: an flock belongs to the open file
	// description, so a second open in this same process conflicts too.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	reservedMu.Lock()
	reserved = append(reserved, f)
	reservedMu.Unlock()
	return true
}
