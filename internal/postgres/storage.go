package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dynogrid/grid/internal/grid"
)

// Storage caps. PostgreSQL has no per-database quota, and revoking
// privileges from an owner does nothing (an owner grants them back), so a
// database over its plan's storage is locked by taking its objects away:
//
//	under ──(size > plan)──► locked: REASSIGN OWNED BY u<id> TO l<id>, a
//	  ▲                      NOLOGIN role; u<id> keeps CONNECT, USAGE,
//	  │                      SELECT, DELETE and TRUNCATE; its sessions end
//	  └──(size ≤ plan)────── unlocked: REASSIGN OWNED BY l<id> TO u<id>,
//	                         l<id> dropped
//
// While locked, reads work and INSERT, UPDATE and CREATE fail with
// "permission denied". TRUNCATE (or a bigger plan) brings the database
// back under: DELETE frees space for reuse but does not shrink files.
// Whether a database is locked is its owner: a database owned by l<id>
// is.

// StorageLimitSetting is the database setting holding the plan's storage
// in bytes, for tools that show it (pg:info):
// current_setting('grid.storage_limit', true).
const StorageLimitSetting = "grid.storage_limit"

// Storage is a database's size against its plan.
type Storage struct {
	ID     string
	Bytes  int64
	Limit  int64
	Locked bool // after Enforce: writes are revoked
	// Changed is set when Enforce locked or unlocked the database.
	Changed bool
}

// Enforce locks each database of plans (resource id → plan) that is over
// its plan's storage and unlocks each that is back under, and reports
// them all. Databases missing on the server are skipped.
func (p *Provider) Enforce(ctx context.Context, plans map[string]Plan) ([]Storage, error) {
	var out []Storage
	var errs []error
	for id, plan := range plans {
		st, err := p.enforce(ctx, id, plan)
		if err != nil {
			errs = append(errs, err)
		} else if st != nil {
			out = append(out, *st)
		}
	}
	return out, errors.Join(errs...)
}

func (p *Provider) enforce(ctx context.Context, id string, plan Plan) (st *Storage, err error) {
	err = p.onResource(ctx, "storage check", id, func(c *pgx.Conn, db, role string) error {
		var owner string
		var size int64
		err := c.QueryRow(ctx, "SELECT pg_get_userbyid(datdba), pg_database_size(oid) FROM pg_database WHERE datname = $1", db).Scan(&owner, &size)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		st = &Storage{ID: id, Bytes: size, Limit: plan.StorageBytes(), Locked: owner != role}
		if over := st.Bytes > st.Limit; over != st.Locked {
			st.Locked, st.Changed = over, true
			return p.onDatabase(ctx, db, func(dc *pgx.Conn) error { return setLocked(ctx, dc, db, role, lockRole(id), over) })
		}
		return nil
	})
	return st, err
}

func lockRole(id string) string { return "l" + id }

// setLocked locks or unlocks database db (connected as admin by c).
func setLocked(ctx context.Context, c *pgx.Conn, db, role, lock string, locked bool) error {
	var stmts []string
	if locked {
		stmts = []string{
			fmt.Sprintf("DO $$BEGIN CREATE ROLE %s NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$", ident(lock)),
			fmt.Sprintf("REASSIGN OWNED BY %s TO %s", ident(role), ident(lock)),
			fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", ident(db), ident(role)),
		}
		schemas, err := userSchemas(ctx, c)
		if err != nil {
			return err
		}
		for _, s := range schemas {
			stmts = append(stmts,
				fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", ident(s), ident(role)),
				fmt.Sprintf("GRANT SELECT, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA %s TO %s", ident(s), ident(role)),
				fmt.Sprintf("GRANT SELECT ON ALL SEQUENCES IN SCHEMA %s TO %s", ident(s), ident(role)))
		}
		// Sessions that began as owner keep no power, but end them so
		// that nothing half-written lingers in them.
		stmts = append(stmts, fmt.Sprintf("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", literal(role)))
	} else {
		stmts = []string{
			fmt.Sprintf("REASSIGN OWNED BY %s TO %s", ident(lock), ident(role)),
			fmt.Sprintf("DROP ROLE %s", ident(lock)),
		}
	}
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// userSchemas are the schemas of the connected database but the
// server's own.
func userSchemas(ctx context.Context, c *pgx.Conn) ([]string, error) {
	rows, err := c.Query(ctx, `SELECT nspname FROM pg_namespace
		WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// onDatabase runs f on an admin connection to database db.
func (p *Provider) onDatabase(ctx context.Context, db string, f func(c *pgx.Conn) error) error {
	cfg, err := pgx.ParseConfig(p.AdminURL)
	if err != nil {
		return fmt.Errorf("postgres admin URL: %v: %w", err, grid.ErrInvalid)
	}
	cfg.Database = db
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	return f(c)
}

// ChangePlan moves resource id to plan: its connection limits and its
// storage cap, which is enforced at once. A database larger than the
// new plan's storage is refused (ErrInvalid) rather than locked.
func (p *Provider) ChangePlan(ctx context.Context, id string, plan Plan) error {
	var size int64
	err := p.onResource(ctx, "plan change", id, func(c *pgx.Conn, db, role string) error {
		if err := c.QueryRow(ctx, "SELECT pg_database_size($1::text)", db).Scan(&size); err != nil {
			return err
		}
		if size > plan.StorageBytes() {
			return nil
		}
		for _, s := range []string{
			fmt.Sprintf("ALTER ROLE %s CONNECTION LIMIT %d", ident(role), plan.Connections),
			fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT %d", ident(db), plan.Connections),
			fmt.Sprintf("ALTER DATABASE %s SET %s = %d", ident(db), StorageLimitSetting, plan.StorageBytes()),
		} {
			if _, err := c.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if size > plan.StorageBytes() {
		return fmt.Errorf("the database holds %d MB, more than the %d MB of plan %s: make it smaller (TRUNCATE), or choose a bigger plan: %w",
			size>>20, plan.StorageMB, plan.Name, grid.ErrInvalid)
	}
	_, err = p.enforce(ctx, id, plan)
	return err
}
