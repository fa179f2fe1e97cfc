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
// The init is C, run from an ELF constructor before the Go runtime starts:
// it costs well under a millisecond and no Go threads (which would count
// against the sandbox's pids limit). In every other process the
// constructor returns at once. A command that cannot be run exits 127
// (not found) or 126, as a shell would.

/*
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void grid_drop_signal(int sig) { (void)sig; }

__attribute__((constructor)) static void grid_dyno_init(int argc, char **argv, char **envp) {
	(void)envp;
	if (argc < 3 || strcmp(argv[0], "/.grid/init") != 0 || strcmp(argv[1], "--") != 0 || getpid() != 1)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = grid_drop_signal;
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL); // fails harmlessly for libc-reserved signals
	pid_t child = fork();
	if (child == 0) {
		execvp(argv[2], argv + 2); // exec resets the handlers to the defaults
		int e = errno;
		fprintf(stderr, "%s: %s\n", argv[2], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	if (child < 0) {
		perror("sandbox init: fork");
		_exit(126);
	}
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			_exit(255);
		}
		if (pid == child)
			_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
	}
}
*/
import "C"
