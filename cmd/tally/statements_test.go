package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// testLedger writes real ledger files (segments, tree, signed checkpoints)
// under <data>/ledger, with the key in <data>/keys/ledger.key and the rule
// sets in <data>/ledger/rules, as a settle node leaves them.
type testLedger struct {
	t    *testing.T
	data string
	led  *store.Ledger
	eng  settle.Engine
	st   *settle.MemState
	cnt  settle.Counters
	buf  []store.Entry
}

func newTestLedger(t *testing.T, data string, book *rules.Book) *testLedger {
	ledgerDir := filepath.Join(data, "ledger")
	signer, vkey, err := store.LoadOrCreateKey(filepath.Join(data, "keys", "ledger.key"), "tally.test/ledger")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.WriteVerifierKey(ledgerDir, vkey); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(ledgerDir, "rules"), 0o755)
	for _, v := range book.Versions() {
		h := v.Hash()
		if err := store.WriteFileAtomic(filepath.Join(ledgerDir, "rules", fmt.Sprintf("%x.json", h)), v.Canonical()); err != nil {
			t.Fatal(err)
		}
	}
	led, err := store.Open(store.Options{Dir: ledgerDir, Origin: "tally.test/ledger", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	return &testLedger{t: t, data: data, led: led, eng: settle.Engine{Book: book}, st: settle.NewMemState()}
}

func (l *testLedger) Entry(e store.Entry)          { l.buf = append(l.buf, e) }
func (l *testLedger) Exception(e settle.Exception) { l.t.Errorf("exception %+v", e) }

// settle applies lines (each with a "provider" key) and seals them as one
// segment of partition 0.
func (l *testLedger) settle(lines [][]byte) {
	l.t.Helper()
	for _, line := range lines {
		prov, payload, perr := splitProvider(line, "")
		if perr != "" {
			l.t.Fatal(perr)
		}
		tx, rej := txn.Decode(payload, txn.DefaultLimits())
		if rej != nil {
			l.t.Fatal(rej)
		}
		if err := l.eng.Apply(l.st, l, &l.cnt, settle.Input{Provider: prov, EdgeNode: "e", Payload: tx.Canonical(), Now: tx.OccurredAt}); err != nil {
			l.t.Fatal(err)
		}
	}
	if _, _, err := l.led.Seal(0, l.buf, time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		l.t.Fatal(err)
	}
	if _, err := l.led.Sign(0); err != nil {
		l.t.Fatal(err)
	}
	l.buf = nil
}

func statementPhases(t *testing.T) [][][]byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "settle", "statement", "testdata", "statements.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out := [][][]byte{nil}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		switch line := bytes.TrimSpace(sc.Bytes()); {
		case len(line) == 0:
		case line[0] == '#':
			out = append(out, nil)
		default:
			out[len(out)-1] = append(out[len(out)-1], append([]byte(nil), line...))
		}
	}
	return out
}

func statementsRun(t *testing.T, args ...string) []statementOut {
	t.Helper()
	out, err := runCLI(t, append([]string{"statements"}, args...)...)
	if err != nil {
		t.Fatalf("statements %v: %v\n%s", args, err, out)
	}
	var outs []statementOut
	if err := json.Unmarshal([]byte(out), &outs); err != nil {
		t.Fatalf("statements output: %v\n%s", err, out)
	}
	return outs
}

// TestStatementsCommand issues November from real ledger files, refuses to
// rewrite it, settles a late November bet and December, issues December,
// and checks the figures, the files and the chain; the fee contracts come
// from the rule sets recorded in the ledger directory.
func TestStatementsCommand(t *testing.T) {
	book, err := rules.ParseFile(filepath.Join("..", "..", "settle", "rules", "testdata", "contract.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	l := newTestLedger(t, data, book)
	ph := statementPhases(t)
	l.settle(ph[0])
	// Every period of the test has ended: the statements are final.
	statementsClock = func() time.Time { return time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { statementsClock = time.Now })

	dry := statementsRun(t, "--data", data, "--period", "2026-11", "--dry-run")
	if len(dry) != 3 || dry[0].Status != "dry_run" {
		t.Fatalf("dry run %+v", dry)
	}
	if _, err := os.Stat(filepath.Join(data, "statements")); !os.IsNotExist(err) {
		t.Fatalf("dry run wrote statements: %v", err)
	}
	nov := statementsRun(t, "--data", data, "--period", "2026-11")
	byParty := map[string]statementOut{}
	for _, o := range nov {
		if o.Status != "issued" || o.Path == "" {
			t.Errorf("november %s: %+v", o.Statement.Party, o)
		}
		byParty[o.Statement.Party] = o
		if o.Hash != dry[len(byParty)-1].Hash {
			t.Errorf("%s: issued hash %s, dry run %s", o.Statement.Party, o.Hash, dry[len(byParty)-1].Hash)
		}
	}
	if f := byParty["studio-a"].Statement.Fees; len(f) != 1 || f[0].Fee != "500.00" || f[0].TopUp != "500.00" {
		t.Errorf("studio-a november fees %+v", f)
	}
	again := statementsRun(t, "--data", data, "--period", "2026-11", "--party", "studio-a")
	if len(again) != 1 || again[0].Status != "exists" || again[0].Hash != byParty["studio-a"].Hash {
		t.Errorf("second run %+v, want the issued statement unchanged", again)
	}

	l.settle(ph[1]) // a late november bet and december
	dec := statementsRun(t, "--data", data, "--period", "2026-12")
	for _, o := range dec {
		s := o.Statement
		if s.Previous != byParty[s.Party].Hash || s.Opening != byParty[s.Party].Statement.Closing {
			t.Errorf("%s december previous %s opening %s, want %s and %s", s.Party, s.Previous, s.Opening, byParty[s.Party].Hash, byParty[s.Party].Statement.Closing)
		}
		switch s.Party {
		case "studio-a":
			if s.Fees[0].Fee != "2100.00" || s.Closing != "2600.00" {
				t.Errorf("studio-a december fee %s closing %s", s.Fees[0].Fee, s.Closing)
			}
		case "aff-7":
			if len(s.Adjustments) != 1 || s.Adjustments[0].ID != "n-3" || s.Closing != "-4000.00" {
				t.Errorf("aff-7 december adjustments %+v closing %s", s.Adjustments, s.Closing)
			}
		}
	}
	if out, err := runCLI(t, "statements", "--data", data, "--period", "2026-10"); err == nil {
		t.Errorf("statement for a period before the issued ones: %s", out)
	}
	out, err := runCLI(t, "statements", "--data", data, "--period", "2026-12", "--party", "aff-7", "--csv")
	if err != nil || !strings.HasPrefix(out, "party,currency,period,section") || !strings.Contains(out, "aff-7,EUR,2026-12,adjustment,bet,,1,1000.00,250.00,") || !strings.Contains(out, "aff-7,EUR,2026-12,closing,,,,,-4000.00,") {
		t.Errorf("csv: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(data, "statements", "*", "*"))
	if len(files) != 12 { // 3 parties × 2 periods × (note + csv)
		t.Errorf("statement files %v", files)
	}
	// Tampering with an issued statement makes the next run fail.
	note := filepath.Join(data, "statements", "studio-a", "000001-2026-11-EUR.note")
	b, _ := os.ReadFile(note)
	os.WriteFile(note, bytes.Replace(b, []byte(`"fee":"500.00"`), []byte(`"fee":"50.00"`), 1), 0o644)
	if out, err := runCLI(t, "statements", "--data", data, "--period", "2027-01", "--party", "studio-a"); err == nil || !strings.Contains(err.Error(), "statement chain broken") {
		t.Errorf("run over a tampered statement: %v\n%s", err, out)
	}
}
