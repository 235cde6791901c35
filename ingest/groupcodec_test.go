package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/wire"
)

// plainGroup is the group value the code before compression wrote (and
// still writes with ingest.wal_compression = "none"): the old encoder.
func plainGroup(first uint64, at int64, payloads [][]byte) []byte {
	v := groupStart(first, at)
	for _, p := range payloads {
		v = appendGroupRecord(v, p)
	}
	return v
}

// benchLike are n payloads shaped like tally bench's (cmd/tally/bench.go
// appendTx); varied adds two random hex fields per record.
func benchLike(n int, varied bool, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	games := []string{"book-of-x", "star-reels", "live-roulette", "blackjack-vip"}
	out := make([][]byte, n)
	for i := range out {
		typ := "bet"
		if rng.IntN(100) < 35 {
			typ = "win"
		}
		b := fmt.Appendf(nil, `{"id":"b0-%d-%d","type":%q,"amount":"%d.%02d","currency":"EUR","occurred_at":"2026-12-03T14:%02d:%02dZ","game":%q`,
			seed, i, typ, 1+rng.IntN(500), rng.IntN(100), rng.IntN(60), rng.IntN(60), games[rng.IntN(len(games))])
		if varied {
			b = fmt.Appendf(b, `,"player":"%016x","meta":{"ref":"%016x%016x"}`, rng.Uint64(), rng.Uint64(), rng.Uint64())
		}
		out[i] = append(b, `,"jurisdiction":"MT","brand":"main"}`...)
	}
	return out
}

func samePayloads(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d payloads, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: payload %d = %q, want %q", what, i, got[i], want[i])
		}
	}
}

// TestGroupCodecRoundTrip: a compressed group decodes to the very bytes of
// every record, with its first sequence and accept time, through a reused
// reader and through splitGroup; S2 is used only when it makes the group
// smaller.
func TestGroupCodecRoundTrip(t *testing.T) {
	r := getGroupReader()
	defer r.release()
	at := time.Date(2026, 12, 3, 14, 0, 0, 123, time.UTC).UnixNano()
	for _, tc := range []struct {
		name     string
		payloads [][]byte
		shrinks  bool
	}{
		{"bench", benchLike(1000, false, 1), true},
		{"varied", benchLike(300, true, 2), true},
		{"one", benchLike(1, false, 3), false},
		{"empty record", [][]byte{{}, []byte("{}"), {}}, false},
	} {
		first := uint64(1 + len(tc.name)*1000)
		last := first + uint64(len(tc.payloads)) - 1
		plain := plainGroup(first, at, tc.payloads)
		v := compressGroup(plain)
		compressed := binary.BigEndian.Uint64(v)&groupCompressed != 0
		if compressed != (len(v) < len(plain)) || (tc.shrinks && !compressed) {
			t.Errorf("%s: %d → %d bytes, compressed %v (want it when smaller%s)", tc.name, len(plain), len(v), compressed, map[bool]string{true: ", and here it is"}[tc.shrinks])
		}
		t.Logf("%s: %d records, %d → %d bytes (%.2f×)", tc.name, len(tc.payloads), len(plain), len(v), float64(len(plain))/float64(len(v)))
		key := groupKey("p1", last)
		for _, split := range []func([]byte, []byte) (group, error){r.split, splitGroup} {
			g, err := split(key, v)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if g.first != first || g.last != last || g.at != at {
				t.Errorf("%s: group %d-%d at %d, want %d-%d at %d", tc.name, g.first, g.last, g.at, first, last, at)
			}
			samePayloads(t, tc.name, g.payloads, tc.payloads)
		}
	}
	// Random bytes do not shrink: the plain value is stored as it is.
	rng := rand.New(rand.NewPCG(9, 9))
	noise := make([]byte, 4000)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	plain := plainGroup(5, at, [][]byte{noise})
	if v := compressGroup(plain); !bytes.Equal(v, plain) {
		t.Errorf("incompressible group stored as %d bytes, want the plain %d", len(v), len(plain))
	}
}

// TestGroupCodecCorrupt: every truncation and every flipped bit of a
// compressed group, and a compressed group with one record too many or too
// few for its key, is ErrCorrupt: never a different record.
func TestGroupCodecCorrupt(t *testing.T) {
	payloads := benchLike(20, true, 4)
	at := time.Now().UnixNano()
	v := compressGroup(plainGroup(41, at, payloads))
	if binary.BigEndian.Uint64(v)&groupCompressed == 0 {
		t.Fatal("test group not compressed")
	}
	key := groupKey("p1", 60)
	if _, err := splitGroup(key, v); err != nil {
		t.Fatal(err)
	}
	r := getGroupReader()
	defer r.release()
	for n := range len(v) {
		if _, err := r.split(key, v[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v, want ErrCorrupt", n, len(v), err)
		}
	}
	bad := bytes.Clone(v)
	for i := range bad {
		for bit := range 8 {
			bad[i] ^= 1 << bit
			if _, err := r.split(key, bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("bit %d of byte %d flipped: %v, want ErrCorrupt", bit, i, err)
			}
			bad[i] ^= 1 << bit
		}
	}
	extra := append(append([][]byte{}, payloads...), []byte(`{"id":"extra"}`))
	for _, tc := range []struct {
		name string
		last uint64
		recs [][]byte
	}{
		{"one record more than the key says", 60, extra},
		{"one record fewer than the key says", 61, payloads},
		{"first past last", 40, payloads},
	} {
		w := compressGroup(plainGroup(41, at, tc.recs))
		if _, err := r.split(groupKey("p1", tc.last), w); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tc.name, err)
		}
	}
	// A length past maxGroupBody is refused before anything is allocated.
	huge := append(bytes.Clone(v[:groupCompressedHeader]), binary.AppendUvarint(nil, maxGroupBody+1)...)
	if _, err := r.split(key, huge); !errors.Is(err, ErrCorrupt) {
		t.Errorf("S2 length past maxGroupBody: %v, want ErrCorrupt", err)
	}
}

// FuzzGroupDecode: the reader never panics on any value, and whatever it
// accepts has exactly last-first+1 records, which encode (plain and
// compressed) back to a group it reads the same.
func FuzzGroupDecode(f *testing.F) {
	at := int64(1_764_770_000_000_000_000)
	// Small seeds: the fuzzer minimizes each new input for up to
	// -fuzzminimizetime (60s), and that is quadratic in its length.
	p := [][]byte{[]byte(`{"id":"a","n":"aaaaaaaaaaaaaaaa"}`), []byte(`{"id":"b","n":"aaaaaaaaaaaaaaaa"}`), {}}
	f.Add(uint64(3), plainGroup(1, at, p))
	c := compressGroup(plainGroup(1, at, p))
	if binary.BigEndian.Uint64(c)&groupCompressed == 0 {
		f.Fatal("compressed seed not compressed")
	}
	f.Add(uint64(3), c)
	f.Add(uint64(1), []byte{})
	f.Fuzz(func(t *testing.T, last uint64, v []byte) {
		r := getGroupReader()
		defer r.release()
		key := groupKey("p1", last)
		g, err := r.split(key, v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if g.first == 0 || g.last != last || uint64(len(g.payloads)) != last-g.first+1 {
			t.Fatalf("accepted group %d-%d with %d records", g.first, g.last, len(g.payloads))
		}
		if len(g.payloads) > 1000 {
			// A tiny S2 block can expand to millions of empty records (the
			// span bound, 2^24, still holds); re-encoding them under coverage
			// instrumentation takes seconds per input, so only small groups
			// are re-encoded.
			return
		}
		recs := make([][]byte, len(g.payloads))
		for i, pl := range g.payloads {
			recs[i] = bytes.Clone(pl)
		}
		for _, again := range [][]byte{plainGroup(g.first, g.at, recs), compressGroup(plainGroup(g.first, g.at, recs))} {
			h, err := splitGroup(key, again)
			if err != nil || h.first != g.first || h.at != g.at {
				t.Fatalf("re-encoded group: %+v, %v", h, err)
			}
			samePayloads(t, "re-encoded", h.payloads, recs)
		}
	})
}

// TestCompressedWALOldAndNew: a real WAL written by the code before
// compression (plain groups, layout 2) is opened by a node that compresses:
// it moves to layout 3 without rewriting a group, answers duplicates of old
// and new records, survives a restart, and the forwarder publishes every
// record, old and new, byte for byte to a real JetStream. The logical size
// (m/bytes) is what the stored entries take, and retention frees all of it.
func TestCompressedWALOldAndNew(t *testing.T) {
	s, js := hub(t)
	nc := natstest.Connect(t, s)
	dir := t.TempDir()
	id := func(i int) string { return "r" + strconv.Itoa(i) }
	body := func(i int) []byte { return payload(id(i), fmt.Sprintf("%d.%02d", 1+i%97, i%100)) }
	canon := func(i int) []byte { return canonical(t, body(i)) }

	// Phase 1: the old writer. Plain groups (the encoder is unchanged), m/layout 2.
	old := testConfig(dir)
	old.WALCompression = wire.CompressionNone
	w := openWAL(t, old)
	for g := range 3 {
		var reqs []*request
		for i := g*40 + 1; i <= g*40+40; i++ {
			c := canon(i)
			reqs = append(reqs, &request{provider: "p1", items: []item{{raw: body(i), id: id(i), canon: c, hash: sha256.Sum256(c)}}})
		}
		if res := w.commit(reqs, time.Now()); res.accepted != 40 {
			t.Fatalf("old writer group %d: %+v", g, res)
		}
	}
	if err := w.db.Update(func(tx *badger.Txn) error { return tx.Set([]byte(keyLayout), u64(2)) }); err != nil {
		t.Fatal(err)
	}
	if err := w.db.Close(); err != nil {
		t.Fatal(err)
	}

	// Phase 2: the compressing node reads the old groups and writes new ones.
	n := startNode(t, testConfig(dir), nc, js)
	if a := ask(t, nc, "p1", body(77)); a.Status != wire.StatusDuplicate || a.EdgeSeq != 77 {
		t.Fatalf("resend of old record 77 answered %+v, want duplicate of 77", a)
	}
	for b := range 4 {
		var bodies [][]byte
		for i := 121 + b*30; i < 121+b*30+30; i++ {
			bodies = append(bodies, body(i))
		}
		for k, a := range askBatch(t, nc, "p1", bodies...) {
			if want := uint64(121 + b*30 + k); a.Status != wire.StatusAccepted || a.EdgeSeq != want {
				t.Fatalf("new record answered %+v, want accepted as %d", a, want)
			}
		}
	}
	waitForwarded(t, n, 240)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// Phase 3: restart; duplicates of both kinds, more records, all forwarded.
	n = startNode(t, testConfig(dir), nc, js)
	for _, i := range []int{3, 150} {
		if a := ask(t, nc, "p1", body(i)); a.Status != wire.StatusDuplicate || a.EdgeSeq != uint64(i) {
			t.Fatalf("after restart, resend of %d answered %+v", i, a)
		}
	}
	var bodies [][]byte
	for i := 241; i <= 260; i++ {
		bodies = append(bodies, body(i))
	}
	for k, a := range askBatch(t, nc, "p1", bodies...) {
		if a.Status != wire.StatusAccepted || a.EdgeSeq != uint64(241+k) {
			t.Fatalf("after restart, record %d answered %+v", 241+k, a)
		}
	}
	waitForwarded(t, n, 260)
	v := readStream(t, js)
	if got := len(v.order["p1"]); got != 260 {
		t.Fatalf("stream holds %d p1 records, want 260", got)
	}
	for i := 1; i <= 260; i++ {
		if got := v.records[fmt.Sprintf("p1/%d", i)]; !bytes.Equal(got, canon(i)) {
			t.Fatalf("record %d forwarded as %s, want %s", i, got, canon(i))
		}
	}
	used := n.wal.used()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// What is stored: old groups plain, new ones compressed, layout 3, and
	// m/bytes = the stored size of groups and dedup entries.
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithValueThreshold(valueThreshold))
	if err != nil {
		t.Fatal(err)
	}
	var plainN, compN int
	var stored int64
	err = db.View(func(tx *badger.Txn) error {
		for _, pfx := range []string{pfxRecord, pfxDedup} {
			it := tx.NewIterator(badger.IteratorOptions{Prefix: []byte(pfx)})
			for it.Rewind(); it.Valid(); it.Next() {
				stored += int64(len(it.Item().Key())) + it.Item().ValueSize()
				if pfx != pfxRecord {
					continue
				}
				last := binary.BigEndian.Uint64(it.Item().Key()[len(recordPrefix("p1")):])
				err := it.Item().Value(func(v []byte) error {
					if binary.BigEndian.Uint64(v)&groupCompressed != 0 {
						compN++
						if last <= 120 {
							t.Errorf("old group ending at %d was rewritten compressed", last)
						}
					} else {
						plainN++
						if last > 120 && len(v) > 200 {
							t.Errorf("new group ending at %d (%d bytes) stored plain", last, len(v))
						}
					}
					return nil
				})
				if err != nil {
					it.Close()
					return err
				}
			}
			it.Close()
		}
		lv, ok, err := get(tx, []byte(keyLayout))
		if err != nil || !ok || binary.BigEndian.Uint64(lv) != layoutVersion || layoutVersion != 3 {
			t.Errorf("m/layout = %x (%v, %v), want 3", lv, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if plainN != 3 || compN == 0 {
		t.Errorf("%d plain and %d compressed groups, want the 3 old plain ones and compressed new ones", plainN, compN)
	}
	if stored != used {
		t.Errorf("stored groups and dedup entries take %d bytes, m/bytes − m/freed says %d", stored, used)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Phase 4: retention past the retention time deletes every group, plain
	// and compressed, with its dedup keys: the logical size goes back to 0.
	n = startNode(t, testConfig(dir), nc, js)
	if k, err := n.gc(time.Now().Add(2*DefaultRetention), nil); err != nil || k != 260 {
		t.Fatalf("retention deleted %d records (%v), want 260", k, err)
	}
	if u := n.wal.used(); u != 0 {
		t.Errorf("after retention deleted everything, m/bytes − m/freed = %d, want 0", u)
	}
}

// TestWALCompressionConfig: only "s2", "none" and "" (s2) are accepted.
func TestWALCompressionConfig(t *testing.T) {
	for _, v := range []string{"", wire.CompressionS2, wire.CompressionNone} {
		c := testConfig(t.TempDir())
		c.WALCompression = v
		if err := c.withDefaults().validate(); err != nil {
			t.Errorf("wal compression %q: %v", v, err)
		}
	}
	c := testConfig(t.TempDir())
	c.WALCompression = "zstd"
	if n, err := New(c, testLogger(t)); err == nil {
		n.Close()
		t.Error(`wal compression "zstd" accepted`)
	}
	if c := (Config{}).withDefaults(); c.WALCompression != wire.CompressionS2 {
		t.Errorf("default wal compression %q, want s2", c.WALCompression)
	}
}
