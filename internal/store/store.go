package store

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	blobs       jetstream.ObjectStore
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
	if err := s.init(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		// A JetStream request sent while the cluster has no meta leader
		// gets no answer at all, so each attempt has its own deadline.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.bind(actx)
		cancel()
		if err == nil {
			return nil
		}
		// A cluster still electing leaders, or a host started before the
		// servers made the buckets: wait for it, until ctx says stop.
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// bind opens every bucket; servers create or update them first.
func (s *Store) bind(ctx context.Context) error {
	var err error
	open := func(name string, ttl time.Duration) jetstream.KeyValue {
		if err != nil {
			return nil
		}
		var b jetstream.KeyValue
		if s.create {
			b, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: name, Storage: jetstream.FileStorage, Replicas: s.replicas, TTL: ttl,
			})
		} else {
			b, err = s.js.KeyValue(ctx, name)
		}
		if err != nil {
			err = fmt.Errorf("store: bucket %s: %v: %w", name, err, grid.ErrUnavailable)
		}
		return b
	}
	s.apps = bucket[grid.App]{open("apps", 0), "app"}
	s.appmeta = bucket[grid.AppMeta]{open("appmeta", 0), "app"}
	s.releases = bucket[grid.Release]{open("releases", 0), "release"}
	s.formations = bucket[grid.Formation]{open("formations", 0), "formation"}
	s.slugs = bucket[grid.Slug]{open("slugs", 0), "slug"}
	s.hostctl = bucket[grid.HostControl]{open("hostctl", 0), "host control"}
	s.assignments = bucket[grid.Assignment]{open("assignments", 0), "assignment"}
	s.dynos = bucket[grid.Dyno]{open("dynos", 0), "dyno"}
	s.hosts = bucket[grid.Host]{open("hosts", 0), "host"}
	s.routers = bucket[grid.RouterState]{open("routers", 0), "router"}
	s.keys = bucket[apiKey]{open("apikeys", 0), "api key"}
	s.meta = bucket[int]{open("meta", 0), "counter"}
	s.leases = bucket[lease]{open("leases", LeaseTTL), "lease"}
	if err != nil {
		return err
	}
	if s.create {
		s.blobs, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: "slugblobs", Storage: jetstream.FileStorage, Replicas: s.replicas,
		})
	} else {
		s.blobs, err = s.js.ObjectStore(ctx, "slugblobs")
	}
	if err != nil {
		return fmt.Errorf("store: object store: %v: %w", err, grid.ErrUnavailable)
	}
	return nil
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
