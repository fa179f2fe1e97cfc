package sandbox

import "testing"

func TestParsePreemption(t *testing.T) {
	t.Parallel()
	const (
		dynamic = "Linux version 6.18.44 (gcc 14) #1 SMP PREEMPT_DYNAMIC @0\n"
		plain   = "Linux version 6.1.0-27-amd64 #1 SMP Debian 6.1.115-1\n"
		none    = "CONFIG_PREEMPT_BUILD=y\nCONFIG_PREEMPT_NONE=y\nCONFIG_PREEMPT_COUNT=y\nCONFIG_PREEMPT_DYNAMIC=y\nCONFIG_PREEMPT_RCU=y\n"
	)
	for _, c := range []struct {
		name, debugfs, cmdline, version, config string
		want                                    Preemption
		isolating                               bool
	}{
		{"debugfs wins", "none voluntary (full) lazy\n", "preempt=none", dynamic, none,
			Preemption{"full", "/sys/kernel/debug/sched/preempt"}, true},
		{"dynamic, default none", "", "console=ttyS0 quiet", dynamic, none,
			Preemption{"none", "the kernel's default: no preempt= at boot"}, false},
		{"dynamic, booted full", "", "quiet preempt=full ro", dynamic, none,
			Preemption{"full", "preempt= on the kernel command line"}, true},
		{"boot parameter of a static kernel is ignored", "", "preempt=full", plain, "CONFIG_PREEMPT_VOLUNTARY=y\n",
			Preemption{"voluntary", "the kernel's build configuration"}, false},
		{"static full", "", "", "Linux version 6.6.0 #1 SMP PREEMPT Mon\n", "",
			Preemption{"full", "the kernel's version string"}, true},
		{"rt config", "", "", plain, "CONFIG_PREEMPT=y\nCONFIG_PREEMPT_RT=y\n",
			Preemption{"rt", "the kernel's build configuration"}, true},
		{"rt version", "", "", "Linux version 6.12.0-rt #1 SMP PREEMPT_RT\n", "",
			Preemption{"rt", "the kernel's version string"}, true},
		{"nothing readable", "", "", plain, "", Preemption{"unknown", ""}, false},
	} {
		got := parsePreemption(c.debugfs, c.cmdline, c.version, c.config)
		if got != c.want || got.Isolating() != c.isolating {
			t.Errorf("%s: got %+v (isolating %v), want %+v (%v)", c.name, got, got.Isolating(), c.want, c.isolating)
		}
	}
}
