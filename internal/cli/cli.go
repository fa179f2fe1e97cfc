// Package cli is the grid client: Heroku-CLI-style commands (apps,
// config, releases, ps, logs, login) that talk to the grid API over HTTP
// and print what the Heroku CLI prints, closely enough that Heroku habits
// and scripts carry over.
//
// It must never import the platform's server side (store, api, grid): the
// only contract with the server is the Platform API and its wire shapes in
// package schema. It never prints API keys, and config values only when
// the user asks for them (config, config:get, config:set).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Env is what the CLI needs from the process around it, so tests can run
// it in-process.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (GRID_API_URL, GRID_API_KEY, GRID_APP,
	// HOME, XDG_CONFIG_HOME, TZ). Nil means os.Getenv.
	Getenv func(string) string
	// Dir is the working directory, where the app's git remote is looked
	// for. Empty means the process's working directory.
	Dir string
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the API refused, the server is unreachable, not logged in
	exitUsage = 2 // the command line is wrong
)

// Main runs one CLI invocation; args exclude the program name. It returns
// the process exit code.
func Main(ctx context.Context, args []string, env Env) int {
	env = env.withDefaults()
	if len(args) == 0 {
		printHelp(env.Stdout)
		return exitOK
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "--help", "-h":
		return helpCommand(env, rest)
	}
	cmd := lookup(name)
	if cmd == nil {
		return report(env.Stderr, unknownCommand(name))
	}
	return report(env.Stderr, cmd.exec(ctx, env, rest))
}

func (e Env) withDefaults() Env {
	if e.Stdin == nil {
		e.Stdin = strings.NewReader("")
	}
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	return e
}

// usageError is a mistake on the command line (exit 2).
type usageError struct {
	msg   string
	usage string // the command's usage line, or empty
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// report prints err the way the Heroku CLI does and returns the exit code.
func report(w io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) {
		return exitError
	}
	var es exitStatus
	if errors.As(err, &es) {
		return int(es)
	}
	printError(w, err.Error())
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.usage != "" {
			fmt.Fprintf(w, "Usage: grid %s\n", ue.usage)
		}
		return exitUsage
	}
	return exitError
}

// exitStatus makes grid exit with this status, printing nothing: a
// one-off dyno's, with run --exit-code.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// printError prints each line of msg behind Heroku's arrow.
func printError(w io.Writer, msg string) {
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		fmt.Fprintf(w, " ▸    %s\n", line)
	}
}
