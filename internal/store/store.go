package store

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/dynogrid/grid/internal/grid"
)

// Config says how to reach NATS and how to lay out buckets.
type Config struct {
	// URL is one or more comma-separated nats://host:port.
	URL string
	// Role and Password are this client's credentials (Role.Password).
	// Only servers create and update buckets; other roles bind to them.
	Role     Role
	Password string
	// Replicas for every bucket and stream: min(3, cluster size). Zero means 1.
	Replicas int
	// Name identifies this client in the server's connection list.
	Name string
	// Logger receives connection errors. Nil discards them.
	Logger *slog.Logger
}

// Store is typed access to the platform's buckets. Safe for concurrent use.
type Store struct {
	nc       *nats.Conn
	closed   chan struct{} // closed when nc has closed
	js       jetstream.JetStream
	replicas int
	create   bool // this client creates and updates buckets (servers)
	role     Role

	apps        bucket[grid.App]
	appmeta     bucket[grid.AppMeta]
	hostctl     bucket[grid.HostControl]
	routers     bucket[grid.RouterState]
	leases      bucket[lease]
	releases    bucket[grid.Release]
	formations  bucket[grid.Formation]
	slugs       bucket[grid.Slug]
	assignments bucket[grid.Assignment]
	dynos       bucket[grid.Dyno]
	hosts       bucket[grid.Host]
	keys        bucket[apiKey]
	meta        bucket[int]
	domains     bucket[grid.Domain]
	certs       bucket[grid.Cert] // private keys: servers and routers only
	blobs       jetstream.ObjectStore
	// Servers only (builds.go, addons.go).
	builds      bucket[grid.Build]
	addons      bucket[grid.Addon]
	attachments bucket[grid.Attachment]
	drains      bucket[grid.Drain]
	outputs     jetstream.ObjectStore
	sources     jetstream.ObjectStore
	backups     jetstream.ObjectStore
}

// Open connects to NATS and makes sure every bucket exists. It retries the
// connection until ctx ends, so roles may start before the server.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	closed := make(chan struct{})
	nc, err := nats.Connect(cfg.URL,
		nats.UserInfo(cfg.Role.User(), cfg.Password),
		nats.CustomInboxPrefix(cfg.Role.inboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("nats connection error", "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.Name(cmp.Or(cfg.Name, cfg.Role.User())),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("store: connect %s: %v: %w", cfg.URL, err, grid.ErrUnavailable)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s := &Store{nc: nc, closed: closed, js: js, replicas: max(cfg.Replicas, 1), create: cfg.Role.Kind == RoleServer, role: cfg.Role}
	s.apps.name, s.appmeta.name, s.releases.name = "app", "app", "release"
	s.formations.name, s.slugs.name, s.hostctl.name = "formation", "slug", "host control"
	s.assignments.name, s.dynos.name, s.hosts.name = "assignment", "dyno", "host"
	s.routers.name, s.keys.name, s.meta.name, s.leases.name = "router", "api key", "counter", "lease"
	s.domains.name, s.certs.name, s.builds.name = "domain", "certificate", "build"
	s.addons.name, s.attachments.name, s.drains.name = "add-on", "attachment", "drain"
	if err := s.init(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

// init binds the buckets: a cluster still electing leaders, or a host
// started before the servers made the buckets, is waited for.
func (s *Store) init(ctx context.Context) error { return Retry(ctx, s.bind) }

// Retry runs setup (making or finding buckets and streams) until it
// succeeds or ctx ends, backing off up to 2s between attempts. A
// JetStream request sent while the cluster has no meta leader gets no
// answer at all, so each attempt has its own 5s deadline.
func Retry(ctx context.Context, setup func(context.Context) error) error {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := setup(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// bind opens every bucket; servers create or update them first, all at
// once: each new replicated bucket waits for its Raft group to elect a
// leader (seconds), and one at a time would add those waits up.
func (s *Store) bind(ctx context.Context) error {
	var g errgroup.Group
	kv := func(b *jetstream.KeyValue, name string, ttl time.Duration) {
		g.Go(func() (err error) {
			if s.create {
				*b, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
					Bucket: name, Storage: jetstream.FileStorage, Replicas: s.replicas, TTL: ttl,
				})
			} else {
				*b, err = s.js.KeyValue(ctx, name)
			}
			if err != nil {
				return fmt.Errorf("store: bucket %s: %v: %w", name, err, grid.ErrUnavailable)
			}
			return nil
		})
	}
	kv(&s.apps.kv, "apps", 0)
	kv(&s.appmeta.kv, "appmeta", 0)
	kv(&s.releases.kv, "releases", 0)
	kv(&s.formations.kv, "formations", 0)
	kv(&s.slugs.kv, "slugs", 0)
	kv(&s.hostctl.kv, "hostctl", 0)
	kv(&s.assignments.kv, "assignments", 0)
	kv(&s.dynos.kv, "dynos", 0)
	kv(&s.hosts.kv, "hosts", 0)
	kv(&s.routers.kv, "routers", 0)
	kv(&s.keys.kv, "apikeys", 0)
	kv(&s.meta.kv, "meta", 0)
	kv(&s.leases.kv, "leases", LeaseTTL)
	kv(&s.domains.kv, "domains", 0)
	kv(&s.certs.kv, "certs", 0)
	objects := func(o *jetstream.ObjectStore, name string, ttl time.Duration) {
		g.Go(func() (err error) {
			if s.create {
				*o, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
					Bucket: name, Storage: jetstream.FileStorage, Replicas: s.replicas, TTL: ttl,
				})
			} else {
				*o, err = s.js.ObjectStore(ctx, name)
			}
			if err != nil {
				return fmt.Errorf("store: object store %s: %v: %w", name, err, grid.ErrUnavailable)
			}
			return nil
		})
	}
	objects(&s.blobs, "slugblobs", 0)
	if s.create {
		kv(&s.builds.kv, "builds", 0)
		kv(&s.addons.kv, "addons", 0)
		kv(&s.attachments.kv, "attachments", 0)
		kv(&s.drains.kv, "drains", 0)
		objects(&s.outputs, "buildoutput", 0)
		objects(&s.sources, "sources", SourceTTL)
		objects(&s.backups, "backups", 0)
	}
	return g.Wait()
}

// JetStream gives packages that own their own streams (logs) access to
// JetStream on the same connection.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Conn is the underlying NATS connection, for request/reply.
func (s *Store) Conn() *nats.Conn { return s.nc }

// Role is who this client is. Only servers create or change streams and
// buckets; other roles bind to what servers made.
func (s *Store) Role() Role { return s.role }

// Replicas is the replica count to use for streams owned elsewhere.
func (s *Store) Replicas() int { return s.replicas }

// Close drains the connection and waits (up to 5 s) until it is closed,
// so that a server shut down next does not cut it off mid-flush.
func (s *Store) Close() {
	if err := s.nc.Drain(); err != nil {
		s.nc.Close()
	}
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		s.nc.Close()
	}
}

// NextUID allocates a fresh unprivileged uid for a new app. UIDs start at
// 200000, well clear of system and login users, and are never reused.
func (s *Store) NextUID(ctx context.Context) (int, error) {
	const first = 200000
	n, err := s.meta.update(ctx, "uidseq", true, func(v *int) error {
		if *v < first {
			*v = first
		}
		*v++
		return nil
	})
	return n, err
}
