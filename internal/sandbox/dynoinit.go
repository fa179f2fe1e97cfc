package sandbox

// Every sandbox runs this binary, bind-mounted read-only at initTarget,
// as its pid 1, with the real command as its only child:
//
//	pid 1  /.grid/init -- <Args...>   (uid/gid of the Spec, no capabilities)
//	└─ <Args...>
//
// A PID namespace's init gets only the signals it has a handler for, so a
// command running as pid 1 would silently ignore SIGTERM unless it traps
// it. Under this init the command keeps ordinary signal semantics (Signal
// reaches it directly, since it signals every process), orphans are
// reaped, and the init exits with the command's status (128+signal if it
// was killed), which ends the namespace and everything left in it. The
// init catches every signal and drops it: forwarding would deliver
// Signal's signals to the command twice.
//
// The init also carries the command's output, so that output does not
// depend on the process that started the sandbox (see output.go):
//
//	command stdout ─pipe─► init ─► fd 3: FIFO <run>/<id>/stdout ─► Manager
//	command stderr ─pipe─► init ─► fd 4: FIFO <run>/<id>/stderr ─► Manager
//	                       init ─► fd 5: file <run>/<id>/exit (status, at exit)
//
// It writes to the FIFOs without blocking, in chunks of at most PIPE_BUF
// bytes (which the kernel writes whole or not at all) that end at a line
// end unless a line is longer or the command paused mid-line. While a Manager
// reads, a full FIFO makes the init wait (and the command's own pipe then
// fills and blocks the command, as a slow terminal would). While none
// reads, a write fails with EPIPE and the init drops the chunk, and the
// rest of a line it cut; the command never blocks and never gets SIGPIPE.
// When the command exits, the init passes on what is left in its pipes
// (for at most grid_drain_ms), writes the status to fd 5 and exits with
// it. The init makes itself non-dumpable, so the command (same uid) can
// neither ptrace it nor open its descriptors through /proc/1/fd.
//
// With -t (Spec.TTY) the command gets a terminal instead: the init opens
// a pseudo-terminal in the sandbox's own devpts, makes the command a
// session leader with the terminal as its controlling tty and its fds
// 0-2, and relays both ways: its stdin (fd 0) into the terminal and the
// terminal's output to fd 3, so that line editing, job control and
// Ctrl-C (the terminal's line discipline turns it into SIGINT for the
// foreground job) behave as in a local shell. Window sizes arrive on
// fd 6 as two native uint16s, rows then columns; the first is read
// before the command starts.
//
// The init is C, run from an ELF constructor before the Go runtime starts:
// it costs well under a millisecond and no Go threads (which would count
// against the sandbox's pids limit). In every other process the
// constructor returns at once. A command that cannot be run exits 127
// (not found) or 126, as a shell would.

/*
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { grid_out_fd = 3, grid_err_fd = 4, grid_status_fd = 5, grid_winsize_fd = 6, grid_drain_ms = 2000 };

// grid_relay moves one stream of the command's output to its FIFO.
struct grid_relay {
	int in;      // read end of the command's pipe; -1 at EOF
	int out;     // FIFO to the Manager
	size_t len;  // bytes in buf not yet written
	int blocked; // the FIFO was full: wait until it is writable
	int skip;    // drop input up to the next newline (a drop cut a line)
	char buf[PIPE_BUF];
};

static int grid_wake[2]; // SIGCHLD wakes the poll loop through this pipe

// grid_input moves the init's stdin into the terminal (-t only). A
// command that does not read leaves it waiting for room, never dropped.
struct grid_input {
	int in;  // fd 0; -1 at EOF or without a terminal
	int out; // the terminal's master side; -1 without a terminal
	int winsize; // fd 6; -1 at EOF or without a terminal
	size_t len;
	char buf[PIPE_BUF];
};

static struct grid_input grid_in = {.in = -1, .out = -1, .winsize = -1};

// grid_resize applies the window sizes waiting on fd 6; the kernel sends
// SIGWINCH to the terminal's foreground job when the size changes.
static void grid_resize(void) {
	uint16_t rc[2];
	for (;;) {
		ssize_t n = read(grid_in.winsize, rc, sizeof rc);
		if (n == sizeof rc) {
			struct winsize ws = {.ws_row = rc[0], .ws_col = rc[1]};
			ioctl(grid_in.out, TIOCSWINSZ, &ws);
			continue;
		}
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			close(grid_in.winsize);
			grid_in.winsize = -1;
		}
		return;
	}
}

// grid_type reads stdin when buf is empty, else writes buf to the
// terminal.
static void grid_type(void) {
	if (grid_in.len == 0) {
		ssize_t n = read(grid_in.in, grid_in.buf, sizeof grid_in.buf);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			close(grid_in.in);
			grid_in.in = -1;
		}
		if (n > 0)
			grid_in.len = n;
	}
	if (grid_in.len > 0) {
		ssize_t w = write(grid_in.out, grid_in.buf, grid_in.len);
		if (w > 0) {
			memmove(grid_in.buf, grid_in.buf + w, grid_in.len - w);
			grid_in.len -= w;
		}
	}
}

static void grid_on_signal(int sig) {
	if (sig == SIGCHLD) {
		int e = errno;
		ssize_t n = write(grid_wake[1], "", 1);
		(void)n;
		errno = e;
	}
}

// grid_ready is how much of buf to write now: whole lines; a partial
// line only when it fills buf, at EOF, or when the command has paused
// (a prompt), so that drops fall between lines.
static size_t grid_ready(struct grid_relay *r) {
	char *nl = memrchr(r->buf, '\n', r->len);
	if (nl != NULL)
		return nl + 1 - r->buf;
	if (r->len == 0 || r->len == sizeof r->buf || r->in < 0)
		return r->len;
	struct pollfd p = {.fd = r->in, .events = POLLIN};
	return poll(&p, 1, 0) == 0 ? r->len : 0;
}

// grid_flush writes what is ready until nothing is, or the FIFO is full
// (blocked). With nobody reading, the write fails and the chunk is
// dropped.
static void grid_flush(struct grid_relay *r) {
	r->blocked = 0;
	for (;;) {
		size_t n = grid_ready(r);
		if (n == 0)
			return;
		ssize_t w = write(r->out, r->buf, n);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			r->blocked = 1;
			return;
		}
		if (w < 0) {
			if (r->buf[n - 1] != '\n')
				r->skip = 1;
			w = n;
		}
		memmove(r->buf, r->buf + w, r->len - w);
		r->len -= w;
	}
}

// grid_fill reads what the command wrote into the free part of buf. It
// returns 0 when nothing was there (or at EOF).
static int grid_fill(struct grid_relay *r) {
	ssize_t n = read(r->in, r->buf + r->len, sizeof r->buf - r->len);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(r->in);
		r->in = -1;
	}
	if (n <= 0)
		return 0;
	if (r->skip) {
		char *start = r->buf + r->len, *nl = memchr(start, '\n', n);
		if (nl == NULL)
			return 1;
		r->skip = 0;
		n = start + n - (nl + 1);
		memmove(start, nl + 1, n);
	}
	r->len += n;
	return 1;
}

static long grid_ms_since(const struct timespec *t0) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

// grid_drain passes on what the command left in its pipes, for at most
// grid_drain_ms: it stops reading a pipe once it is empty, since orphans
// may hold it open for ever.
static void grid_drain(struct grid_relay *rs) {
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p[2];
		int np = 0, busy = 0;
		for (int i = 0; i < 2; i++) {
			struct grid_relay *r = &rs[i];
			if (!r->blocked && r->in >= 0 && r->len < sizeof r->buf && !grid_fill(r) && r->in >= 0) {
				close(r->in);
				r->in = -1;
			}
			grid_flush(r);
			if (r->blocked)
				p[np++] = (struct pollfd){.fd = r->out, .events = POLLOUT};
			busy |= r->in >= 0 || r->len > 0;
		}
		long left = grid_drain_ms - grid_ms_since(&t0);
		if (!busy || left <= 0)
			return;
		if (np > 0)
			poll(p, np, left);
	}
}

// grid_reap reaps every exited child; it returns 1 and sets *code once
// the command is among them.
static int grid_reap(pid_t child, int *code) {
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return 0;
		if (pid == child) {
			*code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
			return 1;
		}
	}
}

static void grid_exit(struct grid_relay *rs, int code) {
	grid_drain(rs);
	char s[16];
	int n = snprintf(s, sizeof s, "%d\n", code);
	ssize_t w = write(grid_status_fd, s, n);
	(void)w;
	_exit(code);
}

// grid_relay_loop relays output until the command exits, then exits with
// its status.
static void grid_relay_loop(pid_t child, struct grid_relay *rs) {
	for (;;) {
		struct pollfd p[5] = {{.fd = grid_wake[0], .events = POLLIN}};
		int np = 1, at[2] = {-1, -1}, at_in = -1, at_ws = -1;
		if (grid_in.len > 0)
			p[at_in = np++] = (struct pollfd){.fd = grid_in.out, .events = POLLOUT};
		else if (grid_in.in >= 0)
			p[at_in = np++] = (struct pollfd){.fd = grid_in.in, .events = POLLIN};
		if (grid_in.winsize >= 0)
			p[at_ws = np++] = (struct pollfd){.fd = grid_in.winsize, .events = POLLIN};
		for (int i = 0; i < 2; i++) {
			struct grid_relay *r = &rs[i];
			if (r->blocked)
				p[np] = (struct pollfd){.fd = r->out, .events = POLLOUT};
			else if (r->in >= 0 && r->len < sizeof r->buf)
				p[np] = (struct pollfd){.fd = r->in, .events = POLLIN};
			else
				continue;
			at[i] = np++;
		}
		if (poll(p, np, -1) < 0 && errno != EINTR)
			_exit(255);
		if (p[0].revents) {
			char b[64];
			while (read(grid_wake[0], b, sizeof b) > 0) {
			}
			int code;
			if (grid_reap(child, &code))
				grid_exit(rs, code);
		}
		if (at_in >= 0 && p[at_in].revents)
			grid_type();
		if (at_ws >= 0 && p[at_ws].revents)
			grid_resize();
		for (int i = 0; i < 2; i++) {
			struct grid_relay *r = &rs[i];
			if (at[i] < 0 || p[at[i]].revents == 0)
				continue;
			if (!r->blocked)
				grid_fill(r);
			grid_flush(r);
		}
	}
}

// grid_pipe makes the pipe for one of the command's streams: the read end
// is ours (non-blocking), the write end becomes the command's fd target.
static int grid_pipe(int p[2]) {
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	return fcntl(p[0], F_SETFL, O_NONBLOCK);
}

// grid_terminal opens a pseudo-terminal for -t: out[0] is the master
// side (non-blocking, for the output relay and grid_type), out[1] and
// err[1] its slave side for the command; err[0] is -1, as all output
// comes through the terminal. It applies the first window size on fd 6.
static int grid_terminal(int out[2], int err[2]) {
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
		return -1;
	char *name = ptsname(m);
	int s = name == NULL ? -1 : open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0 || fcntl(m, F_SETFL, O_NONBLOCK) < 0)
		return -1;
	out[0] = m;
	out[1] = s;
	err[0] = -1;
	err[1] = s;
	grid_in = (struct grid_input){.in = 0, .out = m, .winsize = grid_winsize_fd};
	fcntl(0, F_SETFL, O_NONBLOCK);
	fcntl(grid_winsize_fd, F_SETFL, O_NONBLOCK);
	grid_resize();
	return 0;
}

// grid_controlling_tty makes the command (just forked) a session leader
// with the terminal slave as its controlling tty and stdin.
static int grid_controlling_tty(int slave) {
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0)
		return -1;
	return 0;
}

__attribute__((constructor)) static void grid_dyno_init(int argc, char **argv, char **envp) {
	(void)envp;
	if (argc < 3 || strcmp(argv[0], "/.grid/init") != 0 || getpid() != 1)
		return;
	int tty = strcmp(argv[1], "-t") == 0;
	if (strcmp(argv[1 + tty], "--") != 0 || argc < 3 + tty)
		return;
	argv += tty;
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	int out[2], err[2];
	if (pipe2(grid_wake, O_CLOEXEC | O_NONBLOCK) < 0)
		_exit(126);
	if (tty) {
		if (grid_terminal(out, err) < 0) {
			dprintf(grid_err_fd, "sandbox init: terminal: %s\n", strerror(errno));
			_exit(126);
		}
	} else if (grid_pipe(out) < 0 || grid_pipe(err) < 0)
		_exit(126);
	for (int fd = grid_out_fd; fd <= grid_winsize_fd; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC); // the Manager's, never the command's
	fcntl(grid_out_fd, F_SETFL, O_NONBLOCK);
	fcntl(grid_err_fd, F_SETFL, O_NONBLOCK);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = grid_on_signal;
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL); // fails harmlessly for libc-reserved signals
	pid_t child = fork();
	if (child == 0) {
		if (tty && grid_controlling_tty(out[1]) < 0) {
			dprintf(err[1], "sandbox init: terminal: %s\n", strerror(errno));
			_exit(126);
		}
		dup2(out[1], 1);
		dup2(err[1], 2);
		execvp(argv[2], argv + 2); // exec resets the handlers to the defaults
		int e = errno;
		fprintf(stderr, "%s: %s\n", argv[2], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	if (child < 0) {
		dprintf(grid_err_fd, "sandbox init: fork: %s\n", strerror(errno));
		_exit(126);
	}
	close(out[1]);
	if (err[1] != out[1])
		close(err[1]);
	static struct grid_relay rs[2];
	rs[0] = (struct grid_relay){.in = out[0], .out = grid_out_fd};
	rs[1] = (struct grid_relay){.in = err[0], .out = grid_err_fd};
	grid_relay_loop(child, rs);
}
*/
import "C"
