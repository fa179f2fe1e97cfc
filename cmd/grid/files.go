package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
)

// secretFile returns the secret stored in path, creating it (0600) first.
func secretFile(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	s := randomHex(32)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

// stableID returns this machine's id for a role, kept in the data
// directory so a restart is the same host or router.
func stableID(data, kind string) (string, error) {
	id, err := secretFile(filepath.Join(data, kind+"-id"))
	if err != nil {
		return "", err
	}
	return string(kind[0]) + id[:12], nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
