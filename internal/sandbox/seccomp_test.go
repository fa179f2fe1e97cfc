package sandbox

import (
	"slices"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
)

// TestSeccompLeavesOutEscapeClasses guards the allowlist as it grows: no
// call of the classes seccomp.go leaves out may be allowed, with or
// without arguments, and the calls allowed with arguments keep them.
// (TestSeccompFilter and the probe show a sandbox refused; this fails
// when someone adds one to the list.)
func TestSeccompLeavesOutEscapeClasses(t *testing.T) {
	never := []string{
		"io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "userfaultfd", "perf_event_open",
		"keyctl", "add_key", "request_key",
		"unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount",
		"fspick", "move_mount", "open_tree", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
		"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
		"clock_settime", "clock_adjtime", "settimeofday", "stime", "reboot", "kexec_load", "kexec_file_load",
		"init_module", "finit_module", "delete_module", "create_module", "swapon", "swapoff", "quotactl",
		"quotactl_fd", "syslog", "acct", "lookup_dcookie", "iopl", "ioperm", "vhangup", "uselib", "ustat",
		"sysfs", "_sysctl", "nfsservctl", "fanotify_init", "open_tree_attr", "listmount", "statmount",
	}
	p := seccompProfile()
	if p.DefaultAction != configs.Errno {
		t.Fatalf("default action %v, want Errno (an allowlist)", p.DefaultAction)
	}
	rules := map[string][]*configs.Syscall{}
	for _, s := range p.Syscalls {
		rules[s.Name] = append(rules[s.Name], s)
	}
	for _, name := range never {
		for _, s := range rules[name] {
			if s.Action == configs.Allow {
				t.Errorf("%s is allowed (args %v)", name, s.Args)
			}
		}
	}
	for _, name := range []string{"clone", "socket", "personality"} {
		for _, s := range rules[name] {
			if s.Action == configs.Allow && len(s.Args) == 0 {
				t.Errorf("%s is allowed whatever its arguments", name)
			}
		}
	}
	if slices.Contains(allowedSyscalls, "clone3") {
		t.Error("clone3 is allowed: its namespace flags are out of a filter's reach")
	}
	seen := map[string]bool{}
	for _, name := range allowedSyscalls {
		if seen[name] {
			t.Errorf("%s is listed twice", name)
		}
		seen[name] = true
	}
}
