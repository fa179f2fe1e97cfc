# hostileslug runs in a sandbox whose slug (/app) is full of symlinks to
# host-looking places (TestHostileSlugSymlinks). It reports, one fact a
# line, what the sandbox's own surfaces are and what every write through
# a slug symlink did:
#
#   mount <path> <fstype>       the file system mounted at path
#   null <kind> <major>:<minor> what /dev/null is
#   file <path> <sha256>        content of a generated /etc file
#   cwd <path>                  the working directory
#   wrote <path> -> <real>      a write succeeded; real is where it went
#   refused <path> <errno>      a write failed
#   done
import errno, hashlib, os, stat, sys

fstype = {}
for line in open("/proc/self/mountinfo"):
    f = line.split()
    fstype[f[4]] = f[f.index("-") + 1]  # the last mount at a point wins
for p in ("/proc", "/dev", "/tmp", "/app", "/sys", "/dev/shm"):
    print("mount", p, fstype.get(p, "none"))

st = os.stat("/dev/null")
kind = "chr" if stat.S_ISCHR(st.st_mode) else "other"
print("null", kind, "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
for p in ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname"):
    with open(p, "rb") as f:
        print("file", p, hashlib.sha256(f.read()).hexdigest())
print("cwd", os.getcwd())

links = []
for top, dirs, files in os.walk("/app"):
    for name in dirs + files:
        p = os.path.join(top, name)
        if os.path.islink(p):
            links.append(p)
for link in sorted(links):
    for target in (link, os.path.join(link, "pwned")):
        try:
            with open(target, "a") as f:
                f.write("pwned\n")
            print("wrote", target, "->", os.path.realpath(target))
        except OSError as e:
            print("refused", target, errno.errorcode.get(e.errno, e.errno))
print("done")
sys.stdout.flush()
