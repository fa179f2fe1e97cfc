package store

import (
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
	URL   string // nats://host:port
	Token string
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

	apps        bucket[grid.App]
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
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			logger.Warn("nats connection error", "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.Token(cfg.Token),
		nats.Name(cfg.Name),
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
	s := &Store{nc: nc, closed: closed, js: js, replicas: max(cfg.Replicas, 1)}
	if err := s.init(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	kv := func(name, what string) (jetstream.KeyValue, error) {
		b, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   name,
			Storage:  jetstream.FileStorage,
			Replicas: s.replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("store: bucket %s: %v: %w", name, err, grid.ErrUnavailable)
		}
		return b, nil
	}
	var err error
	open := func(name string) jetstream.KeyValue {
		if err != nil {
			return nil
		}
		var b jetstream.KeyValue
		b, err = kv(name, name)
		return b
	}
	s.apps = bucket[grid.App]{open("apps"), "app"}
	s.releases = bucket[grid.Release]{open("releases"), "release"}
	s.formations = bucket[grid.Formation]{open("formations"), "formation"}
	s.slugs = bucket[grid.Slug]{open("slugs"), "slug"}
	s.assignments = bucket[grid.Assignment]{open("assignments"), "assignment"}
	s.dynos = bucket[grid.Dyno]{open("dynos"), "dyno"}
	s.hosts = bucket[grid.Host]{open("hosts"), "host"}
	s.keys = bucket[apiKey]{open("apikeys"), "api key"}
	s.meta = bucket[int]{open("meta"), "counter"}
	if err != nil {
		return err
	}
	s.blobs, err = s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:   "slugblobs",
		Storage:  jetstream.FileStorage,
		Replicas: s.replicas,
	})
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
