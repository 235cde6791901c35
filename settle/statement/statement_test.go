package statement_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

var update = flag.Bool("update", false, "rewrite the golden statements under testdata/golden")

// ledger settles transaction lines with the settle node's own engine and
// keeps the entries with the leaf indexes sealing would give them.
type ledger struct {
	t       *testing.T
	eng     settle.Engine
	st      *settle.MemState
	cnt     settle.Counters
	entries []store.Entry
}

func (l *ledger) Entry(e store.Entry) {
	e.Index = uint64(len(l.entries))
	l.entries = append(l.entries, e)
}

func (l *ledger) Exception(e settle.Exception) { l.t.Errorf("exception %+v", e) }

func (l *ledger) apply(line []byte) {
	l.t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		l.t.Fatal(err)
	}
	var provider string
	json.Unmarshal(m["provider"], &provider)
	delete(m, "provider")
	payload, _ := json.Marshal(m)
	tx, rej := txn.Decode(payload, txn.DefaultLimits())
	if rej != nil {
		l.t.Fatalf("%s: %v", line, rej)
	}
	if err := l.eng.Apply(l.st, l, &l.cnt, settle.Input{Provider: provider, EdgeNode: "test", Payload: tx.Canonical(), Now: tx.OccurredAt}); err != nil {
		l.t.Fatal(err)
	}
}

// phases reads a transaction file split into phases by "#" lines.
func phases(t *testing.T, path string) [][][]byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := [][][]byte{nil}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		switch b := bytes.TrimSpace(sc.Bytes()); {
		case len(b) == 0:
		case b[0] == '#':
			out = append(out, nil)
		default:
			out[len(out)-1] = append(out[len(out)-1], append([]byte(nil), b...))
		}
	}
	return out
}

func testKey(t *testing.T) (note.Signer, note.Verifier) {
	b, err := os.ReadFile("testdata/test.key")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := store.VerifierKey(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// issueAll issues every party's statement for period from the ledger so far.
func issueAll(t *testing.T, l *ledger, book *rules.Book, root string, period statement.Period, v note.Verifier, s note.Signer) map[string]*statement.Statement {
	t.Helper()
	src := &statement.Source{Entries: append([]store.Entry(nil), l.entries...), Book: book}
	out := map[string]*statement.Statement{}
	for _, pc := range statement.Parties(src, period) {
		chain, err := statement.Load(root, pc[0], v)
		if err != nil {
			t.Fatal(err)
		}
		var prior *statement.Statement
		if last := chain.LastIn(pc[1]); last != nil {
			prior = last.Statement
		}
		st, err := statement.Build(src, pc[0], pc[1], period, prior)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chain.Issue(st, s); err != nil {
			t.Fatal(err)
		}
		out[pc[0]] = st
	}
	return out
}

// TestGoldenStatements issues November, then settles late and December
// traffic and issues December, and compares every statement, as JSON and
// CSV, with testdata/golden (go test -update rewrites them). Besides the
// golden bytes it checks the figures that matter by name: the minimum-fee
// top-up and carry of the losing month, the late November bet as a December
// adjustment that also counts in December's fee basis, balances flowing
// from one closing to the next opening, and an intact signed chain.
func TestGoldenStatements(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "contract.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	signer, verifier := testKey(t)
	l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	ph := phases(t, "testdata/statements.jsonl")
	root := t.TempDir()
	nov, _ := statement.ParsePeriod("2026-11")
	dec, _ := statement.ParsePeriod("2026-12")
	for _, line := range ph[0] {
		l.apply(line)
	}
	n := issueAll(t, l, book, root, nov, verifier, signer)
	for _, line := range ph[1] {
		l.apply(line)
	}
	d := issueAll(t, l, book, root, dec, verifier, signer)

	if len(n) != 3 || len(d) != 3 {
		t.Fatalf("parties: november %d, december %d, want aff-7, operator, studio-a", len(n), len(d))
	}
	fee := func(s *statement.Statement) statement.Fee {
		if len(s.Fees) != 1 {
			t.Fatalf("%s %s has %d fees", s.Party, s.Period, len(s.Fees))
		}
		return s.Fees[0]
	}
	nf, df := fee(n["studio-a"]), fee(d["studio-a"])
	for _, c := range []struct{ name, got, want string }{
		{"november GGR", nf.GGR, "-15000.00"},
		{"november computed", nf.Computed, "0.00"},
		{"november top-up", nf.TopUp, "500.00"},
		{"november fee", nf.Fee, "500.00"},
		{"november carry out", nf.CarryOut, "-15000.00"},
		{"december GGR (late november bet included)", df.GGR, "34000.00"},
		{"december carried in", df.CarriedIn, "-15000.00"},
		{"december base", df.Base, "19000.00"},
		{"december fee", df.Fee, "2100.00"},
		{"studio-a december closing", d["studio-a"].Closing, "2600.00"},
		{"aff-7 november closing", n["aff-7"].Closing, "-3750.00"},
		{"aff-7 december opening", d["aff-7"].Opening, "-3750.00"},
		{"aff-7 december closing", d["aff-7"].Closing, "-4000.00"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	adj := d["aff-7"].Adjustments
	if len(adj) != 1 || adj[0].ID != "n-3" || adj[0].Period != "2026-11" || adj[0].Amount != "250.00" {
		t.Errorf("aff-7 december adjustments %+v, want n-3 of 2026-11, 250.00", adj)
	}
	for _, s := range n {
		if len(s.Adjustments) != 0 {
			t.Errorf("%s november has adjustments %+v", s.Party, s.Adjustments)
		}
	}

	for _, party := range []string{"aff-7", "operator", "studio-a"} {
		chain, err := statement.Load(root, party, verifier)
		if err != nil {
			t.Fatalf("load %s: %v", party, err)
		}
		if len(chain.Issued) != 2 || chain.Issued[1].Statement.Previous != chain.Issued[0].Hash || chain.Issued[0].Statement.Previous != "" {
			t.Fatalf("%s chain %+v not linked", party, chain.Issued)
		}
		for _, is := range chain.Issued {
			s := is.Statement
			name := filepath.Join("testdata", "golden", s.Party+"-"+s.Period+"-"+s.Currency)
			var js bytes.Buffer
			json.Indent(&js, s.Canonical(), "", "  ")
			js.WriteByte('\n')
			golden(t, name+".json", js.Bytes())
			golden(t, name+".csv", statement.CSV(s))
			golden(t, name+".note", is.Note)
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it after review):\n%s", path, got)
	}
}

// TestChainTamper: any change to an issued statement, or a missing one,
// breaks the chain on load.
func TestChainTamper(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "contract.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	signer, verifier := testKey(t)
	l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	for _, ph := range phases(t, "testdata/statements.jsonl") {
		for _, line := range ph {
			l.apply(line)
		}
	}
	nov, _ := statement.ParsePeriod("2026-11")
	dec, _ := statement.ParsePeriod("2026-12")
	tests := []struct {
		name string
		harm func(t *testing.T, files []string)
	}{
		{"amount changed", func(t *testing.T, files []string) {
			b, _ := os.ReadFile(files[0])
			os.WriteFile(files[0], bytes.Replace(b, []byte(`"closing":"`), []byte(`"closing":"1`), 1), 0o644)
		}},
		{"first removed", func(t *testing.T, files []string) { os.Remove(files[0]) }},
		{"swapped", func(t *testing.T, files []string) {
			a, _ := os.ReadFile(files[0])
			b, _ := os.ReadFile(files[1])
			os.WriteFile(files[0], b, 0o644)
			os.WriteFile(files[1], a, 0o644)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for _, p := range []statement.Period{nov, dec} {
				issueAll(t, l, book, root, p, verifier, signer)
			}
			files, _ := filepath.Glob(filepath.Join(root, "studio-a", "*.note"))
			if len(files) != 2 {
				t.Fatalf("files %v", files)
			}
			if _, err := statement.Load(root, "studio-a", verifier); err != nil {
				t.Fatalf("intact chain: %v", err)
			}
			tc.harm(t, files)
			if _, err := statement.Load(root, "studio-a", verifier); !errors.Is(err, statement.ErrChain) {
				t.Errorf("Load after %s = %v, want ErrChain", tc.name, err)
			}
		})
	}
}

// TestBuildOrder: statements follow each other period by period.
func TestBuildOrder(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "rules", "testdata", "contract.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{t: t, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
	for _, line := range phases(t, "testdata/statements.jsonl")[0] {
		l.apply(line)
	}
	src := &statement.Source{Entries: l.entries, Book: book}
	nov, _ := statement.ParsePeriod("2026-11")
	s, err := statement.Build(src, "studio-a", "EUR", nov, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"2026-11", "2027-01", "2026-W49"} {
		pp, _ := statement.ParsePeriod(p)
		if _, err := statement.Build(src, "studio-a", "EUR", pp, s); !errors.Is(err, statement.ErrOrder) {
			t.Errorf("Build(%s) after 2026-11 = %v, want ErrOrder", p, err)
		}
	}
}

// TestParsePeriod: the three period forms and their bounds.
func TestParsePeriod(t *testing.T) {
	tests := []struct{ in, kind, start, end string }{
		{"2026-11", "month", "2026-11-01", "2026-12-01"},
		{"2026-12", "month", "2026-12-01", "2027-01-01"},
		{"2026-11-05", "day", "2026-11-05", "2026-11-06"},
		{"2026-W45", "week", "2026-11-02", "2026-11-09"},
		{"2026-W01", "week", "2025-12-29", "2026-01-05"},
		{"2026-W53", "week", "2026-12-28", "2027-01-04"},
	}
	for _, tc := range tests {
		p, err := statement.ParsePeriod(tc.in)
		if err != nil {
			t.Errorf("ParsePeriod(%s): %v", tc.in, err)
			continue
		}
		if p.Kind != tc.kind || p.Start.Format("2006-01-02") != tc.start || p.End().Format("2006-01-02") != tc.end || p.String() != tc.in {
			t.Errorf("ParsePeriod(%s) = %s %s..%s %q, want %s %s..%s", tc.in, p.Kind, p.Start.Format("2006-01-02"), p.End().Format("2006-01-02"), p.String(), tc.kind, tc.start, tc.end)
		}
		if q := statement.PeriodOf(p.Kind, p.Start.Add(36*time.Hour-time.Nanosecond)); tc.kind != "day" && q != p {
			t.Errorf("PeriodOf(%s, inside) = %v", tc.in, q)
		}
	}
	for _, bad := range []string{"", "2026", "2026-13", "2026-11-31", "2025-W53", "2026-W0", "2026-W54", "26-11"} {
		if _, err := statement.ParsePeriod(bad); err == nil {
			t.Errorf("ParsePeriod(%q) accepted", bad)
		}
	}
}
