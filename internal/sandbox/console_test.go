package sandbox

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestConsoleLoglevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int{"4\t4\t1\t7\n": 4, "7 4 1 7": 7, "1\t4\t1\t7\n": 1} {
		if got, err := consoleLoglevel(in); err != nil || got != want {
			t.Errorf("consoleLoglevel(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "4 4 1", "x 4 1 7"} {
		if _, err := consoleLoglevel(in); err == nil {
			t.Errorf("consoleLoglevel(%q): no error", in)
		}
	}
}

// TestQuietConsole changes the host's console log level, so it does not
// run in parallel: every Manager that starts lowers it too.
func TestQuietConsole(t *testing.T) {
	orig, err := os.ReadFile(printkSysctl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(printkSysctl, orig, 0o644); err != nil {
			t.Errorf("restore %s: %v", printkSysctl, err)
		}
	})
	level := func() int {
		l, err := readConsoleLevel()
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	set := func(l string) {
		if err := os.WriteFile(printkSysctl, []byte(l), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		before      string
		was, after  int
		wantChanged bool
	}{
		{"7", 7, consoleLevel, true},
		{"4", 4, consoleLevel, true},
		{"3", 3, 3, false},
		{"1", 1, 1, false}, // never raised
	} {
		set(c.before)
		was, changed, err := quietConsole()
		if err != nil || was != c.was || changed != c.wantChanged || level() != c.after {
			t.Errorf("from %s: quietConsole() = %d, %v, %v and the level is %d; want %d, %v, nil and %d",
				c.before, was, changed, err, level(), c.was, c.wantChanged, c.after)
		}
	}
	// The other three levels are left as they were.
	set("7")
	if _, _, err := quietConsole(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(printkSysctl)
	if got, want := strings.Fields(string(data))[1:], strings.Fields(string(orig))[1:]; !slices.Equal(got, want) {
		t.Errorf("the other levels went from %v to %v", want, got)
	}
	// A manager lowers it as it starts.
	set("7")
	newManager(t)
	if l := level(); l != consoleLevel {
		t.Errorf("after New, the console's level is %d; want %d", l, consoleLevel)
	}
}
