package nodes

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/shopspring/decimal"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/audit"
	"github.com/tally-mesh/tally/internal/natstest"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/store"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	code, b := get(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, b)
	}
}

func unb64(t *testing.T, ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// TestAuditAPI runs a real node with the audit API on a loopback port, settles
// real traffic, and checks every endpoint with independent code (note.Open,
// transparency-dev proof verifiers); then, with the node stopped, the offline
// audit recomputes every split the worker made and matches the index balances.
func TestAuditAPI(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Settle.AuditListen = "127.0.0.1:0"
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	exp := &expectation{net: map[string]decimal.Decimal{}, balances: map[[2]string]decimal.Decimal{}}
	streams := traffic(rng, []string{"studio-a", "studio-b"}, 150, exp)

	n, err := Start(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	accepted := send(t, n.ClientURL(), streams)
	natstest.Eventually(t, 60*time.Second, func() error {
		if err := n.Err(); err != nil {
			t.Fatalf("node failed: %v", err)
		}
		st := n.Stats()
		if st.Settle.Entries != uint64(accepted) || st.Settle.OrphansHeld != 0 {
			return fmt.Errorf("settled %d of %d", st.Settle.Entries, accepted)
		}
		return nil
	})
	base := "http://" + n.AuditAddr() + "/v1/audit"

	_, vk := get(t, base+"/verifier-key")
	vkey := strings.TrimSpace(string(vk))
	if onDisk, _ := store.ReadVerifierKey(cfg.LedgerDir()); onDisk != vkey {
		t.Fatalf("API verifier key %q, ledger's %q", vkey, onDisk)
	}
	th := rfc6962.DefaultHasher

	var heads []audit.PartitionHead
	getJSON(t, base+"/partitions", &heads)
	checked := 0
	for _, h := range heads {
		if h.SignedSize < 2 {
			continue
		}
		checked++
		// The checkpoint: signed under its origin with the partition's key
		// (the ledger key named like the origin), and the size and root the
		// API reports.
		_, pk := get(t, fmt.Sprintf("%s/verifier-key?partition=%d", base, h.Partition))
		pkey := strings.TrimSpace(string(pk))
		if want, err := store.PartitionVerifierKey(vkey, h.Partition); err != nil || pkey != want || h.VerifierKey != want {
			t.Fatalf("partition %d key: API %q, partitions list %q, derived %q (%v)", h.Partition, pkey, h.VerifierKey, want, err)
		}
		verifier, err := note.NewVerifier(pkey)
		if err != nil {
			t.Fatal(err)
		}
		_, ck := get(t, fmt.Sprintf("%s/partitions/%d/checkpoint", base, h.Partition))
		nt, err := note.Open(ck, note.VerifierList(verifier))
		if err != nil {
			t.Fatalf("partition %d checkpoint does not verify: %v", h.Partition, err)
		}
		lines := strings.Split(nt.Text, "\n")
		if lines[1] != fmt.Sprint(h.SignedSize) {
			t.Fatalf("checkpoint size %s, API says %d", lines[1], h.SignedSize)
		}
		root, _ := base64.StdEncoding.DecodeString(lines[2])

		// Entries by range, then an inclusion proof for one of them by (provider, id).
		var page struct {
			End     uint64            `json:"end"`
			Entries []audit.EntryItem `json:"entries"`
		}
		getJSON(t, fmt.Sprintf("%s/partitions/%d/entries?start=0&end=%d", base, h.Partition, h.SignedSize), &page)
		if uint64(len(page.Entries)) != h.SignedSize || page.End != h.SignedSize {
			t.Fatalf("entries [0, %d) returned %d, end %d", h.SignedSize, len(page.Entries), page.End)
		}
		pick := page.Entries[rng.IntN(len(page.Entries))]
		raw, _ := hex.DecodeString(pick.EntryHex)
		if lh := th.HashLeaf(raw); base64.StdEncoding.EncodeToString(lh) != pick.LeafHash {
			t.Fatalf("entry %d leaf hash %s, recomputed %x", pick.Entry.Index, pick.LeafHash, lh)
		}
		var pr audit.InclusionProof
		getJSON(t, fmt.Sprintf("%s/inclusion?provider=%s&id=%s", base, pick.Entry.Provider, pick.Entry.ID), &pr)
		if pr.Index != pick.Entry.Index || pr.EntryHex != pick.EntryHex {
			t.Fatalf("inclusion proof for %s/%s is of index %d", pick.Entry.Provider, pick.Entry.ID, pr.Index)
		}
		if err := proof.VerifyInclusion(th, pr.Index, pr.TreeSize, th.HashLeaf(raw), unb64(t, pr.Proof), root); err != nil {
			t.Fatalf("transparency-dev rejects the API's inclusion proof: %v", err)
		}
		_, rc := get(t, fmt.Sprintf("%s/receipt?provider=%s&id=%s", base, pick.Entry.Provider, pick.Entry.ID))
		if string(rc) != pr.Receipt {
			t.Fatalf("receipt endpoint and inclusion proof differ")
		}
		if pr.VerifierKey != pkey {
			t.Fatalf("inclusion proof names verifier key %q, want %q", pr.VerifierKey, pkey)
		}
		for _, k := range []string{vkey, pkey} {
			if _, err := store.VerifyReceipt(rc, k, raw); err != nil {
				t.Fatalf("receipt with %s: %v", k, err)
			}
		}

		// Consistency from size 1 to the signed size.
		var cp audit.ConsistencyProof
		getJSON(t, fmt.Sprintf("%s/partitions/%d/consistency?from=1", base, h.Partition), &cp)
		r1 := th.HashLeaf(mustHex(t, page.Entries[0].EntryHex))
		if err := proof.VerifyConsistency(th, 1, cp.To, unb64(t, cp.Proof), r1, root); err != nil {
			t.Fatalf("transparency-dev rejects the API's consistency proof: %v", err)
		}

		// A segment file, byte for byte what the ledger holds.
		_, seg := get(t, fmt.Sprintf("%s/partitions/%d/segments/1", base, h.Partition))
		hdr, es, err := store.DecodeSegment(seg)
		if err != nil || hdr.Number != 1 || len(es) == 0 {
			t.Fatalf("segment 1: %v", err)
		}
		if sha256.Sum256(seg) == [32]byte{} {
			t.Fatal("empty segment")
		}
	}
	if checked == 0 {
		t.Fatalf("no partition has a signed checkpoint of size ≥ 2: %+v", heads)
	}

	// Definite errors with stable codes.
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/inclusion?provider=studio-a&id=never-sent", 404, audit.CodeNotFound},
		{"/inclusion?provider=studio-a", 400, audit.CodeBadRequest},
		{"/partitions/999/checkpoint", 404, audit.CodeNotFound},
		{"/partitions/x/checkpoint", 400, audit.CodeBadRequest},
		{fmt.Sprintf("/partitions/%d/entries?start=01", heads[0].Partition), 400, audit.CodeBadRequest},
		{fmt.Sprintf("/partitions/%d/consistency?from=1&to=%d", heads[0].Partition, heads[0].SignedSize+1), 409, audit.CodeNotSigned},
		{fmt.Sprintf("/partitions/%d/consistency?from=%d", heads[0].Partition, heads[0].SignedSize+1), 400, audit.CodeRange},
		{fmt.Sprintf("/partitions/%d/segments/%d", heads[0].Partition, heads[0].Segments+1), 404, audit.CodeNotFound},
	} {
		code, b := get(t, base+tc.path)
		var e struct{ Code, Reason string }
		json.Unmarshal(b, &e)
		if code != tc.code || e.Code != tc.want || e.Reason == "" {
			t.Errorf("GET %s = %d %s, want %d %s with a reason", tc.path, code, b, tc.code, tc.want)
		}
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// Offline, node stopped: the full audit recomputes the worker's splits
	// and reversals and checks the index balances against the entries.
	idx, err := settle.OpenIndex(cfg.IndexDir(), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	pbs, err := idx.Committed()
	idx.Close()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(cfg.LedgerDir(), audit.Options{Key: vkey, Balances: &audit.Balances{Source: "index", Partitions: pbs}})
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	if rep.Entries != uint64(accepted) || rep.Splits+rep.Reversals != rep.Entries || rep.Reversals == 0 || len(rep.BalancesChecked) == 0 {
		t.Fatalf("audit: %d entries (%d accepted), %d splits, %d reversals, balances of %v", rep.Entries, accepted, rep.Splits, rep.Reversals, rep.BalancesChecked)
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
