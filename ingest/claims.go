package ingest

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// Provider claims: one provider is served by one edge node per hub, so that
// one WAL holds all of a provider's ids and edge dedup sees every retry. An
// edge claims each configured provider in the hub's key-value bucket
// wire.Subjects.ClaimBucket() (key = provider, value = edge node id) before
// it subscribes to <prefix>.in.<provider>:
//
//   - no claim yet: the edge creates it;
//   - a claim holding this node id (a restart of the same edge): accepted;
//   - a claim holding another node id: refused (ClaimError), at start if the
//     hub is reachable, else when it returns (the node then stops).
//
// Claims have no TTL: an edge that is down may still hold accepted records in
// its WAL, and a second edge taking its providers would split their dedup.
// An operator releases the claim of an edge that is gone for good (after its
// WAL was forwarded) with `nats kv del <PREFIX>_PROVIDERS <provider>`.
//
// An edge without a provider list (development: any provider token) claims
// the key ClaimAll and refuses to start while any other edge holds a claim,
// and a listed provider is refused while another edge holds ClaimAll.
//
// Each confirmed claim is also recorded in the WAL (k/<provider>), so that an
// edge restarted while the hub is down goes on taking its providers over
// HTTP; a provider it never had confirmed is answered unavailable until the
// hub confirms it.

// ClaimAll is the claim key of an edge that takes any provider. Provider
// tokens hold no dots, so it never names a provider.
const ClaimAll = "all.providers"

// ClaimError is a provider claimed by another edge node.
type ClaimError struct {
	Provider string // provider, or ClaimAll
	Holder   string // node id holding the claim
	Bucket   string
}

func (e *ClaimError) Error() string {
	what := "provider " + e.Provider + " is"
	if e.Provider == ClaimAll {
		what = "all providers are"
	}
	return fmt.Sprintf("%s already served by edge node %q on this hub (claim in key-value bucket %s): one provider is served by one edge. "+
		"Remove the provider from this edge's config, or, if edge %q is gone for good and its WAL was forwarded, release the claim with `nats kv del %s %s` (docs/ingest.md, \"Topologies\")",
		what, e.Holder, e.Bucket, e.Holder, e.Bucket, e.Provider)
}

// claimBucket opens (or creates) the claim bucket.
func (n *Node) claimBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	name := n.cfg.Subjects.ClaimBucket()
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Description: "tally: provider → the edge node serving it", History: 1,
			Storage: jetstream.FileStorage, Replicas: n.cfg.ClaimReplicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another edge created it meanwhile
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("claim bucket %s: %w", name, err)
	}
	return kv, nil
}

// claim takes key for this node, or returns a *ClaimError naming the holder.
func (n *Node) claim(ctx context.Context, kv jetstream.KeyValue, key string) error {
	for range 3 { // a claim deleted between Create and Get: try again
		_, err := kv.Create(ctx, key, []byte(n.cfg.NodeID))
		if err == nil {
			n.log.Info("provider claimed", "provider", key, "bucket", kv.Bucket())
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("claim %s: %w", key, err)
		}
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue
		}
		if err != nil {
			return fmt.Errorf("claim %s: %w", key, err)
		}
		if holder := string(e.Value()); holder != n.cfg.NodeID {
			return &ClaimError{Provider: key, Holder: holder, Bucket: kv.Bucket()}
		}
		return nil
	}
	return fmt.Errorf("claim %s: created and deleted concurrently, try again", key)
}

// holder is the node id holding key ("" = none).
func holder(ctx context.Context, kv jetstream.KeyValue, key string) (string, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("claim %s: %w", key, err)
	}
	return string(e.Value()), nil
}

// claimProviders claims every provider of this node (or ClaimAll), records
// the confirmed claims in the WAL and opens the HTTP gate for them.
func (n *Node) claimProviders(ctx context.Context, js jetstream.JetStream) error {
	kv, err := n.claimBucket(ctx, js)
	if err != nil {
		return err
	}
	if len(n.cfg.Providers) == 0 {
		if err := n.claim(ctx, kv, ClaimAll); err != nil {
			return err
		}
		keys, err := kv.Keys(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
			return fmt.Errorf("list claims: %w", err)
		}
		for _, k := range keys {
			h, err := holder(ctx, kv, k)
			if err != nil {
				return err
			}
			if h != "" && h != n.cfg.NodeID {
				return &ClaimError{Provider: k, Holder: h, Bucket: kv.Bucket()}
			}
		}
		return nil
	}
	if h, err := holder(ctx, kv, ClaimAll); err != nil {
		return err
	} else if h != "" && h != n.cfg.NodeID {
		return &ClaimError{Provider: ClaimAll, Holder: h, Bucket: kv.Bucket()}
	}
	names := make([]string, 0, len(n.cfg.Providers))
	for p := range n.cfg.Providers {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		if err := n.claim(ctx, kv, p); err != nil {
			return err
		}
		if err := n.wal.db.Update(func(tx *badger.Txn) error { return tx.Set(claimKey(p), []byte(n.cfg.NodeID)) }); err != nil {
			return fmt.Errorf("record claim %s: %w", p, err)
		}
		n.claimed.Store(p, true)
	}
	return nil
}

// loadClaims opens the HTTP gate for the providers whose claim the hub
// confirmed to this node id before.
func (n *Node) loadClaims() error {
	return n.wal.db.View(func(tx *badger.Txn) error {
		it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxClaim)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			p := string(it.Item().Key()[len(pfxClaim):])
			err := it.Item().Value(func(v []byte) error {
				if string(v) == n.cfg.NodeID {
					n.claimed.Store(p, true)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// serves reports whether this node may take provider p's requests now: any
// provider without a provider list; a listed provider once its claim was
// confirmed (now or before a restart); unlisted providers pass here and are
// answered unknown_provider by the decoder.
func (n *Node) serves(p string) bool {
	if len(n.cfg.Providers) == 0 {
		return true
	}
	if _, ok := n.cfg.Providers[p]; !ok {
		return true
	}
	_, ok := n.claimed.Load(p)
	return ok
}
