package sandbox

import (
	"errors"
	"strings"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/seccomp"
	"golang.org/x/sys/unix"
)

// The syscall filter of every sandbox (dynos and builds): an allowlist
// after Docker's default profile (moby profiles/seccomp/default.json),
// for the native architecture only (32-bit and x32 entry points are
// refused whole). What it leaves out is what a tenant needs no kernel
// surface for and what container escapes keep using:
//
//   - io_uring (a large surface; blocked by Docker since 2023), bpf,
//     userfaultfd, perf_event_open, keyctl and friends;
//   - namespaces and mounts: unshare, setns, clone with namespace flags,
//     mount, pivot_root, the new mount API, open_by_handle_at ("shocker");
//   - ptrace, process_vm_readv/writev, kcmp, pidfd_getfd: one process
//     reading another's memory (stricter than Docker: no strace in a
//     dyno, as on Heroku);
//   - the machine's: clocks, reboot, modules, swap, quotas, syslog, acct,
//     personality changes other than the harmless ones.
//
// A refused call fails with EPERM; a call newer than this list (and than
// libseccomp) with ENOSYS, so programs fall back as they would on an
// older kernel (runc does that). clone3 gets ENOSYS too: its flags are in
// memory a filter cannot read, and every libc falls back to clone.
//
// libcontainer applies it (with libseccomp, so grid is built with the
// "seccomp" build tag, as ./run does) just before the sandbox's init runs.
var allowedSyscalls = strings.Fields(`
	accept accept4 access adjtimex alarm arch_prctl bind brk cachestat capget capset
	chdir chmod chown clock_getres clock_gettime clock_nanosleep close close_range
	connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
	epoll_pwait epoll_pwait2 epoll_wait eventfd eventfd2 execve execveat exit
	exit_group faccessat faccessat2 fadvise64 fallocate fanotify_mark fchdir fchmod
	fchmodat fchmodat2 fchown fchownat fcntl fdatasync fgetxattr flistxattr flock
	fork fremovexattr fsetxattr fstat fstatfs fsync ftruncate futex futex_requeue
	futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64
	getegid geteuid getgid getgroups getitimer getpeername getpgid getpgrp getpid
	getppid getpriority getrandom getresgid getresuid getrlimit get_robust_list
	getrusage getsid getsockname getsockopt gettid gettimeofday getuid getxattr
	inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl
	io_destroy io_getevents io_pgetevents ioprio_get ioprio_set io_setup io_submit
	kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown
	lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr
	lstat madvise map_shadow_stack membarrier memfd_create memfd_secret mincore
	mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mprotect mq_getsetattr
	mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget
	msgrcv msgsnd msync munlock munlockall munmap nanosleep newfstatat open openat
	openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free
	pkey_mprotect poll ppoll prctl pread64 preadv preadv2 prlimit64 process_mrelease
	pselect6 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv
	recvfrom recvmmsg recvmsg remap_file_pages removexattr rename renameat renameat2
	restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
	rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo
	sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
	sched_get_priority_min sched_getscheduler sched_rr_get_interval
	sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield
	seccomp select semctl semget semop semtimedop sendfile sendmmsg sendmsg sendto
	setfsgid setfsuid setgid setgroups setitimer setpgid setpriority setregid
	setresgid setresuid setreuid setrlimit set_robust_list setsid setsockopt
	set_tid_address setuid setxattr shmat shmctl shmdt shmget shutdown sigaltstack
	signalfd signalfd4 socketpair splice stat statfs statx symlink symlinkat sync
	sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete
	timer_getoverrun timer_gettime timer_settime timerfd_create timerfd_gettime
	timerfd_settime times tkill truncate umask uname unlink unlinkat utime utimensat
	utimes vfork vmsplice wait4 waitid write writev
`)

// namespaceFlags are clone's flags that make new namespaces.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// errSeccompMissing: this grid was built without the filter.
var errSeccompMissing = errors.New("sandbox: grid was built without seccomp support; build it with `-tags seccomp` and libseccomp (./run does)")

// seccompProfile is the filter for every sandbox.
func seccompProfile() *configs.Seccomp {
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	p := &configs.Seccomp{DefaultAction: configs.Errno, DefaultErrnoRet: &eperm}
	for _, name := range allowedSyscalls {
		p.Syscalls = append(p.Syscalls, &configs.Syscall{Name: name, Action: configs.Allow})
	}
	p.Syscalls = append(p.Syscalls,
		// Threads and processes, not namespaces.
		&configs.Syscall{Name: "clone", Action: configs.Allow, Args: []*configs.Arg{{Index: 0, Value: namespaceFlags, ValueTwo: 0, Op: configs.MaskEqualTo}}},
		&configs.Syscall{Name: "clone3", Action: configs.Errno, ErrnoRet: &enosys},
		// Every socket but AF_VSOCK (the hypervisor's).
		&configs.Syscall{Name: "socket", Action: configs.Allow, Args: []*configs.Arg{{Index: 0, Value: unix.AF_VSOCK, Op: configs.NotEqualTo}}},
	)
	// personality: only the values programs use to query or to turn off
	// address randomization for themselves, as Docker allows.
	for _, v := range []uint64{0, 0x8, 0x20000, 0x20008, 0xffffffff} {
		p.Syscalls = append(p.Syscalls, &configs.Syscall{Name: "personality", Action: configs.Allow, Args: []*configs.Arg{{Index: 0, Value: v, Op: configs.EqualTo}}})
	}
	return p
}

// checkSeccomp fails when the filter cannot be applied: sandboxes would
// otherwise fail one by one, each with libcontainer's terse error.
func checkSeccomp() error {
	if !seccomp.Enabled {
		return errSeccompMissing
	}
	return nil
}
