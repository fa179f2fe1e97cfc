"""App A of BenchmarkNoisyNeighbour: a dyno that misbehaves.

python3 hog.py mem MB   touch MB of memory (meant: past the kernel's limit)
python3 hog.py stream MB write over MB of memory again and again (after the
                        first pass, no page faults: only the caches and
                        the memory bus)
python3 hog.py disk     fill /app's writable layer, again and again
python3 hog.py inodes   fill /tmp and /dev/shm, then /app's inodes with
                        empty files, again and again
python3 hog.py churn    create and delete 2,000 empty files in /app, again
                        and again (what a cache of small files does)
python3 hog.py crash    exit with status 1 after 2 s
python3 hog.py cpu N    N busy processes
python3 hog.py log      one 1 MB line without a newline, then short lines
                        ("flood N") as fast as it can
python3 hog.py egress   send to $SINK (host:port, an HTTP server on the
                        internet) as fast as it can, in one endless POST

Paths are under $HOG_ROOT when it is set: the benchmark's bare reference
runs the same hog as a plain process, outside a dyno's file system.
"""
import errno
import os
import shutil
import socket
import sys
import time

ROOT = os.environ.get("HOG_ROOT", "")


def say(msg):
    sys.stdout.write("hog: %s\n" % msg)
    sys.stdout.flush()


def mem(mb):
    say("mem: touching %d MB" % mb)
    held = [b"\1" * (64 << 20) for _ in range(mb // 64)]
    say("mem: still alive, holding %d MB" % (len(held) * 64))
    time.sleep(3600)


def stream(mb):
    buf, block = bytearray(mb << 20), b"\1" * (1 << 20)
    n, t = 0, time.time()
    while True:
        for i in range(mb):
            buf[i << 20:(i + 1) << 20] = block
        n += mb
        if time.time() - t >= 1:
            say("stream: %.1f GB/s" % (n / 1024 / (time.time() - t)))
            n, t = 0, time.time()


def fill(path):
    """Writes 1 MB blocks to path until a write fails: MB written, error."""
    block = b"\1" * (1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    n = 0
    try:
        while True:
            n += os.write(fd, block)
    except OSError as e:
        return n >> 20, errno.errorcode.get(e.errno, str(e.errno))
    finally:
        os.close(fd)


def files(dir, most):
    """Creates up to most empty files in dir, saying how many every
    10,000: how many, error."""
    os.makedirs(dir, exist_ok=True)
    n, t = 0, time.time()
    try:
        while n < most:
            os.close(os.open("%s/%d" % (dir, n), os.O_WRONLY | os.O_CREAT, 0o600))
            n += 1
            if n % 10000 == 0:
                say("files: %d in %.1f s" % (n, time.time() - t))
    except OSError as e:
        return n, errno.errorcode.get(e.errno, str(e.errno))
    return n, "none"


def disk():
    for cycle in range(1, 1 << 30):
        t = time.time()
        mb, err = fill(ROOT + "/app/fill")
        say("disk %d: /app: %d MB in %.1f s, then %s" % (cycle, mb, time.time() - t, err))
        os.remove(ROOT + "/app/fill")


def inodes():
    # The tmpfs mounts first: they take a second, the inodes longer than
    # a round of the benchmark.
    for cycle in range(1, 1 << 30):
        for d in (ROOT + "/tmp", ROOT + "/dev/shm"):
            t = time.time()
            try:
                mb, err = fill(d + "/fill")
            except OSError as e:
                mb, err = 0, errno.errorcode.get(e.errno, str(e.errno))
            say("inodes %d: %s: %d MB in %.1f s, then %s" % (cycle, d, mb, time.time() - t, err))
        t = time.time()
        n, err = files(ROOT + "/app/files", 1000000)
        say("inodes %d: /app: %d empty files in %.1f s, then %s" % (cycle, n, time.time() - t, err))
        for p in (ROOT + "/tmp/fill", ROOT + "/dev/shm/fill"):
            os.remove(p)
        shutil.rmtree(ROOT + "/app/files")


def churn():
    os.makedirs(ROOT + "/app/churn", exist_ok=True)
    n, t = 0, time.time()
    while True:
        for i in range(2000):
            os.close(os.open(ROOT + "/app/churn/%d" % i, os.O_WRONLY | os.O_CREAT, 0o600))
        for i in range(2000):
            os.remove(ROOT + "/app/churn/%d" % i)
        n += 2000
        if time.time() - t >= 1:
            say("churn: %d files a second" % (n / (time.time() - t)))
            n, t = 0, time.time()


def crash():
    say("crash: up, exiting in 2 s")
    time.sleep(2)
    sys.exit(1)


def cpu(n):
    for _ in range(n - 1):
        if os.fork() == 0:
            break
    while True:
        pass


def log():
    os.write(1, b"x" * (1 << 20))
    seq = 0
    while True:
        os.write(1, "".join("flood %d\n" % i for i in range(seq, seq + 1000)).encode())
        seq += 1000


def egress():
    host, port = os.environ["SINK"].rsplit(":", 1)
    block = b"\1" * (1 << 16)
    while True:
        try:
            s = socket.create_connection((host, int(port)))
            s.sendall(b"POST / HTTP/1.1\r\nHost: sink\r\nContent-Length: %d\r\n\r\n" % (1 << 50))
            while True:
                s.sendall(block)
        except OSError as e:
            say("egress: %s" % e)
            time.sleep(1)


if __name__ == "__main__":
    mode, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    {"mem": mem, "stream": stream, "disk": disk, "inodes": inodes, "churn": churn, "crash": crash, "cpu": cpu, "log": log, "egress": egress}[mode](*args)
