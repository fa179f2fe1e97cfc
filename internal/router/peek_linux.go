package router

import (
	"syscall"
	"unsafe"
)

// peerClosed reports whether the peer of the TCP socket fd has closed the
// connection (an orderly close or a reset is waiting to be read), without
// reading anything or blocking.
func peerClosed(fd uintptr) bool {
	var b [1]byte
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == 0 && n == 0 || errno == syscall.ECONNRESET
}
