package sandbox

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestStartLatency measures, for networked sandboxes: Start (until the
// main process has been exec'd), Start to the command's first output,
// Start to an http.server listening, and Destroy. It runs alone (not
// parallel) so the numbers mean something; the bounds only catch gross
// regressions, the target is well under 50 ms to running.
func TestStartLatency(t *testing.T) {
	m := newManager(t)
	const runs = 10
	var started, running, destroyed []time.Duration
	for i := range runs {
		sp, out, _ := spec(fmt.Sprintf("lat-%d", i), "echo", "up")
		sp.Network = true
		begin := time.Now()
		s, err := m.Start(context.Background(), sp)
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, time.Since(begin))
		out.waitFor(t, "up", 10*time.Second)
		running = append(running, time.Since(begin))
		waitExit(t, s, 10*time.Second)
		begin = time.Now()
		if err := s.Destroy(); err != nil {
			t.Fatal(err)
		}
		destroyed = append(destroyed, time.Since(begin))
	}
	var listening []time.Duration
	for i := range 3 {
		begin := time.Now()
		s := start(t, m, webSpec(t, fmt.Sprintf("lat-web-%d", i)))
		waitListening(t, s, webPort)
		listening = append(listening, time.Since(begin))
		if err := s.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("Start returned:          %s", summary(started))
	t.Logf("Start to first output:   %s", summary(running))
	t.Logf("Start to http.server up: %s", summary(listening))
	t.Logf("Destroy:                 %s", summary(destroyed))
	if med := median(running); med > 150*time.Millisecond {
		t.Errorf("median Start to running %v, want well under 50 ms", med)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("min %v  median %v  max %v  (n=%d)",
		s[0].Round(100*time.Microsecond), median(s).Round(100*time.Microsecond), s[len(s)-1].Round(100*time.Microsecond), len(s))
}

// BenchmarkStartDestroy is one networked sandbox running `true`, from
// Start to Destroy.
func BenchmarkStartDestroy(b *testing.B) {
	m, err := New(Config{StateDir: b.TempDir(), Subnet: mustPrefix(fmt.Sprintf(testSubnetBase, 250)), CgroupParent: "gridtest-sandbox-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for i := 0; b.Loop(); i++ {
		s, err := m.Start(context.Background(), Spec{ID: fmt.Sprintf("bench-%d", i), Args: []string{"true"}, UID: testUID, Network: true})
		if err != nil {
			b.Fatal(err)
		}
		<-s.Done()
		if err := s.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}
