package redis

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dynogrid/grid/internal/grid"
)

// ChangePlan moves instance id to plan: memory cap, client limit and
// persistence. The instance's redis.conf is rewritten for its next
// start, and the change is applied live through CONFIG's secret name, so
// data and connections stay; an instance made before that name existed
// restarts instead. A plan whose memory is below what the instance
// holds is refused (ErrInvalid): noeviction would fail its writes.
func (s *Supervisor) ChangePlan(ctx context.Context, id string, plan Plan) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("redis resource id %q: %w", id, grid.ErrInvalid)
	}
	c, err := readConf(s.dir(id))
	if err != nil {
		return fmt.Errorf("redis %s: %w", id, err)
	}
	r := s.client(c)
	defer r.Close()
	used, err := usedMemory(ctx, r)
	if err != nil {
		return fmt.Errorf("redis %s: %v: %w", id, err, grid.ErrUnavailable)
	}
	if limit := int64(plan.MaxMemoryMB) << 20; used > limit*9/10 {
		return fmt.Errorf("the instance holds %.1f MB, too close to the %d MB of plan %s: delete keys first, or choose a bigger plan: %w",
			float64(used)/(1<<20), plan.MaxMemoryMB, plan.Name, grid.ErrInvalid)
	}
	live := c.admin
	if live == "" {
		c.admin = adminPrefix + randomHex(16)
	}
	if err := s.writeConf(id, c, plan); err != nil {
		return fmt.Errorf("redis %s: %w", id, err)
	}
	if live == "" {
		s.stop(id)
		return s.run(ctx, id)
	}
	aof := "no"
	if plan.Persist {
		aof = "yes"
	}
	err = r.Do(ctx, live, "SET", "maxmemory", strconv.Itoa(plan.MaxMemoryMB<<20),
		"maxclients", strconv.Itoa(plan.MaxClients), "appendonly", aof).Err()
	if err != nil {
		return fmt.Errorf("redis %s: applying plan %s: %v: %w", id, plan.Name, err, grid.ErrUnavailable)
	}
	return nil
}

// client connects to an instance as its tenant does.
func (s *Supervisor) client(c conf) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: netip.AddrPortFrom(s.cfg.Listen, uint16(c.port)).String(),
		Password: c.password, MaxRetries: -1, PoolSize: 1})
}

// usedMemory is INFO memory's used_memory.
func usedMemory(ctx context.Context, r *goredis.Client) (int64, error) {
	info, err := r.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO memory has no used_memory")
}
