// Package store is typed access to NATS JetStream, Dynogrid's only stateful
// dependency: KV buckets for desired and actual state, an object store for
// slugs, and the embedded server that `grid up` runs.
//
// Every read-modify-write goes through compare-and-set on the key's
// revision (Update with the revision read); nothing here does a blind Put
// after a Get. The package knows the vocabulary in grid but no policy: it
// never decides what a release or a formation should be.
package store
