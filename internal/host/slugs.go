package host

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/dynogrid/grid/internal/grid"
)

// slugKeeper keeps the host's slug cache useful and bounded. It watches
// appmeta and fetches each app's current slug as soon as a release names
// it, so that starting a dyno of it (a scale-up, a restart) never waits
// for a download; prefetches and dyno starts share one download per slug
// (slug.Cache). It removes a cached tree when no local dyno uses it and
// either its slug is gone from the store (app destroyed) or it is no
// app's current slug and no dyno has used it for Config.SlugKeep.
type slugKeeper struct {
	a *Agent

	mu       sync.Mutex
	users    map[string]int       // slug ID → local dynos using it
	lastUsed map[string]time.Time // slug ID → when a dyno or a prefetch last used it
	current  map[string]grid.AppMeta
	synced   bool // current is complete: the appmeta watch has synced
	// dynosKnown: the assignments have synced once, so every dyno this
	// host runs (adopted ones too) has acquired its slug. No tree is
	// removed before: it may be the lower layer of a running dyno's /app.
	dynosKnown bool

	kick chan struct{} // buffered 1: asks for a cleanup pass
}

// prefetchers is how many slugs are fetched ahead of need at once.
const prefetchers = 2

func newSlugKeeper(a *Agent) *slugKeeper {
	return &slugKeeper{
		a: a, users: map[string]int{}, lastUsed: map[string]time.Time{}, current: map[string]grid.AppMeta{},
		kick: make(chan struct{}, 1),
	}
}

// acquire notes that a dyno uses slug id, until release.
func (k *slugKeeper) acquire(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.users[id]++
	k.lastUsed[id] = k.a.now()
}

func (k *slugKeeper) release(id string) {
	k.mu.Lock()
	k.users[id]--
	if k.users[id] <= 0 {
		delete(k.users, id)
	}
	k.lastUsed[id] = k.a.now()
	k.mu.Unlock()
	k.cleanSoon()
}

// knowDynos tells the keeper that every local dyno has acquired its slug.
func (k *slugKeeper) knowDynos() {
	k.mu.Lock()
	k.dynosKnown = true
	k.mu.Unlock()
	k.cleanSoon()
}

// cleanSoon asks for a cleanup pass without waiting for it.
func (k *slugKeeper) cleanSoon() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// run watches appmeta, prefetches and cleans up until ctx ends.
func (k *slugKeeper) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	metas := make(chan watchMsg[grid.AppMeta])
	wg.Go(func() { rewatch(ctx, k.a, "appmeta", k.a.cfg.Store.WatchAppMeta, metas) })
	fetched := make(chan string)
	var queue []grid.AppMeta
	queued := map[string]bool{} // slug IDs queued or being fetched
	busy := 0
	tick := time.NewTicker(min(max(k.a.cfg.SlugKeep/4, 100*time.Millisecond), time.Minute))
	defer tick.Stop()
	for {
		for busy < prefetchers && len(queue) > 0 {
			m := queue[0]
			queue = queue[1:]
			busy++
			wg.Go(func() {
				k.prefetch(ctx, m)
				select {
				case fetched <- m.SlugID:
				case <-ctx.Done():
				}
			})
		}
		select {
		case <-ctx.Done():
			return
		case id := <-fetched:
			busy--
			delete(queued, id)
		case msg := <-metas:
			for _, m := range k.meta(msg) {
				if !queued[m.SlugID] {
					queued[m.SlugID] = true
					queue = append(queue, m)
				}
			}
		case <-k.kick:
			k.clean(ctx)
		case <-tick.C:
			k.clean(ctx)
		}
	}
}

// meta applies one appmeta message and returns the apps whose current
// slug should be fetched now.
func (k *slugKeeper) meta(msg watchMsg[grid.AppMeta]) []grid.AppMeta {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case msg.Restart: // incomplete until the new watch syncs
		k.current, k.synced = map[string]grid.AppMeta{}, false
	case msg.Synced:
		k.synced = true
		k.cleanSoon()
	case msg.Deleted:
		delete(k.current, msg.Key)
		k.cleanSoon()
	default:
		m := msg.Value
		k.current[m.Name] = m
		if m.SlugID != "" && m.UID != 0 && !k.cached(m.SlugID) {
			return []grid.AppMeta{m}
		}
	}
	return nil
}

func (k *slugKeeper) cached(id string) bool {
	ids, err := k.a.cfg.Slugs.IDs()
	return err == nil && slices.Contains(ids, id)
}

// prefetch unpacks app m's current slug into the cache.
func (k *slugKeeper) prefetch(ctx context.Context, m grid.AppMeta) {
	begin := time.Now()
	k.acquire(m.SlugID) // not cleaned up while it arrives
	defer k.release(m.SlugID)
	_, err := k.a.cfg.Slugs.Path(ctx, m.SlugID, m.UID, func(ctx context.Context) (io.ReadCloser, error) {
		return k.a.cfg.Store.OpenSlug(ctx, m.SlugID)
	})
	if err != nil {
		if ctx.Err() == nil {
			k.a.log.Warn("slug prefetch failed", "app", m.Name, "slug", m.SlugID, "err", err)
		}
		return
	}
	k.a.log.Info("slug prefetched", "app", m.Name, "slug", m.SlugID, "release", m.Release, "took", time.Since(begin))
}

// clean removes the cached trees nobody needs (see slugKeeper).
func (k *slugKeeper) clean(ctx context.Context) {
	k.mu.Lock()
	known := k.dynosKnown
	k.mu.Unlock()
	if !known {
		return
	}
	ids, err := k.a.cfg.Slugs.IDs()
	if err != nil {
		k.a.log.Warn("listing cached slugs failed", "err", err)
		return
	}
	for _, id := range ids {
		if k.needed(ctx, id) {
			continue
		}
		if err := k.a.cfg.Slugs.Remove(id); err != nil {
			k.a.log.Warn("removing cached slug failed", "slug", id, "err", err)
			continue
		}
		k.a.log.Info("cached slug removed", "slug", id)
	}
}

// needed reports whether cached slug id must stay.
func (k *slugKeeper) needed(ctx context.Context, id string) bool {
	k.mu.Lock()
	inUse, synced := k.users[id] > 0, k.synced
	last, seen := k.lastUsed[id]
	current := false
	for _, m := range k.current {
		current = current || m.SlugID == id
	}
	k.mu.Unlock()
	if inUse {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if _, err := k.a.cfg.Store.Slug(ctx, id); errors.Is(err, grid.ErrNotFound) {
		return false // its app was destroyed
	}
	if !seen {
		last = k.a.started // unknown: used just before this agent started, for all it knows
	}
	return !synced || current || k.a.now().Sub(last) < k.a.cfg.SlugKeep
}
