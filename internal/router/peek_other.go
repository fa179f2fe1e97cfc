//go:build !linux

package router

// peerClosed is only implemented on Linux; elsewhere requests on a pooled
// connection the dyno has just closed follow the Transport's rule alone.
func peerClosed(fd uintptr) bool { return false }
