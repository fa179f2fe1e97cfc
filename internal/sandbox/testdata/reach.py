# reach runs in sandbox A and tries everything a tenant can to reach
# another tenant's sandbox B on the same Manager (reliability.md I-2,
# TestCrossTenantReach). It is told what the worst-placed attacker could
# learn: B_PIDS (B's host pids, comma-separated), B_PATHS (B's host paths:
# writable layer, slug, state; colon-separated), B_FILES (names of B's
# sentinel files, comma-separated) and B_SECRET_NAME (the name of a
# variable only B's environment holds). It prints "tried <what>" for each
# attempt, "REACHED <what>: <detail>" for each that got anywhere, and
# "done".
import ctypes, errno, os, signal, sys

libc = ctypes.CDLL(None, use_errno=True)
b_pids = [int(p) for p in os.environ["B_PIDS"].split(",")]
b_paths = os.environ["B_PATHS"].split(":")
b_files = os.environ["B_FILES"].split(",")
secret = (os.environ["B_SECRET_NAME"] + "=").encode()


def attempt(what, fn):
    print("tried", what)
    try:
        detail = fn()
    except OSError:
        return
    if detail is not False:
        print("REACHED %s: %r" % (what, detail))


def read(path):
    with open(path, "rb") as f:
        return f.read(4096)


# B's files through guessed host paths, straight and through /proc.
guesses = list(b_paths) + ["/etc/shadow", "/var/lib/grid"]
for pid in b_pids:
    guesses += ["/proc/%d/root" % pid, "/proc/%d/environ" % pid, "/proc/%d/cwd" % pid]
    guesses += ["/proc/%d/root/app/%s" % (pid, f) for f in b_files]
for p in guesses:
    attempt("stat " + p, lambda: os.stat(p) and True)
    attempt("open " + p, lambda: read(p))
    attempt("list " + p, lambda: os.listdir(p))

# Every process A can see: its root and environment must be A's own.
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    def root_has_b():
        names = set(os.listdir("/proc/%s/root/app" % pid))
        return sorted(names & set(b_files)) or False
    attempt("root of pid " + pid, root_has_b)
    attempt("environ of pid " + pid, lambda: secret in read("/proc/%s/environ" % pid) or False)

# Signals to B's processes by host pid: kill, pidfd, and a broadcast.
for pid in b_pids:
    for sig in (0, signal.SIGKILL):
        attempt("kill %d %d" % (pid, sig), lambda: os.kill(pid, sig) or "delivered")
    def pidfd():
        fd = libc.syscall(434, pid, 0)  # pidfd_open
        if fd < 0:
            raise OSError(ctypes.get_errno(), "pidfd_open")
        return "pidfd %d" % fd
    attempt("pidfd_open %d" % pid, pidfd)
attempt("kill -1 SIGKILL", lambda: os.kill(-1, signal.SIGKILL) or False)  # only A's own: B must live on

print("done")
sys.stdout.flush()
