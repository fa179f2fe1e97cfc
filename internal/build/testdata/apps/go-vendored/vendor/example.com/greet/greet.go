// Package greet exists only in the app's vendor directory.
package greet

// Hello is the greeting.
func Hello() string { return "hello from vendor/" }
