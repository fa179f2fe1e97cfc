package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"

	"github.com/dynogrid/grid/internal/grid"
)

// Backups are pg_dump's custom format, made and restored with the add-on's
// own credentials (its role owns its database), so a backup can hold and
// touch nothing but that database.

// Dump writes a backup of the database at dbURL to w.
func Dump(ctx context.Context, dbURL string, w io.Writer) error {
	return runTool(ctx, "pg_dump", nil, w, "--format=custom", "--no-owner", "--no-privileges", "--dbname="+dbURL)
}

// Restore replaces the contents of the database at dbURL with a backup:
// what the backup holds is dropped first, then recreated.
func Restore(ctx context.Context, dbURL string, backup io.Reader) error {
	return runTool(ctx, "pg_restore", backup, io.Discard, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction", "--dbname="+dbURL)
}

func runTool(ctx context.Context, name string, stdin io.Reader, stdout io.Writer, args ...string) error {
	bin := name
	if dir := findBin(); dir != "" {
		bin = filepath.Join(dir, name)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, &stderr
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PGCONNECT_TIMEOUT=10"}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s: %w", name, err, lastLine(stderr.String()), grid.ErrInvalid)
	}
	return nil
}

func lastLine(s string) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	return string(lines[len(lines)-1])
}
