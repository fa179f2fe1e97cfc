package slug

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
)

// Procfile limits: a Procfile is a few lines; anything near these is an
// accident or an attack.
const (
	MaxProcfileBytes = 64 << 10
	MaxProcessTypes  = grid.MaxDynosPerApp
)

// ParseProcfile parses a Procfile into process type -> command.
//
// Each line is "type: command". Blank lines and lines starting with "#"
// are ignored; CRLF line ends and a leading UTF-8 byte order mark are
// accepted; spaces around the type and the command are trimmed. The type
// must satisfy grid.ValidateProcessType. A type declared twice is an error
// rather than last-wins, because the line that silently loses is almost
// always a mistake the pusher wants to hear about. Errors wrap ErrInvalid
// (ErrTooLarge over MaxProcfileBytes) and name the line.
func ParseProcfile(r io.Reader) (map[string]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxProcfileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("Procfile: %w", err)
	}
	if len(data) > MaxProcfileBytes {
		return nil, fmt.Errorf("Procfile is larger than %d bytes: %w", MaxProcfileBytes, grid.ErrTooLarge)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	types := map[string]string{}
	first := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		typ, cmd, ok := strings.Cut(line, ":")
		if !ok {
			return nil, procfileErr(n, "expected \"type: command\"")
		}
		typ, cmd = strings.TrimSpace(typ), strings.TrimSpace(cmd)
		if err := grid.ValidateProcessType(typ); err != nil {
			return nil, fmt.Errorf("Procfile line %d: %w", n, err)
		}
		if cmd == "" {
			return nil, procfileErr(n, "process type "+typ+" has no command")
		}
		if strings.ContainsAny(cmd, "\x00\r") {
			return nil, procfileErr(n, "command contains a NUL or carriage-return byte")
		}
		if at, dup := first[typ]; dup {
			return nil, procfileErr(n, fmt.Sprintf("process type %s is already declared on line %d", typ, at))
		}
		if len(types) == MaxProcessTypes {
			return nil, procfileErr(n, fmt.Sprintf("more than %d process types", MaxProcessTypes))
		}
		types[typ], first[typ] = cmd, n
	}
	return types, nil
}

func procfileErr(line int, what string) error {
	return fmt.Errorf("Procfile line %d: %s: %w", line, what, grid.ErrInvalid)
}
