// Command grid is Dynogrid's one binary. Roles: `grid up` runs the whole
// platform in one process; `grid server`, `grid host` and `grid router`
// run one role each for a cluster. `grid hook` is git's pre-receive hook,
// `grid init` the sandbox init (re-executed by libcontainer), and
// everything else is the CLI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dynogrid/grid/internal/cli"
	"github.com/dynogrid/grid/internal/gitrecv"
	"github.com/dynogrid/grid/internal/sandbox"
)

func main() {
	sandbox.MaybeInit() // never returns inside a sandbox's init
	if len(os.Args) > 1 {
		if role, ok := roles[os.Args[1]]; ok {
			os.Exit(runRole(os.Args[1], role, os.Args[2:]))
		}
		if os.Args[1] == "hook" {
			os.Exit(gitrecv.RunHook(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	wd, _ := os.Getwd()
	os.Exit(cli.Main(ctx, os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Dir: wd,
	}))
}
