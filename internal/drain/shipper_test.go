package drain

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/logs"
	"github.com/dynogrid/grid/internal/store/storetest"
)

// TestShipper: lines written to the log reach the app's drains (and no
// other app's) in order, from a real log stream; the drains' own notices
// are not sent on; a removed drain gets nothing more; a drain added later
// starts with what is written after it.
func TestShipper(t *testing.T) {
	st := storetest.Start(t)
	lg, err := logs.Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lg.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Ship(ctx, ShipperConfig{Store: st, Log: lg, Allow: allowLoopback, MinBackoff: 2 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Ship: %v", err)
		}
	})

	a, b := serveSyslog(t, listen(t), false), serveSyslog(t, listen(t), false)
	put := func(app, id, url string) {
		t.Helper()
		if err := st.CreateDrain(ctx, grid.Drain{ID: id, App: app, URL: url, Token: "d." + id, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	put("shop", "one", a.url("syslog"))
	put("other", "two", b.url("syslog"))
	write := func(app, text string) {
		lg.Write(logs.Line{App: app, Source: "app", Dyno: "web.1", Text: text})
	}
	// The shipper starts after the records: wait until it ships.
	waitFor(t, "the shipper", func() bool {
		write("shop", "ping")
		time.Sleep(20 * time.Millisecond)
		return len(a.messages()) > 0
	})
	base := len(a.wait(t, 1))
	for i := range 100 {
		write("shop", fmt.Sprintf("shop %d", i))
	}
	lg.Write(logs.Line{App: "shop", Source: "heroku", Dyno: "logplex", Text: "Error L10 (output buffer overflow): 3 messages dropped since …"})
	write("other", "other 0")
	write("shop", "last")
	ms := a.wait(t, base+101)
	var got []string
	for _, m := range ms {
		if m.text != "ping" {
			got = append(got, m.text)
		}
		if m.host != "d.one" {
			t.Fatalf("hostname %q", m.host)
		}
	}
	for i := range 100 {
		if got[i] != fmt.Sprintf("shop %d", i) {
			t.Fatalf("line %d: %q", i, got[i])
		}
	}
	if got[100] != "last" || len(got) != 101 {
		t.Errorf("after the 100 lines (the logplex notice skipped): %q", got[100:])
	}
	if bm := b.wait(t, 1); bm[len(bm)-1].text != "other 0" {
		t.Errorf("other's drain got %+v", bm)
	}

	// Removed: nothing more. Added: what comes after.
	if err := st.DeleteDrain(ctx, "shop", "one"); err != nil {
		t.Fatal(err)
	}
	c := serveSyslog(t, listen(t), false)
	put("shop", "three", c.url("syslog"))
	waitFor(t, "the new drain", func() bool {
		write("shop", "after")
		time.Sleep(20 * time.Millisecond)
		return len(c.messages()) > 0
	})
	if n := len(a.messages()); n != len(ms) {
		t.Errorf("the removed drain got %d more lines", n-len(ms))
	}
}
