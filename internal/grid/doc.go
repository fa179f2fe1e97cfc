// Package grid is Dynogrid's domain vocabulary: apps, releases, slugs,
// formations, dynos, hosts and the error categories every other package
// wraps. It holds plain data and pure rules (name validation, release
// descriptions, formation arithmetic) and must never do I/O or import
// anything outside the standard library.
package grid
