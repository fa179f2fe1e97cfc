// Command grid is Dynogrid's one binary: `grid up` runs the whole platform,
// `grid hook` is git's pre-receive hook, `grid init` is the sandbox init
// (re-executed by libcontainer), and everything else is the CLI.
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
		switch os.Args[1] {
		case "up":
			os.Exit(runUp(os.Args[2:]))
		case "hook":
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
