package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dynogrid/grid/internal/grid"
)

// Each add-on is a database and a role of its own, named after the
// add-on's resource id, on a server the grid holds the admin URL of:
//
//	role  u<id>: LOGIN, a random password, a connection limit; no
//	      superuser, CREATEDB, CREATEROLE or replication, and not a member
//	      of pg_read_server_files, pg_write_server_files or
//	      pg_execute_server_program (so no COPY ... PROGRAM or file access)
//	db    d<id>: owned by the role; CONNECT and TEMP revoked from PUBLIC,
//	      so no other add-on's role gets in
//
// A provision that fails half way drops what it made.

// Plan is a Postgres plan: what one add-on may use.
type Plan struct {
	Name        string // "essential-0"
	Connections int
	// StorageMB is the plan's storage; a database over it is locked
	// (see Enforce).
	StorageMB int
}

// StorageBytes is the plan's storage in bytes.
func (p Plan) StorageBytes() int64 { return int64(p.StorageMB) << 20 }

// Plans are the Postgres plans, cheapest first; the first is the default.
var Plans = []Plan{
	{Name: "essential-0", Connections: 20, StorageMB: 1 << 10},
	{Name: "essential-1", Connections: 40, StorageMB: 10 << 10},
	{Name: "standard-0", Connections: 120, StorageMB: 64 << 10},
}

// Provider provisions databases on one server.
type Provider struct {
	// AdminURL is a superuser's (or a role with CREATEROLE and CREATEDB)
	// connection URL.
	AdminURL string
	// Host is host:port as dynos reach the server, for DATABASE_URL.
	Host string
}

var idRE = regexp.MustCompile(`^[a-z0-9]{1,40}$`)

// names are the database and role of resource id.
func names(id string) (db, role string, err error) {
	if !idRE.MatchString(id) {
		return "", "", fmt.Errorf("postgres resource id %q must be 1 to 40 lowercase letters and digits: %w", id, grid.ErrInvalid)
	}
	return "d" + id, "u" + id, nil
}

// LookupPlan finds a plan by name; "" is the default.
func LookupPlan(name string) (Plan, error) {
	if name == "" {
		return Plans[0], nil
	}
	for _, p := range Plans {
		if p.Name == name {
			return p, nil
		}
	}
	return Plan{}, fmt.Errorf("no Postgres plan %q: %w", name, grid.ErrInvalid)
}

// admin connects with the admin URL.
func (p *Provider) admin(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.Connect(ctx, p.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("postgres admin connection: %v: %w", err, grid.ErrUnavailable)
	}
	return c, nil
}

// Prepare closes the server's own databases (postgres, template1) to
// add-on roles: PostgreSQL grants CONNECT on them to PUBLIC. Run it once
// before provisioning; it may repeat.
func (p *Provider) Prepare(ctx context.Context) error {
	c, err := p.admin(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	for _, db := range []string{"postgres", "template1"} {
		if _, err := c.Exec(ctx, fmt.Sprintf("REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC", ident(db))); err != nil {
			return fmt.Errorf("postgres prepare: %v: %w", err, grid.ErrUnavailable)
		}
	}
	return nil
}

// Provision makes database and role for resource id and returns the
// database's URL.
func (p *Provider) Provision(ctx context.Context, id string, plan Plan) (dbURL string, err error) {
	password := randomHex(24)
	err = p.onResource(ctx, "provision", id, func(c *pgx.Conn, db, role string) error {
		steps := []struct{ do, undo string }{
			{fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s CONNECTION LIMIT %d NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
				ident(role), literal(password), plan.Connections), "DROP ROLE IF EXISTS " + ident(role)},
			{fmt.Sprintf("CREATE DATABASE %s OWNER %s CONNECTION LIMIT %d", ident(db), ident(role), plan.Connections),
				fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", ident(db))},
			{fmt.Sprintf("REVOKE ALL ON DATABASE %s FROM PUBLIC", ident(db)), ""},
			{fmt.Sprintf("ALTER DATABASE %s SET %s = %d", ident(db), StorageLimitSetting, plan.StorageBytes()), ""},
		}
		for i, st := range steps {
			if _, err := c.Exec(ctx, st.do); err != nil {
				// Undo what this provision made, newest first; nothing else.
				errs := []error{err}
				for j := i - 1; j >= 0; j-- {
					if steps[j].undo == "" {
						continue
					}
					if _, uerr := c.Exec(context.WithoutCancel(ctx), steps[j].undo); uerr != nil {
						errs = append(errs, uerr)
					}
				}
				return errors.Join(errs...)
			}
		}
		dbURL = p.url(db, role, password)
		return nil
	})
	return dbURL, err
}

func (p *Provider) url(db, role, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: p.Host, Path: "/" + db}
	return u.String()
}

// Deprovision drops resource id's database (ending its sessions) and
// role. Missing ones are fine: it may finish an earlier attempt.
func (p *Provider) Deprovision(ctx context.Context, id string) error {
	return p.onResource(ctx, "deprovision", id, func(c *pgx.Conn, db, role string) error {
		for _, stmt := range []string{
			fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", ident(db)),
			fmt.Sprintf("DROP ROLE IF EXISTS %s", ident(role)),
			fmt.Sprintf("DROP ROLE IF EXISTS %s", ident(lockRole(id))),
		} {
			if _, err := c.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
}

// Rotate gives resource id's role a new password, ends its sessions
// (which logged in with the old one) and returns the new URL.
func (p *Provider) Rotate(ctx context.Context, id string) (dbURL string, err error) {
	password := randomHex(24)
	err = p.onResource(ctx, "rotate", id, func(c *pgx.Conn, db, role string) error {
		if _, err := c.Exec(ctx, fmt.Sprintf("ALTER ROLE %s PASSWORD %s", ident(role), literal(password))); err != nil {
			return err
		}
		if _, err := c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role); err != nil {
			return err
		}
		dbURL = p.url(db, role, password)
		return nil
	})
	return dbURL, err
}

// onResource runs f on an admin connection with resource id's database
// and role names; f's errors are the server's (ErrUnavailable).
func (p *Provider) onResource(ctx context.Context, what, id string, f func(c *pgx.Conn, db, role string) error) error {
	db, role, err := names(id)
	if err != nil {
		return err
	}
	c, err := p.admin(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	if err := f(c, db, role); err != nil {
		return fmt.Errorf("postgres %s %s: %v: %w", what, id, err, grid.ErrUnavailable)
	}
	return nil
}

// ident quotes an identifier; ours are [a-z0-9] only, but quoting keeps
// that from mattering.
func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// literal quotes a string literal (random hex here).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
