// Package gitrecv is Dynogrid's git service, the equivalent of
// git.heroku.com: git smart HTTP in front of git's own receive-pack (push)
// and upload-pack (clone, fetch).
//
// A push works like this. git receive-pack takes the pack into its
// quarantine and runs the pre-receive hook, which is the grid binary itself
// (`grid hook pre-receive`, see RunHook). The hook connects to the Receiver
// over a unix socket made for that one request, sends the ref updates and a
// `git archive` of the commit to deploy, and relays what the Receiver sends
// back to git, which shows it to the pusher as "remote:" lines. The Receiver
// calls Deployer.Deploy with the source and an output stream; the hook's
// exit status, 0 or 1, makes git accept or reject the refs.
//
// The package must never speak the pack protocol itself, never hand user
// input to a shell, never touch the filesystem before an app name is
// validated, never let a repository choose its own hooks or loosen the
// receive checks, and never log credentials.
package gitrecv
