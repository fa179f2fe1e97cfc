package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// LeaseTTL is how long a lease outlives its holder's last renewal. A
// leader that dies is replaced within about this long.
const LeaseTTL = 6 * time.Second

// lease is one named lease in the leases bucket. The bucket's TTL makes an
// unrenewed lease disappear.
type lease struct {
	Holder  string    `json:"holder"`
	Renewed time.Time `json:"renewed"`
}

// Lead blocks until holder holds the lease name (or ctx ends), then keeps
// renewing it. The returned context ends when the lease is lost — a
// renewal failed, or ctx ended — so work done as leader should run under
// it. At most one holder leads at a time, up to clock-free TTL expiry: a
// holder that cannot renew within LeaseTTL/3 steps down before the lease
// can expire and pass to another.
func (s *Store) Lead(ctx context.Context, name, holder string) (context.Context, error) {
	var rev uint64
	for {
		r, err := s.leases.create(ctx, name, lease{Holder: holder, Renewed: time.Now().UTC()})
		if err == nil {
			rev = r
			break
		}
		if !errors.Is(err, grid.ErrConflict) && !errors.Is(err, grid.ErrUnavailable) {
			return nil, err
		}
		// A previous run of this holder may still hold it: take it over.
		if cur, crev, gerr := s.leases.get(ctx, name); gerr == nil && cur.Holder == holder {
			if r, err := s.leases.swap(ctx, name, lease{Holder: holder, Renewed: time.Now().UTC()}, crev); err == nil {
				rev = r
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(LeaseTTL / 6):
		}
	}
	lctx, cancel := context.WithCancelCause(ctx)
	go func() {
		defer cancel(errors.New("lease lost"))
		t := time.NewTicker(LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
				_ = s.leases.delete(dctx, name) // hand over at once on a clean stop
				dcancel()
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(ctx, LeaseTTL/3)
			r, err := s.leases.swap(rctx, name, lease{Holder: holder, Renewed: time.Now().UTC()}, rev)
			rcancel()
			if err != nil {
				return
			}
			rev = r
		}
	}()
	return lctx, nil
}

// LeaseHolder says who holds a lease now ("" if nobody).
func (s *Store) LeaseHolder(ctx context.Context, name string) (string, error) {
	l, _, err := s.leases.get(ctx, name)
	if errors.Is(err, grid.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease %s: %w", name, err)
	}
	return l.Holder, nil
}
