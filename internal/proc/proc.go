// Package proc starts child processes that must die with this one.
//
// Linux sends a child's parent-death signal (SysProcAttr.Pdeathsig) when
// the *thread* that forked it exits, not the process. Go may end an OS
// thread while the process lives on: grid's namespace code locks
// goroutines to threads it then lets die. A server started from such a
// thread would be signalled at a random moment. Start forks from one
// thread that is locked for good, so the signal comes only when the
// process itself ends.
package proc

import (
	"os/exec"
	"runtime"
	"sync"
)

type request struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	once     sync.Once
	requests chan request
)

// Start starts cmd from the process's spawning thread.
func Start(cmd *exec.Cmd) error {
	once.Do(func() {
		requests = make(chan request)
		go spawner()
	})
	r := request{cmd: cmd, done: make(chan error, 1)}
	requests <- r
	return <-r.done
}

func spawner() {
	runtime.LockOSThread() // never unlocked: this thread lives as long as the process
	for r := range requests {
		r.done <- r.cmd.Start()
	}
}
