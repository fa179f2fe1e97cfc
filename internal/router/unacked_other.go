//go:build !linux

package router

import (
	"syscall"
	"time"
)

// setUnackedTimeout is only implemented on Linux; elsewhere a request to a
// silent host waits for the host's loss verdict or RequestTimeout.
func setUnackedTimeout(syscall.RawConn, time.Duration) {}
