// Package slug is the slug archive format: packing a built app tree into a
// tar.gz, unpacking one safely (no path escapes, no devices, no symlinks
// pointing out, size limits), the per-host cache of unpacked slugs, and the
// Procfile. It has no knowledge of NATS or sandboxes.
//
// Archives are hostile input: Unpack and UnpackTar must never create,
// change or follow anything outside their target directory, whatever the
// archive says, and must never be slower than linear in its size.
package slug

import (
	"fmt"

	"github.com/dynogrid/grid/internal/grid"
)

// Limits shared by packing and unpacking.
const (
	// MaxEntries bounds the number of entries one archive may hold.
	MaxEntries = 500_000
	// MaxNameBytes bounds the length of an entry's path and of a symlink's
	// target (Linux's PATH_MAX).
	MaxNameBytes = 4096
)

// Info describes a packed archive.
type Info struct {
	Size     int64  // compressed bytes
	Checksum string // "SHA256:<hex>"
}

// tooLarge is the error for an archive over its limit, phrased for the
// person who pushed the app.
func tooLarge(what string, limit int64) error {
	return fmt.Errorf("%s is larger than the %s limit: %w", what, HumanSize(limit), grid.ErrTooLarge)
}

// HumanSize renders a limit: "1 GiB", "16 KiB" for whole units, else as
// HumanBytes does.
func HumanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0 && n < 1<<30:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0 && n < 1<<20:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return HumanBytes(n)
}

// HumanBytes renders a byte count with one decimal as Heroku's build
// output does: "Done: 2.1M".
func HumanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
