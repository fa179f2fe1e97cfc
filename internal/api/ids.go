package api

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
)

// stableID derives a UUID-shaped id from parts, for things that are
// identified by name in the store but by id on the wire (accounts,
// formations, sizes, stacks). The same parts always give the same id.
func stableID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8: custom (RFC 9562)
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// apiTime is a time as the API shows it: UTC, whole seconds, like
// Heroku's "2026-01-05T14:47:41Z".
func apiTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// apiTimePtr is apiTime for nullable fields; the zero time is null.
func apiTimePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	at := apiTime(t)
	return &at
}
