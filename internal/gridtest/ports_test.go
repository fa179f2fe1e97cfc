package gridtest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Two callers are never handed one port: in this process, where the
// listener that proved it free is already closed, nor in another.
func TestFreeAddrReserves(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		addr := FreeAddr(t)
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		_, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		if reservePort(t, p) {
			t.Fatalf("port %d reserved again in its own process", p)
		}
	}
}

func TestFreeAddrSkipsPortsOtherProcessesHold(t *testing.T) {
	port := firstTestPort + 1
	for ; !reservePort(t, port); port++ {
	}
	// Give the port's lock up, then have another process take it.
	reservedMu.Lock()
	f := reserved[len(reserved)-1]
	reserved = reserved[:len(reserved)-1]
	reservedMu.Unlock()
	f.Close()
	path := filepath.Join(os.TempDir(), "gridtest-ports", strconv.Itoa(port))
	other := exec.Command("flock", path, "-c", "echo locked; exec sleep 60")
	out, err := other.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("flock: %v", err)
	}
	if reservePort(t, port) {
		t.Fatalf("port %d reserved while another process holds it", port)
	}
}
