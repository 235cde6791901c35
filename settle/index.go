package settle

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/internal/atrest"
	"github.com/tally-mesh/tally/internal/badgerlog"
	"github.com/tally-mesh/tally/internal/badgermem"
	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store"
)

// Index is the settle node's local Badger state: a cache of what the ledger
// holds plus the marks that make redelivery idempotent. keys.go owns its
// key layout; applyLedger is the one way a commit reaches it.
type Index struct {
	db *badger.DB
	rs *ruleSets // the rule-set hashes version-2 dedup records name by number
}

// OpenIndex opens (or creates) the index in dir.
func OpenIndex(dir string, log hclog.Logger) (*Index, error) {
	return OpenIndexWith(dir, log, IndexOptions{})
}

// OpenIndexKey is OpenIndex for an index encrypted at rest with key (16, 24
// or 32 bytes; nil = plain); Badger makes a new data key every rotation (0 =
// its 10-day default). A wrong or missing key fails the open. Badger needs an
// index cache with encryption (set below). docs/security.md.
func OpenIndexKey(dir string, log hclog.Logger, key []byte, rotation time.Duration) (*Index, error) {
	return OpenIndexWith(dir, log, IndexOptions{Key: key, Rotation: rotation})
}

// IndexOptions are how a node opens its index.
type IndexOptions struct {
	Key      []byte        // encryption at rest (OpenIndexKey); nil = plain
	Rotation time.Duration // data-key rotation; 0 = Badger's 10 days
	// Memory bounds the index's Badger memory (config settle.index_*); a
	// zero field takes DefaultIndexMemory's.
	Memory badgermem.Memory

	tune func(badger.Options) badger.Options // benchmarks only: try other LSM options
}

// DefaultIndexMemory is the index's Badger memory by default, 112 MiB at
// most: 5 memtables of 16 MiB (one being written, the others waiting for
// their flush while compaction catches up), 16 MiB of block cache (dedup
// lookups of duplicates, balances) and 16 MiB of index cache (SST indices and
// bloom filters: every new transaction's dedup lookup misses through them).
var DefaultIndexMemory = badgermem.Memory{MemTableBytes: 16 << 20, MemTables: 5, BlockCacheBytes: 16 << 20, IndexCacheBytes: 16 << 20}

// OpenIndexWith opens (or creates) the index in dir with o.
func OpenIndexWith(dir string, log hclog.Logger, o IndexOptions) (*Index, error) {
	mem := o.Memory.Or(DefaultIndexMemory)
	if err := mem.Check("settle.index_"); err != nil {
		return nil, fmt.Errorf("open settle index: %w", err)
	}
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true). // the index commit is what lets us ack inputs: it must be on disk
		WithLogger(badgerlog.New(log.Named("badger"))).
		WithNumVersionsToKeep(1).
		WithValueThreshold(1 << 10).
		// Badger's expvar metrics are read by nothing here and cost every
		// dedup lookup a map update per table probed (docs/performance.md).
		WithMetricsEnabled(false).
		// Two compactors, not Badger's four: on a node of two cores more do
		// not run in parallel, and each holds its table builders' buffers
		// (several MiB) while it works; measured in docs/performance.md.
		WithNumCompactors(2)
	opts = mem.Apply(opts)
	if o.tune != nil {
		opts = o.tune(opts)
	}
	opts = atrest.Apply(opts, o.Key, o.Rotation) // encryption at rest when a key is set
	db, err := badgerlog.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open settle index: %w", err)
	}
	rs, err := loadRuleSets(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Index{db: db, rs: rs}, nil
}

// Close closes the Badger database.
func (x *Index) Close() error { return x.db.Close() }

func u64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func getU64(txn *badger.Txn, k []byte) (uint64, error) {
	it, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = it.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("index key %q: bad length %d", k, len(b))
		}
		v = u64(b)
		return nil
	})
	return v, err
}

func getJSON(txn *badger.Txn, k []byte, dst any) (bool, error) {
	it, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, it.Value(func(b []byte) error { return json.Unmarshal(b, dst) })
}

// getDedupRec reads a dedup record (any encoding) into dst.
func (x *Index) getDedupRec(txn *badger.Txn, k []byte, dst *dedupRec) (bool, error) {
	it, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, it.Value(func(b []byte) error { return decodeDedup(b, dst, x.rs.resolver(txn)) })
}

// lookupDedup is getDedupRec into a new record, nil when there is none.
func (x *Index) lookupDedup(txn *badger.Txn, k []byte) (*dedupRec, error) {
	it, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r := new(dedupRec)
	if err := it.Value(func(b []byte) error { return decodeDedup(b, r, x.rs.resolver(txn)) }); err != nil {
		return nil, err
	}
	return r, nil
}

// Balance is one party's balance in one currency.
type Balance struct {
	Party    string          `json:"party"`
	Currency string          `json:"currency"`
	Amount   decimal.Decimal `json:"amount"`
}

// Formatted is the amount with exactly its currency's decimals ("4389.20",
// "144766", "53.797"), as partners read it.
func (b Balance) Formatted() string {
	if c, ok := money.Lookup(b.Currency); ok {
		return c.Format(b.Amount)
	}
	return b.Amount.String()
}

// MarshalJSON writes the amount as a string with the currency's decimals.
func (b Balance) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Party    string `json:"party"`
		Currency string `json:"currency"`
		Amount   string `json:"amount"`
	}{b.Party, b.Currency, b.Formatted()})
}

// Balances sums every partition's balances per party and currency, sorted.
func (x *Index) Balances() ([]Balance, error) {
	sum := map[[2]string]decimal.Decimal{}
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxBalance), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			_, party, currency, err := parseBalanceKey(it.Item().Key())
			if err != nil {
				return err
			}
			id := [2]string{party, currency}
			err = it.Item().Value(func(v []byte) error {
				d, err := decimal.NewFromString(string(v))
				if err != nil {
					return err
				}
				sum[id] = sum[id].Add(d)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	out := make([]Balance, 0, len(sum))
	for k, v := range sum {
		out = append(out, Balance{Party: k[0], Currency: k[1], Amount: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Party != out[j].Party {
			return out[i].Party < out[j].Party
		}
		return out[i].Currency < out[j].Currency
	})
	return out, err
}

// Counters sums the persisted counters of every partition.
func (x *Index) Counters() (Counters, error) {
	var total Counters
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxCounters), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var c Counters
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &c) }); err != nil {
				return err
			}
			total.Add(c)
		}
		return nil
	})
	return total, err
}

// Exceptions lists recorded exceptions, oldest first per partition, at most max.
func (x *Index) Exceptions(max int) ([]Exception, error) {
	var out []Exception
	err := x.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxException), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < max; it.Next() {
			var e Exception
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) }); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Lookup returns where (provider, id) was settled: partition and leaf index.
func (x *Index) Lookup(provider, id string) (partition uint32, index uint64, held bool, found bool, err error) {
	var r dedupRec
	err = x.db.View(func(txn *badger.Txn) error {
		var e error
		found, e = x.getDedupRec(txn, keyDedup(provider, id), &r)
		return e
	})
	return r.Partition, r.Index, r.Held, found, err
}

// balanceID is a balance of applyLedger's commit: party and currency.
type balanceID struct{ party, currency string }

// applyLedger applies one TALLY_LEDGER message of partition p to the index
// in one Badger transaction: the segment's entries (their dedup records and
// balances; segs is the segment count after the message) and the state
// record. The settle worker calls it after the stream accepted its commit,
// catch-up for every message it reads back: one path, so an index rebuilt
// from the stream is the index that was built live. seq is the message's
// stream sequence.
func (x *Index) applyLedger(p uint32, seq, segs uint64, entries []store.Entry, r *stateRec) error {
	var newRS []uint64 // rule-set numbers whose r/<n> this transaction writes
	err := x.db.Update(func(t *badger.Txn) error {
		newRS = newRS[:0]
		// encode appends rec in version 2 to enc, with r/<n> of its rule
		// set in this transaction unless it is on disk already.
		// ref is the number of rule set h, with r/<n> in this transaction
		// unless it is on disk already.
		ref := func(h []byte) (uint64, error) {
			n, write := x.rs.ref(h)
			if write && !slices.Contains(newRS, n) {
				if err := t.Set(keyRuleSet(n), append([]byte(nil), h...)); err != nil {
					return 0, err
				}
				newRS = append(newRS, n)
			}
			return n, nil
		}
		encode := func(enc []byte, rec *dedupRec) ([]byte, error) {
			n, err := ref(rec.RuleSet)
			if err != nil {
				return nil, err
			}
			return appendDedupV2(enc, rec, n), nil
		}
		if err := t.Set(keyApplied(p), be64(seq)); err != nil {
			return err
		}
		// The p/ keys of this build are complete up to seq (paid.go,
		// derivePaid): a build without them advances l/<p> but not y/<p>.
		if err := t.Set(keyPaidDone(p), be64(seq)); err != nil {
			return err
		}
		if err := t.Set(keySegments(p), be64(segs)); err != nil {
			return err
		}
		for k, v := range r.Marks {
			if err := t.Set(absKey(pfxMark, p, k), be64(v)); err != nil {
				return err
			}
		}
		// Badger keeps each key and value slice until the commit, so they are
		// carved from one growing buffer (only appended to: earlier slices
		// stay valid) instead of one allocation per record.
		enc := make([]byte, 0, 200*len(entries)) // dedup keys and records
		balances := map[balanceID]*money.Acc{}   // int64 minor units while they fit: no allocation per share
		for i := range entries {
			e := &entries[i]
			if e.Partition != p {
				return fmt.Errorf("entry %s/%s is for partition %d", e.Provider, e.Tx.ID, e.Partition)
			}
			ks := len(enc)
			enc = appendKeyDedup(enc, e.Provider, e.Tx.ID)
			k := enc[ks:len(enc):len(enc)]
			if _, over := r.Dedup[dedupRel(string(k))]; !over {
				start := len(enc)
				n, err := ref(e.RuleSet[:])
				if err != nil {
					return err
				}
				var direct bool // the entry's record encoded from its decimals (dedupentry.go), the same bytes
				if enc, direct = appendEntryDedupV2(enc, e, e.Tx.Hash(), n); !direct {
					if enc, err = encode(enc, ptr(entryDedup(e))); err != nil {
						return err
					}
				}
				if err := t.Set(k, enc[start:len(enc):len(enc)]); err != nil {
					return err
				}
			}
			for _, sh := range e.Shares {
				id := balanceID{sh.Party, e.Tx.Currency.Code}
				a := balances[id]
				if a == nil {
					a = new(money.Acc)
					balances[id] = a
				}
				a.Add(sh.Amount)
			}
		}
		for k, v := range r.Dedup {
			var rec dedupRec
			if err := decodeDedup(v, &rec, nil); err != nil { // version 1 or JSON: the ledger's own
				return fmt.Errorf("state record: dedup %q: %w", k, err)
			}
			start := len(enc)
			var err error
			if enc, err = encode(enc, &rec); err != nil {
				return err
			}
			if err := t.Set(dedupAbs(k), enc[start:len(enc):len(enc)]); err != nil {
				return err
			}
		}
		for id, acc := range balances {
			k, delta := keyBalance(p, id.party, id.currency), acc.Decimal()
			cur := decimal.Zero
			it, err := t.Get(k)
			switch {
			case errors.Is(err, badger.ErrKeyNotFound):
			case err != nil:
				return err
			default:
				if err := it.Value(func(v []byte) error {
					d, e := decimal.NewFromString(string(v))
					cur = d
					return e
				}); err != nil {
					return err
				}
			}
			if err := t.Set(k, []byte(cur.Add(delta).String())); err != nil {
				return err
			}
		}
		for k, o := range r.Hold {
			if err := setJSON(t, absKey(pfxOrphan, p, k), o); err != nil {
				return err
			}
		}
		for _, k := range r.Release {
			if err := t.Delete(absKey(pfxOrphan, p, k)); err != nil {
				return err
			}
		}
		for i, e := range r.Exceptions {
			if err := setJSON(t, keyException(p, e.At, i), e); err != nil {
				return err
			}
		}
		for i := range entries { // the statements payout_run entries pay (paid.go)
			if err := putPaid(t, &entries[i]); err != nil {
				return err
			}
		}
		return setJSON(t, keyCounters(p), r.Counters)
	})
	if err == nil {
		x.rs.committed(newRS) // synced (WithSyncWrites): later records need not repeat r/<n>
	}
	return err
}
