package cli

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/dynogrid/grid/internal/schema"
)

// The pg: and redis: commands work on an app's add-ons from the
// operator's machine, with the URLs of its config vars: pg:psql and
// redis:cli run the local psql and redis-cli, pg:info and redis:info ask
// the servers themselves.

var pgInfoCmd = &command{
	name:    "pg:info",
	summary: "show an app's Postgres databases: plan, connections, size, version",
	app:     true,
	run:     func(c *call) error { return addonInfo(c, "heroku-postgresql", pgStats) },
}

var redisInfoCmd = &command{
	name:    "redis:info",
	summary: "show an app's Redis servers: plan, clients, memory, version",
	app:     true,
	run:     func(c *call) error { return addonInfo(c, "heroku-redis", redisStats) },
}

var pgPsqlCmd = &command{
	name:    "pg:psql",
	args:    "[ATTACHMENT]",
	summary: "run psql (installed here) against an app's database (default DATABASE)",
	flags:   []flag{{name: "command", short: "c", value: "SQL", help: "run SQL and exit"}},
	app:     true,
	run:     runPgPsql,
}

var redisCliCmd = &command{
	name:         "redis:cli",
	args:         "[COMMAND...]",
	summary:      "run redis-cli (installed here) against an app's Redis: a command, or a prompt",
	flags:        []flag{{name: "attachment", value: "NAME", help: "which Redis (default REDIS)"}},
	app:          true,
	leadingFlags: true,
	run:          runRedisCli,
}

var pgRotateCmd = &command{
	name:    "pg:credentials:rotate",
	args:    "[ADDON]",
	summary: "give an app's database new credentials; its apps restart with the new URL, the old one stops working",
	flags:   []flag{{name: "confirm", value: "APP", help: "the app's name, to confirm"}},
	app:     true,
	run:     runPgRotate,
}

// attachedURL is the URL of app's attachment name (of service).
func attachedURL(c *call, api *client, app, service, name string) (schema.Addon, string, error) {
	var as []schema.Addon
	if err := api.get(c.ctx, c.appPath(app, "addons"), &as); err != nil {
		return schema.Addon{}, "", err
	}
	var cfg schema.ConfigVars
	if err := api.get(c.ctx, c.appPath(app, "config-vars"), &cfg); err != nil {
		return schema.Addon{}, "", err
	}
	for _, a := range as {
		if a.AddonService.Name != service {
			continue
		}
		for _, at := range a.Attachments {
			if at.App == app && (name == "" || strings.EqualFold(at.Name, name) || a.Name == name) {
				return a, cfg[at.Name+"_URL"], nil
			}
		}
	}
	return schema.Addon{}, "", fmt.Errorf("%s%s has no %s add-on%s.", hexagon, app, service, map[bool]string{true: "", false: " attached as " + name}[name == ""])
}

// addonInfo prints each of app's add-ons of service, with what stats
// learns from its server.
func addonInfo(c *call, service string, stats func(ctx context.Context, url string) [][2]string) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	var as []schema.Addon
	if err := api.get(c.ctx, c.appPath(name, "addons"), &as); err != nil {
		return err
	}
	var cfg schema.ConfigVars
	if err := api.get(c.ctx, c.appPath(name, "config-vars"), &cfg); err != nil {
		return err
	}
	out, shown := c.env.Stdout, 0
	for _, a := range as {
		if a.AddonService.Name != service {
			continue
		}
		var vars []string
		url := ""
		for _, at := range a.Attachments {
			if at.App == name {
				vars = append(vars, at.Name+"_URL")
				url = cfg[at.Name+"_URL"]
			}
		}
		sort.Strings(vars)
		if shown > 0 {
			fmt.Fprintln(out)
		}
		shown++
		header(out, strings.Join(vars, ", "))
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		fields := append([][2]string{{"Plan", strings.TrimPrefix(a.Plan.Name, service+":")}}, stats(ctx, url)...)
		cancel()
		printFields(out, append(fields, [2]string{"Add-on", a.Name}))
	}
	if shown == 0 {
		return fmt.Errorf("%s%s has no %s add-ons.", hexagon, name, service)
	}
	return nil
}

func pgStats(ctx context.Context, url string) [][2]string {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return [][2]string{{"Status", "Unavailable: " + err.Error()}}
	}
	defer conn.Close(context.Background())
	var version, limit string
	var size int64
	var used, conns int
	var owner bool
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), pg_database_size(current_database()),
		(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),
		(SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user),
		coalesce(current_setting('grid.storage_limit', true), ''),
		(SELECT datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user) FROM pg_database WHERE datname = current_database())`).
		Scan(&version, &size, &used, &conns, &limit, &owner)
	if err != nil {
		return [][2]string{{"Status", "Unavailable: " + err.Error()}}
	}
	status, data := "Available", humanBytes(size)
	if n, err := strconv.ParseInt(limit, 10, 64); err == nil && n > 0 {
		data += fmt.Sprintf(" / %s (%.2f%%)", humanBytes(n), 100*float64(size)/float64(n))
	}
	if !owner {
		// The grid took its objects away (internal/postgres storage.go).
		status = "Over its plan's storage: INSERT, UPDATE and CREATE revoked until it is under (TRUNCATE, or addons:upgrade)"
	}
	return [][2]string{{"Status", status}, {"Connections", fmt.Sprintf("%d/%d", used, conns)},
		{"PG Version", version}, {"Data Size", data}}
}

func redisStats(ctx context.Context, url string) [][2]string {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return [][2]string{{"Status", "Unavailable: " + err.Error()}}
	}
	opt.MaxRetries = -1
	r := goredis.NewClient(opt)
	defer r.Close()
	info, err := r.Info(ctx, "server", "clients", "memory").Result()
	if err != nil {
		return [][2]string{{"Status", "Unavailable: " + err.Error()}}
	}
	kv := map[string]string{}
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			kv[k] = v
		}
	}
	return [][2]string{{"Status", "Available"}, {"Version", kv["redis_version"]}, {"Clients", kv["connected_clients"] + "/" + kv["maxclients"]},
		{"Memory", kv["used_memory_human"] + " of " + kv["maxmemory_human"]}}
}

// tool finds a local program: on $PATH, else in PostgreSQL's bin dir.
func tool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name); len(m) > 0 {
		sort.Strings(m)
		return m[len(m)-1], nil
	}
	return "", fmt.Errorf("%s is not installed on this machine.", name)
}

func (c *call) runTool(name string, args ...string) error {
	bin, err := tool(name)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(c.ctx, bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.env.Stdin, c.env.Stdout, c.env.Stderr
	return cmd.Run()
}

func runPgPsql(c *call) error {
	if len(c.args) > 1 {
		return c.usageErr("Give at most one attachment, like DATABASE.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	_, url, err := attachedURL(c, api, name, "heroku-postgresql", firstArg(c.args))
	if err != nil {
		return err
	}
	args := []string{url}
	if sql := c.opts["command"]; sql != "" {
		args = append(args, "-c", sql)
	}
	return c.runTool("psql", args...)
}

func runRedisCli(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	rest := c.args
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	_, url, err := attachedURL(c, api, name, "heroku-redis", c.opts["attachment"])
	if err != nil {
		return err
	}
	return c.runTool("redis-cli", append([]string{"-u", url, "--no-auth-warning"}, rest...)...)
}

func runPgRotate(c *call) error {
	if len(c.args) > 1 {
		return c.usageErr("Give at most one add-on.")
	}
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	if c.opts["confirm"] != name {
		return fmt.Errorf("This ends every connection of the old credentials. To proceed, run again with --confirm %s.", name)
	}
	a, _, err := attachedURL(c, api, name, "heroku-postgresql", firstArg(c.args))
	if err != nil {
		return err
	}
	return c.action(fmt.Sprintf("Rotating the credentials of %s", a.Name), func() error {
		_, err := api.call(c.ctx, "POST", c.appPath(name, "addons", a.Name, "actions", "rotate-credentials"), nil, nil)
		return err
	})
}

func firstArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return ""
}

var pgBackupsCmd = &command{
	name:    "pg:backups",
	summary: "list the backups of an app's database",
	app:     true,
	run:     runPgBackups,
}

var pgBackupsCaptureCmd = &command{
	name:    "pg:backups:capture",
	summary: "back up an app's database now",
	app:     true,
	run:     runPgBackupsCapture,
}

var pgBackupsDownloadCmd = &command{
	name:    "pg:backups:download",
	args:    "[BACKUP]",
	summary: "download a backup (default: the newest) in pg_dump's custom format",
	flags:   []flag{{name: "output", short: "o", value: "FILE", help: "where to write it (default latest.dump)"}},
	app:     true,
	run:     runPgBackupsDownload,
}

var pgBackupsRestoreCmd = &command{
	name:    "pg:backups:restore",
	args:    "[BACKUP]",
	summary: "restore a backup (default: the newest) into the app's database, replacing what it holds",
	flags:   []flag{{name: "confirm", value: "APP", help: "the app's name, to confirm"}},
	app:     true,
	run:     runPgBackupsRestore,
}

// backupsPath is the app's database add-on's backups path.
func backupsPath(c *call, api *client, app string, parts ...string) (string, error) {
	a, _, err := attachedURL(c, api, app, "heroku-postgresql", "")
	if err != nil {
		return "", err
	}
	return c.appPath(app, append([]string{"addons", a.Name, "backups"}, parts...)...), nil
}

func listBackups(c *call, api *client, app string) ([]schema.Backup, error) {
	p, err := backupsPath(c, api, app)
	if err != nil {
		return nil, err
	}
	var bs []schema.Backup
	return bs, api.get(c.ctx, p, &bs)
}

func runPgBackups(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	bs, err := listBackups(c, api, name)
	if err != nil {
		return err
	}
	out := c.env.Stdout
	if len(bs) == 0 {
		fmt.Fprintf(out, "No backups of %s%s. Capture one with grid pg:backups:capture.\n", hexagon, name)
		return nil
	}
	header(out, "Backups")
	rows := [][]string{{"ID", "Created at", "Size", "By"}}
	for _, b := range bs {
		rows = append(rows, []string{b.ID, c.clock().format(b.CreatedAt), humanBytes(b.Size), b.User})
	}
	printTable(out, rows)
	return nil
}

func runPgBackupsCapture(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	p, err := backupsPath(c, api, name)
	if err != nil {
		return err
	}
	var b schema.Backup
	if err := c.action(fmt.Sprintf("Backing up the database of %s%s", hexagon, name), func() error {
		_, err := api.call(c.ctx, "POST", p, nil, &b)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "Backup %s: %s\n", b.ID, humanBytes(b.Size))
	return nil
}

// backupID is the named backup, or the newest.
func backupID(c *call, api *client, app string) (string, error) {
	if len(c.args) > 1 {
		return "", c.usageErr("Give at most one backup, like b001.")
	}
	if len(c.args) == 1 {
		return c.args[0], nil
	}
	bs, err := listBackups(c, api, app)
	if err != nil {
		return "", err
	}
	if len(bs) == 0 {
		return "", fmt.Errorf("No backups of %s%s.", hexagon, app)
	}
	return bs[len(bs)-1].ID, nil
}

func runPgBackupsDownload(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	id, err := backupID(c, api, name)
	if err != nil {
		return err
	}
	p, err := backupsPath(c, api, name, id, "download")
	if err != nil {
		return err
	}
	path := c.outputPath("latest.dump")
	return c.action(fmt.Sprintf("Downloading %s to %s", id, path), func() error {
		req, err := api.request(c.ctx, "GET", api.base+p, nil)
		if err != nil {
			return err
		}
		resp, err := api.raw.Do(req)
		if err != nil {
			return api.transportError(c.ctx, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			return responseError(req, resp)
		}
		return saveNew(path, 0o600, func(w io.Writer) error { _, err := io.Copy(w, resp.Body); return err })
	})
}

func runPgBackupsRestore(c *call) error {
	name, api, err := c.appAndClient()
	if err != nil {
		return err
	}
	if c.opts["confirm"] != name {
		return fmt.Errorf("This replaces what the database of %s holds. To proceed, run again with --confirm %s.", name, name)
	}
	id, err := backupID(c, api, name)
	if err != nil {
		return err
	}
	p, err := backupsPath(c, api, name, id, "actions", "restore")
	if err != nil {
		return err
	}
	return c.action(fmt.Sprintf("Restoring %s to the database of %s%s", id, hexagon, name), func() error {
		_, err := api.call(c.ctx, "POST", p, nil, nil)
		return err
	})
}
