package slug

import (
	"sort"
	"strconv"
	"strings"
)

// DefaultPath is a dyno's default PATH: the slug's bin first, then the
// stack's. A PATH config var replaces it.
const DefaultPath = "/app/bin:/usr/local/bin:/usr/bin:/bin"

// dynoPrelude runs in bash before a dyno's command, as Heroku's dyno
// start does: every /app/.profile.d/*.sh, then /app/.profile, sourced in
// that order; then the command runs in a fresh `bash -c` that inherits
// what they exported. The command is passed as an argument ($1), never
// pasted into the script, so nothing in it is evaluated twice.
const dynoPrelude = `__grid_command=$1
for __grid_f in /app/.profile.d/*.sh; do
  if [ -r "$__grid_f" ]; then . "$__grid_f"; fi
done
unset __grid_f
if [ -r /app/.profile ]; then . /app/.profile; fi
exec /bin/bash -c "$__grid_command"
`

// ProcessCommand returns the argv that runs a process type's command (from
// the Procfile or a buildpack's defaults) in a dyno, with working
// directory /app: bash sources the profile scripts, then runs the command
// with `bash -c`. The host agent and the build's boot check both use it so
// that a slug that passes the boot check starts the same way in a dyno.
func ProcessCommand(command string) []string {
	return []string{"/bin/bash", "-c", dynoPrelude, "dyno", command}
}

// ProcessEnv returns a dyno's environment, sorted: HOME=/app and PATH (which
// a config var may override), the app's config vars, then PORT and DYNO,
// which the platform always sets. Config vars the sandbox reserves
// (_LIBCONTAINER_*) are left out.
func ProcessEnv(config map[string]string, dyno string, port int) []string {
	env := map[string]string{"HOME": "/app", "PATH": DefaultPath}
	for k, v := range config {
		if strings.HasPrefix(k, "_LIBCONTAINER_") || k == "HOME" {
			continue
		}
		env[k] = v
	}
	env["PORT"] = strconv.Itoa(port)
	env["DYNO"] = dyno
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
