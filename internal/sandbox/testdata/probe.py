# probe checks, from inside a sandbox, every isolation property a tenant
# can test by itself (reliability.md §1.2). It prints "ok <check>" or
# "FAIL <check>: <detail>" per check, and "done" at the end. It takes what
# it cannot know from inside in the environment: HOSTPID (a pid of the
# host), HOSTPATHS (host paths that must not exist inside, colon-separated),
# PROBE_UID ("any": any uid but root's), PROBE_HOSTNAME ("!name": any
# but name) and PROBE_ENV (the variable names the dyno was given,
# comma-separated). It runs in sandbox tests and as a dyno of a real grid
# (e2e TestIsolationInGrid).
import ctypes, errno, os, socket, stat, sys

libc = ctypes.CDLL(None, use_errno=True)
failed = False


def report(name, good, detail=""):
    global failed
    if good:
        print("ok", name)
    else:
        failed = True
        print("FAIL %s: %s" % (name, detail))
    sys.stdout.flush()


def syscall(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return r, ctypes.get_errno()


def fails(fn, codes=(errno.EPERM, errno.EACCES, errno.EROFS, errno.ENOENT)):
    try:
        fn()
    except OSError as e:
        return e.errno in codes, "errno %d" % e.errno
    return False, "succeeded"


def read(path):
    with open(path, "rb") as f:
        return f.read()


# 14 first, before the probe opens anything: the descriptors the process
# started with.
open_fds = {}
for f in os.listdir("/proc/self/fd"):
    try:
        open_fds[int(f)] = os.readlink("/proc/self/fd/" + f)
    except OSError:
        pass  # the listing's own descriptor, closed by now
report("only-stdio-fds", sorted(open_fds) == [0, 1, 2], open_fds)

# 1. PID namespace.
pids = [p for p in os.listdir("/proc") if p.isdigit()]
report("pid-ns-own-processes", len(pids) <= 4, "%d processes visible" % len(pids))
try:
    os.kill(int(os.environ["HOSTPID"]), 0)
    report("pid-ns-host-pid", False, "kill(hostpid, 0) succeeded")
except OSError as e:
    report("pid-ns-host-pid", e.errno == errno.ESRCH, "errno %d" % e.errno)

# 2. No path to the host's files.
try:
    report("proc1-root-is-own", os.stat("/proc/1/root").st_ino == os.stat("/").st_ino)
except PermissionError:
    report("proc1-root-is-own", True)  # not even reachable
for p in os.environ["HOSTPATHS"].split(":"):
    report("host-path-absent " + p, not os.path.exists(p))

# 3. IPC and UTS namespaces.
shm = read("/proc/sysvipc/shm").decode().strip().splitlines()
report("ipc-ns-empty", len(shm) <= 1, "%d shm segments" % (len(shm) - 1))
want_host = os.environ["PROBE_HOSTNAME"]
if want_host.startswith("!"):
    report("uts-ns-hostname", socket.gethostname() != want_host[1:], socket.gethostname())
else:
    report("uts-ns-hostname", socket.gethostname() == want_host, socket.gethostname())

# 4. Only the given environment: as the process got it (Python adds
# LC_CTYPE to its own os.environ).
given = set(os.environ["PROBE_ENV"].split(","))
initial = {kv.split(b"=", 1)[0].decode() for kv in read("/proc/self/environ").split(b"\0") if kv}
extra = initial - given
report("env-only-given", not extra, "unexpected %s" % sorted(extra))

# 5. Privileges.
status = dict(l.split(":\t", 1) for l in read("/proc/self/status").decode().splitlines() if ":\t" in l)
for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
    report("caps-empty " + cap, int(status[cap], 16) == 0, status[cap])
report("no-new-privs", status["NoNewPrivs"].strip() == "1", status["NoNewPrivs"])
report("seccomp-filter", status["Seccomp"].strip() == "2", status["Seccomp"])

# 6. Not root.
want_uid = os.environ["PROBE_UID"]
report("uid-not-root", os.getuid() != 0 and (want_uid == "any" or os.getuid() == int(want_uid)), str(os.getuid()))

# 7. A setuid binary in the slug does not raise privileges.
if os.path.exists("/app/suid-id"):
    st = os.stat("/app/suid-id")
    out = os.popen("/app/suid-id -u").read().strip()
    report("setuid-ignored", st.st_mode & stat.S_ISUID and out == str(os.getuid()), "euid %s" % out)

# 8. Blocked system calls (x86_64 numbers).
blocked = {
    "mount": (165, 0, 0, 0, 0, 0), "umount2": (166, 0, 0), "pivot_root": (155, 0, 0),
    "unshare-user": (272, 0x10000000), "unshare-mount": (272, 0x20000), "setns": (308, 0, 0),
    "keyctl": (250, 0, -3, 0), "add_key": (248, 0, 0, 0, 0, 0), "request_key": (249, 0, 0, 0, 0),
    "bpf": (321, 0, 0, 0), "perf_event_open": (298, 0, 0, -1, -1, 0), "ptrace-attach": (101, 16, 1, 0, 0),
    "kexec_load": (246, 0, 0, 0, 0), "init_module": (175, 0, 0, 0), "finit_module": (313, 0, 0, 0),
    "open_by_handle_at": (304, -100, 0, 0), "io_uring_setup": (425, 1, 0), "userfaultfd": (323, 0),
    "settimeofday": (164, 0, 0), "clock_settime": (227, 0, 0), "swapon": (167, 0, 0),
    "reboot": (169, 0xfee1dead, 672274793, 0x1234567, 0), "syslog": (103, 3, 0, 0),
}
for name, call in blocked.items():
    r, e = syscall(*call)
    report("syscall-blocked " + name, r == -1 and e in (errno.EPERM, errno.ENOSYS), "returned %d errno %d" % (r, e))

# 9. Masked and read-only kernel surfaces.
for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats"):
    try:
        data = read(p)
        report("masked " + p, len(data) == 0, "%d bytes" % len(data))
    except OSError as e:
        report("masked " + p, e.errno in (errno.EACCES, errno.EPERM, errno.ENOENT), "errno %d" % e.errno)
report("masked /sys/firmware", not os.path.exists("/sys/firmware") or os.listdir("/sys/firmware") == [])
for p in ("/proc/sys/kernel/hostname", "/proc/sysrq-trigger", "/sys/kernel/mm/transparent_hugepage/enabled"):
    if os.path.exists(p):
        ok, detail = fails(lambda: open(p, "w").write("x"))
        report("read-only " + p, ok, detail)

# 10. cgroups cannot be written.
ok, detail = fails(lambda: os.mkdir("/sys/fs/cgroup/probe"))
report("cgroupfs-read-only", ok, detail)

# 11. Kernel logs and symbols.
ok, detail = fails(lambda: read("/dev/kmsg"))
report("dmesg-denied", ok, detail)
syms = read("/proc/kallsyms").decode().splitlines()[:5]
report("kallsyms-zeroed", all(l.startswith("0000000000000000") for l in syms), syms[:1])
report("debugfs-absent", not os.path.exists("/sys/kernel/debug") or os.listdir("/sys/kernel/debug") == [])

# 12. Devices.
allowed = {"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "mqueue",
           "fd", "stdin", "stdout", "stderr", "console", "core"}
report("dev-allowlist", set(os.listdir("/dev")) <= allowed, sorted(set(os.listdir("/dev")) - allowed))
ok, detail = fails(lambda: os.mknod("/tmp/probe-mem", stat.S_IFCHR | 0o600, os.makedev(1, 1)))
report("mknod-denied", ok, detail)
report("no-kvm-mem", not os.path.exists("/dev/kvm") and not os.path.exists("/dev/mem"))

# 13. Writes are capped: /dev/shm has a small size of its own.
st = os.statvfs("/dev/shm")
report("dev-shm-capped", st.f_blocks * st.f_frsize <= 128 << 20, "%d bytes" % (st.f_blocks * st.f_frsize))

# 14. The cwd is inside the root (the descriptors were checked first).
cwd = os.readlink("/proc/self/cwd")
report("cwd-inside-root", cwd == os.getcwd() and os.path.exists(cwd), cwd)

# The init's and our own binaries cannot be overwritten through /proc
# (the CVE-2019-5736 class).
for p in ("/proc/1/exe", "/proc/self/exe"):
    ok, detail = fails(lambda: open(p, "r+b"), (errno.EPERM, errno.EACCES, errno.EROFS, errno.ETXTBSY, errno.ENOENT))
    report("exe-not-writable " + p, ok, detail)

# 15. No raw packets.
try:
    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    report("af-packet-denied", False, "opened")
except OSError as e:
    report("af-packet-denied", e.errno in (errno.EPERM, errno.EACCES), "errno %d" % e.errno)

# 16. File descriptor limit.
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
report("nofile-limit", hard <= 10000, "%d/%d" % (soft, hard))

print("done", "FAILED" if failed else "passed")
