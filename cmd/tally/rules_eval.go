package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/settle/fx"
	"github.com/tally-mesh/tally/settle/rules"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// maxEvalLine bounds one input line of rules eval.
const maxEvalLine = 1 << 20

// evalReport is what `tally rules eval` prints.
type evalReport struct {
	Rules        []evalVersion          `json:"rules"`
	Transactions []evalOutcome          `json:"transactions"`
	Counts       evalCounts             `json:"counts"`
	Exceptions   []settle.Exception     `json:"exceptions"`
	Totals       []settle.Balance       `json:"totals"`
	Gaming       []evalGaming           `json:"gaming"`
	Statements   []*statement.Statement `json:"statements"`
	Rates        []fxRateOut            `json:"rates,omitempty"` // --rates: the exchange rates statements convert with
}

type evalVersion struct {
	Name      string `json:"name"`
	Effective string `json:"effective"`
	Hash      string `json:"hash"`
	Fees      int    `json:"fees"`
}

// evalOutcome is one decision: every input line gets at least one; a held
// reversal gets a second, "applied", when its parent arrives.
type evalOutcome struct {
	Line       int         `json:"line"`
	Provider   string      `json:"provider,omitempty"`
	ID         string      `json:"id,omitempty"`
	Type       string      `json:"type,omitempty"`
	Outcome    string      `json:"outcome"` // applied, duplicate, conflict, held, rejected, exception
	Code       string      `json:"code,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Parent     string      `json:"parent,omitempty"`
	ReleasedBy int         `json:"released_by,omitempty"` // the line whose parent released this held reversal
	Ruleset    string      `json:"ruleset,omitempty"`
	Rule       string      `json:"rule,omitempty"`
	Net        string      `json:"net,omitempty"`
	Shares     []evalShare `json:"shares,omitempty"`
}

type evalShare struct {
	Party  string `json:"party"`
	Amount string `json:"amount"` // with the currency's decimals
}

type evalCounts struct {
	Lines            int    `json:"lines"`
	Rejected         int    `json:"rejected"`   // refused at the door (ingest validation)
	Applied          uint64 `json:"applied"`    // ledger entries
	Duplicates       uint64 `json:"duplicates"` // same (provider, id), same payload
	Conflicts        uint64 `json:"conflicts"`  // same (provider, id), different payload
	RollbacksApplied int    `json:"rollbacks_applied"`
	OrphansReleased  uint64 `json:"orphans_released"` // reversals held for their parent, applied when it came
	OpenOrphans      int    `json:"open_orphans"`     // reversals still waiting for their parent
	Exceptions       uint64 `json:"exceptions"`
}

type evalGaming struct {
	Provider  string `json:"provider"` // "" = every provider
	Currency  string `json:"currency"`
	Stakes    string `json:"stakes"`
	Wins      string `json:"wins"`
	GGR       string `json:"ggr"`
	Bets      int    `json:"bets"`
	WinCount  int    `json:"win_count"`
	Reversals int    `json:"reversals"`
}

// evalSink collects what the engine decides for the report.
type evalSink struct {
	entries    []store.Entry
	exceptions []settle.Exception
	size       map[uint32]uint64
}

func (s *evalSink) Entry(e store.Entry) {
	if s.size == nil {
		s.size = map[uint32]uint64{}
	}
	e.Index = s.size[e.Partition] // the leaf index sealing would give it
	s.size[e.Partition]++
	s.entries = append(s.entries, e)
}

func (s *evalSink) Exception(e settle.Exception) { s.exceptions = append(s.exceptions, e) }

// cmdRulesEval is `tally rules eval --rules FILE --input TX.jsonl`.
func cmdRulesEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rules eval", stdout, stderr)
	rulesFile := fs.String("rules", "", "the rule file to test")
	input := fs.String("input", "", `transactions, one canonical JSON object a line; a "provider" key names the provider`)
	provider := fs.String("provider", "", "provider of lines without a provider key")
	period := fs.String("period", "", "statement period: 2026-11, 2026-W45 or 2026-11-05 (default: every month of the input)")
	orphanTimeout := fs.Duration("orphan-timeout", 24*time.Hour, "a reversal held longer than this (in event time) becomes an exception, like settle.orphan_timeout")
	ratesFile := fs.String("rates", "", "exchange rates, one fx_rate entry (the ledger's payload shape) a line, for contracts with a settlement currency")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rulesFile == "" || *input == "" {
		return usageError{"usage: tally rules eval --rules FILE --input TX.jsonl [--provider P] [--period P] [--rates RATES.jsonl]"}
	}
	book, err := rules.ParseFile(*rulesFile)
	if err != nil {
		return err
	}
	var periods []statement.Period
	if *period != "" {
		p, err := statement.ParsePeriod(*period)
		if err != nil {
			return usageError{err.Error()}
		}
		periods = []statement.Period{p}
	}
	var rates []store.Entry
	if *ratesFile != "" {
		if rates, err = readRates(*ratesFile); err != nil {
			return err
		}
	}
	f, err := os.Open(*input)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := evaluate(book, f, *provider, periods, *orphanTimeout, rates...)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// evaluate runs every line through the door's validation (txn.Decode with
// the default ingest limits, as an edge does) and then through
// settle.Engine over a settle.MemState: the settle node's own code path,
// with the transaction's occurred_at as the clock.
//
// rates are fx_rate entries (readRates): the rate table statements of a
// party with a settlement currency convert with. Without them such a
// statement is refused (fx.ErrNoRate), as on a node whose ledger has none.
func evaluate(book *rules.Book, in io.Reader, defProvider string, periods []statement.Period, orphanTimeout time.Duration, rates ...store.Entry) (*evalReport, error) {
	rep := &evalReport{Transactions: []evalOutcome{}, Exceptions: []settle.Exception{}, Totals: []settle.Balance{}, Gaming: []evalGaming{}, Statements: []*statement.Statement{}}
	names := map[[32]byte]string{}
	for _, v := range book.Versions() {
		h := v.Hash()
		names[h] = v.Name
		rep.Rules = append(rep.Rules, evalVersion{v.Name, v.Effective.Format(time.RFC3339), hex.EncodeToString(h[:]), len(v.Fees())})
	}
	eng := settle.Engine{Book: book, Partition: 0} // a provider's records all settle in one partition
	st := settle.NewMemState()
	sink := &evalSink{}
	var cnt settle.Counters
	lineOf := map[[2]string]int{} // (provider, id) → line of the held reversal
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxEvalLine)
	n := 0
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		rep.Counts.Lines++
		prov, payload, perr := splitProvider(raw, defProvider)
		if perr != "" {
			rep.Transactions = append(rep.Transactions, evalOutcome{Line: n, Outcome: "rejected", Code: string(txn.CodeMalformed), Reason: perr})
			rep.Counts.Rejected++
			continue
		}
		tx, rej := txn.Decode(payload, txn.DefaultLimits())
		if rej != nil {
			rep.Transactions = append(rep.Transactions, evalOutcome{Line: n, Provider: prov, Outcome: "rejected", Code: string(rej.Code), Reason: rej.Reason})
			rep.Counts.Rejected++
			continue
		}
		if orphanTimeout > 0 {
			ne := len(sink.exceptions)
			if err := eng.Expire(st, sink, &cnt, tx.OccurredAt, orphanTimeout); err != nil {
				return nil, err
			}
			for _, x := range sink.exceptions[ne:] {
				rep.Transactions = append(rep.Transactions, evalOutcome{Line: lineOf[[2]string{x.Provider, x.ID}], Provider: x.Provider, ID: x.ID, Outcome: "exception", Code: x.Kind, Reason: x.Reason})
			}
		}
		before, ne, nx := cnt, len(sink.entries), len(sink.exceptions)
		err := eng.Apply(st, sink, &cnt, settle.Input{Provider: prov, EdgeNode: "eval", EdgeSeq: uint64(n), Payload: tx.Canonical(), Now: tx.OccurredAt})
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		base := evalOutcome{Line: n, Provider: prov, ID: tx.ID, Type: string(tx.Type), Parent: tx.Parent}
		switch {
		case cnt.Duplicates > before.Duplicates:
			base.Outcome = "duplicate"
			rep.Transactions = append(rep.Transactions, base)
		case cnt.OrphansHeld > before.OrphansHeld:
			base.Outcome = "held"
			lineOf[[2]string{prov, tx.ID}] = n
			rep.Transactions = append(rep.Transactions, base)
		}
		for _, x := range sink.exceptions[nx:] {
			o := base
			o.Outcome, o.Code, o.Reason = "exception", x.Kind, x.Reason
			if x.Kind == settle.ExcConflict {
				o.Outcome = "conflict"
			}
			if x.ID != "" && x.ID != tx.ID {
				o.ID, o.Line = x.ID, lineOf[[2]string{prov, x.ID}]
			}
			rep.Transactions = append(rep.Transactions, o)
		}
		for _, e := range sink.entries[ne:] {
			o := evalOutcome{Line: n, Provider: e.Provider, ID: e.Tx.ID, Type: string(e.Tx.Type), Parent: e.Tx.Parent, Outcome: "applied",
				Ruleset: names[e.RuleSet], Rule: e.Rule, Net: e.Tx.Currency.Format(e.Net), Shares: formatShares(e)}
			if e.Tx.ID != tx.ID {
				o.Line, o.ReleasedBy = lineOf[[2]string{e.Provider, e.Tx.ID}], n
			}
			rep.Transactions = append(rep.Transactions, o)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read input line %d: %w", n+1, err)
	}
	rep.Exceptions = append(rep.Exceptions, sink.exceptions...)
	rep.Counts.Applied, rep.Counts.Duplicates, rep.Counts.Conflicts = cnt.Entries, cnt.Duplicates, cnt.Conflicts
	rep.Counts.OrphansReleased, rep.Counts.Exceptions, rep.Counts.OpenOrphans = cnt.OrphansReleased, cnt.Exceptions, st.OpenOrphans()

	totals := map[[2]string]decimal.Decimal{}
	gaming := map[[2]string]*statement.Gaming{}
	base := statement.BaseTypes(sink.entries)
	for i, e := range sink.entries {
		if e.Tx.Type.Reversal() {
			rep.Counts.RollbacksApplied++
		}
		for _, s := range e.Shares {
			k := [2]string{s.Party, e.Tx.Currency.Code}
			totals[k] = totals[k].Add(s.Amount)
		}
		for _, k := range [][2]string{{"", e.Tx.Currency.Code}, {e.Provider, e.Tx.Currency.Code}} {
			if gaming[k] == nil {
				gaming[k] = &statement.Gaming{}
			}
			gaming[k].Add(base[i], e)
		}
	}
	for k, v := range totals {
		rep.Totals = append(rep.Totals, settle.Balance{Party: k[0], Currency: k[1], Amount: v})
	}
	sort.Slice(rep.Totals, func(i, j int) bool {
		a, b := rep.Totals[i], rep.Totals[j]
		return a.Party < b.Party || (a.Party == b.Party && a.Currency < b.Currency)
	})
	for k, g := range gaming {
		c, _ := money.Lookup(k[1])
		rep.Gaming = append(rep.Gaming, evalGaming{k[0], k[1], c.Format(g.Stakes), c.Format(g.Wins), c.Format(g.GGR), g.Bets, g.WinCount, g.Reversals})
	}
	sort.Slice(rep.Gaming, func(i, j int) bool {
		a, b := rep.Gaming[i], rep.Gaming[j]
		return a.Currency < b.Currency || (a.Currency == b.Currency && a.Provider < b.Provider)
	})

	// Statements: of the period asked, or of every month the input touches,
	// each following the one before (carries and balances flow on).
	if periods == nil {
		seen := map[string]bool{}
		for _, e := range sink.entries {
			p := statement.PeriodOf(rules.PeriodMonth, e.Tx.OccurredAt)
			if !seen[p.String()] {
				seen[p.String()] = true
				periods = append(periods, p)
			}
		}
		sort.Slice(periods, func(i, j int) bool { return periods[i].Start.Before(periods[j].Start) })
		if len(periods) > 0 { // fill gaps: statements are contiguous
			all := []statement.Period{periods[0]}
			for p := periods[0].Next(); !p.Start.After(periods[len(periods)-1].Start); p = p.Next() {
				all = append(all, p)
			}
			periods = all
		}
	}
	tb, err := fx.NewTable(rates)
	if err != nil {
		return nil, err
	}
	for _, r := range tb.Rates() {
		rep.Rates = append(rep.Rates, fxRateOut{r.Pair(), r.Rate.String(), r.AsOf, r.Source, r.PostedBy, r.ID, r.Partition, r.Index})
	}
	src := &statement.Source{Entries: sink.entries, Book: book, Rates: tb}
	prior := map[[2]string]*statement.Statement{}
	for _, p := range periods {
		for _, pc := range statement.Parties(src, p) {
			s, err := statement.Build(src, pc[0], pc[1], p, prior[pc])
			if err != nil {
				return nil, err
			}
			prior[pc] = s
			rep.Statements = append(rep.Statements, s)
		}
	}
	return rep, nil
}

// readRates reads a rates file for rules eval: one fx_rate payload a line
// (fx.ParseLine), blank lines and lines starting with # skipped. A line
// that is not a well-formed rate is an error naming it: never skipped.
func readRates(name string) ([]store.Entry, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []store.Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxEvalLine)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		e, err := fx.ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		e.Index = uint64(len(out)) // file order is ledger order: a later line wins a tie
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// splitProvider takes an optional "provider" key out of a line. The
// provider never comes from the payload in production (it comes from the
// credentials); eval lets a test file name it per line.
func splitProvider(raw []byte, def string) (string, []byte, string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", nil, "not a JSON object: " + err.Error()
	}
	p, ok := m["provider"]
	if !ok {
		if def == "" {
			return "", nil, `no provider: add "provider" to the line or pass --provider`
		}
		return def, raw, ""
	}
	var s string
	if err := json.Unmarshal(p, &s); err != nil || s == "" {
		return "", nil, "provider must be a non-empty string"
	}
	delete(m, "provider")
	b, err := json.Marshal(m)
	if err != nil {
		return "", nil, err.Error()
	}
	return s, b, ""
}

func formatShares(e store.Entry) []evalShare {
	out := make([]evalShare, len(e.Shares))
	for i, s := range e.Shares {
		out[i] = evalShare{s.Party, e.Tx.Currency.Format(s.Amount)}
	}
	return out
}
