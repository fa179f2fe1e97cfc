package redis

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dynogrid/grid/internal/grid"
)

// Shared provisions add-ons on an operator's Redis (6 or later) as ACL
// users, for grids whose operator runs Redis themselves:
//
//	user u<id>: its own password; keys and channels "u<id>:*" only;
//	            every command but @dangerous and @admin (FLUSHALL, KEYS,
//	            CONFIG, DEBUG, MONITOR, ...) and SELECT, SWAPDB, MOVE
//
// Unlike the Supervisor's own servers, a shared server cannot give an
// add-on a keyspace or a memory cap of its own: apps must prefix their
// keys with their user name (the URL's user), and the plan's memory is
// not enforced. Users are saved with ACL SAVE (or CONFIG REWRITE), so
// they survive the server's restart; Prepare refuses a server that can
// do neither.
type Shared struct {
	// AdminURL is redis://user:password@host:port of a user allowed
	// every command, ACL included.
	AdminURL string
	// Host is host:port as dynos reach the server, for REDIS_URL.
	Host string
}

func (s *Shared) admin() (*goredis.Client, error) {
	opt, err := goredis.ParseURL(s.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("redis admin URL: %v: %w", err, grid.ErrInvalid)
	}
	opt.MaxRetries, opt.PoolSize = -1, 1
	return goredis.NewClient(opt), nil
}

// do runs f on an admin connection, then saves the users.
func (s *Shared) do(ctx context.Context, what string, f func(r *goredis.Client) error) error {
	r, err := s.admin()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := f(r); err != nil {
		return fmt.Errorf("redis %s: %v: %w", what, err, grid.ErrUnavailable)
	}
	if err := save(ctx, r); err != nil {
		return fmt.Errorf("redis %s: saving users: %v: %w", what, err, grid.ErrUnavailable)
	}
	return nil
}

// save persists the ACL users: to the server's aclfile, else its config.
func save(ctx context.Context, r *goredis.Client) error {
	err := r.Do(ctx, "ACL", "SAVE").Err()
	if err == nil {
		return nil
	}
	if err2 := r.Do(ctx, "CONFIG", "REWRITE").Err(); err2 != nil {
		return fmt.Errorf("ACL SAVE: %v; CONFIG REWRITE: %v (run it with an aclfile or a config file)", err, err2)
	}
	return nil
}

// Prepare checks that the admin URL works and that users can be saved.
func (s *Shared) Prepare(ctx context.Context) error {
	return s.do(ctx, "prepare", func(r *goredis.Client) error { return r.Ping(ctx).Err() })
}

func sharedUser(id string) (string, error) {
	if !idRE.MatchString(id) {
		return "", fmt.Errorf("redis resource id %q: %w", id, grid.ErrInvalid)
	}
	return "u" + id, nil
}

// Provision makes user u<id> and returns its URL.
func (s *Shared) Provision(ctx context.Context, id string, plan Plan) (string, error) {
	user, err := sharedUser(id)
	if err != nil {
		return "", err
	}
	password := randomHex(24)
	err = s.do(ctx, "provision "+id, func(r *goredis.Client) error {
		if err := r.Do(ctx, "ACL", "GETUSER", user).Err(); err != goredis.Nil {
			return fmt.Errorf("user %s exists already (or: %v)", user, err)
		}
		args := []any{"ACL", "SETUSER", user, "reset", "on", ">" + password, "~" + user + ":*", "&" + user + ":*",
			"+@all", "-@dangerous", "-@admin", "-select", "-swapdb", "-move"}
		return r.Do(ctx, args...).Err()
	})
	if err != nil {
		return "", err
	}
	return s.url(user, password), nil
}

func (s *Shared) url(user, password string) string {
	u := url.URL{Scheme: "redis", User: url.UserPassword(user, password), Host: s.Host}
	return u.String()
}

// Deprovision deletes user u<id> (which ends its connections) and its
// keys. A missing user is fine: it may finish an earlier attempt.
func (s *Shared) Deprovision(ctx context.Context, id string) error {
	user, err := sharedUser(id)
	if err != nil {
		return err
	}
	return s.do(ctx, "deprovision "+id, func(r *goredis.Client) error {
		if err := r.Do(ctx, "ACL", "DELUSER", user).Err(); err != nil {
			return err
		}
		iter := r.Scan(ctx, 0, user+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 1000 {
				if err := r.Unlink(ctx, keys...).Err(); err != nil {
					return err
				}
				keys = keys[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(keys) > 0 {
			return r.Unlink(ctx, keys...).Err()
		}
		return nil
	})
}

// Rotate gives user u<id> a new password, ends its connections and
// returns the new URL.
func (s *Shared) Rotate(ctx context.Context, id string) (string, error) {
	user, err := sharedUser(id)
	if err != nil {
		return "", err
	}
	password := randomHex(24)
	err = s.do(ctx, "rotate "+id, func(r *goredis.Client) error {
		if err := r.Do(ctx, "ACL", "SETUSER", user, "resetpass", ">"+password).Err(); err != nil {
			return err
		}
		err := r.Do(ctx, "CLIENT", "KILL", "USER", user).Err()
		if err != nil && !strings.Contains(err.Error(), "No such user") {
			return err
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return s.url(user, password), nil
}

// ChangePlan records nothing on the server: a shared server has no
// per-user limits for a plan to change.
func (s *Shared) ChangePlan(ctx context.Context, id string, plan Plan) error {
	_, err := sharedUser(id)
	return err
}
