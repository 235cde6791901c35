package console

import (
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/store"
	"github.com/tally-mesh/tally/txn"
)

// The revenue index: GGR per provider and game, and each party's shares,
// in quarter-hour buckets of the transactions' occurred_at. Quarter hours
// make every real time zone's hours exact (all offsets are multiples of 15
// minutes), so a partner's "today by hour" is in its contract's zone. It is
// built by reading the whole ledger once from the start, then follows it like
// the live feed; it keeps revenueDays days of buckets (older ones are
// dropped, and their periods answered as not covered).
const (
	quarter     = 15 * 60 // seconds in a bucket
	revenueDays = 92      // days of buckets kept: this month and the two before
	revPerRead  = 5000    // entries per partition per read
	revReads    = 20      // reads per partition per poll while catching up
)

type ggrKey struct {
	q                        int64 // unix seconds / quarter
	provider, game, currency string
}

type partyKey struct {
	q               int64
	party, currency string
}

// revenue is the index; all of it in memory, bounded by revenueDays and the
// number of (provider, game) and party keys.
type revenue struct {
	led  Ledger
	node Node
	log  hclog.Logger
	now  func() time.Time

	mu      sync.Mutex
	next    map[uint32]uint64
	ggr     map[ggrKey]*statement.Gaming
	party   map[partyKey]*agg
	caught  bool // every partition read up to its head at least once
	entries uint64

	stop chan struct{}
	done chan struct{}
}

func newRevenue(led Ledger, node Node, every time.Duration, now func() time.Time, log hclog.Logger) *revenue {
	r := &revenue{led: led, node: node, log: log, now: now, next: map[uint32]uint64{},
		ggr: map[ggrKey]*statement.Gaming{}, party: map[partyKey]*agg{}, stop: make(chan struct{}), done: make(chan struct{})}
	go r.run(every)
	return r
}

func (r *revenue) run(every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r.poll()
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}

func (r *revenue) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

// poll reads what the ledger committed since the last poll, at most
// revReads×revPerRead entries per partition.
func (r *revenue) poll() {
	floor := r.now().Add(-revenueDays*24*time.Hour).Unix() / quarter
	caught := true
	for _, p := range r.led.Partitions() {
		size := r.led.Head(p).Size
		for i := 0; i < revReads; i++ {
			select {
			case <-r.stop:
				return
			default:
			}
			r.mu.Lock()
			start := r.next[p]
			r.mu.Unlock()
			if start >= size {
				break
			}
			es, err := r.led.Entries(p, start, size, revPerRead)
			if err != nil {
				r.log.Warn("revenue index: read entries", "partition", p, "error", err)
				break
			}
			if len(es) == 0 {
				break
			}
			for _, ie := range es {
				r.add(ie.Entry, floor)
			}
			r.mu.Lock()
			r.next[p] = start + uint64(len(es))
			r.mu.Unlock()
		}
		r.mu.Lock()
		if r.next[p] < size {
			caught = false
		}
		r.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if caught {
		r.caught = true
	}
	for k := range r.ggr {
		if k.q < floor {
			delete(r.ggr, k)
		}
	}
	for k := range r.party {
		if k.q < floor {
			delete(r.party, k)
		}
	}
}

// root finds the transaction a reversal counts as (its parent's root, as
// statement.Roots does), reading the parent through the node's index.
func (r *revenue) root(e store.Entry) txn.Tx {
	tx := e.Tx
	for i := 0; i < 4 && tx.Type.Reversal() && tx.Parent != ""; i++ {
		p, idx, held, found, err := r.node.Lookup(e.Provider, tx.Parent)
		if err != nil || !found || held {
			break
		}
		pe, _, err := r.led.Entry(p, idx)
		if err != nil {
			break
		}
		tx = pe.Tx
	}
	return tx
}

func (r *revenue) add(e store.Entry, floor int64) {
	q := e.Tx.OccurredAt.Unix() / quarter
	if e.Tx.OccurredAt.Unix() < 0 {
		q = (e.Tx.OccurredAt.Unix() - quarter + 1) / quarter
	}
	if q < floor {
		r.mu.Lock()
		r.entries++
		r.mu.Unlock()
		return
	}
	base := e.Tx
	if e.Tx.Type.Reversal() {
		base = r.root(e)
	}
	game := e.Tx.Game
	if game == "" {
		game = base.Game
	}
	cur := e.Tx.Currency.Code
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries++
	// Operator entries (corrections, FX rates) are no provider's gaming: they
	// make no GGR row; a correction's shares still count for its parties.
	if !e.Tx.Type.Operator() {
		k := ggrKey{q, e.Provider, game, cur}
		g := r.ggr[k]
		if g == nil {
			g = &statement.Gaming{}
			r.ggr[k] = g
		}
		g.Add(base.Type, e)
	}
	for _, s := range e.Shares {
		pk := partyKey{q, s.Party, cur}
		a := r.party[pk]
		if a == nil {
			a = &agg{}
			r.party[pk] = a
		}
		a.count++
		a.amount = a.amount.Add(s.Amount)
	}
}

// covers reports whether [from, to) lies within the kept buckets and the
// index has read the whole ledger once.
func (r *revenue) covers(from time.Time) (complete bool, since time.Time) {
	since = time.Unix(r.now().Add(-revenueDays*24*time.Hour).Unix()/quarter*quarter+quarter, 0).UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.caught && !from.Before(since), since
}

// GGRRow is the gaming figures of one provider and game (or, in ByProvider,
// of one provider: Game "") in one currency over a period.
type GGRRow struct {
	Provider  string `json:"provider"`
	Game      string `json:"game,omitempty"`
	Currency  string `json:"currency"`
	Stakes    string `json:"stakes"`
	Wins      string `json:"wins"`
	GGR       string `json:"ggr"`
	NGR       string `json:"ngr"`
	Bets      int    `json:"bets"`
	WinCount  int    `json:"win_count"`
	Reversals int    `json:"reversals"`
}

// HourValue is one hour of a series.
type HourValue struct {
	Hour     string `json:"hour"` // RFC 3339, in the series' time zone
	Currency string `json:"currency"`
	Count    int    `json:"count"`
	Amount   string `json:"amount"`
	value    decimal.Decimal
}

func merge(dst *statement.Gaming, g *statement.Gaming) {
	dst.Stakes = dst.Stakes.Add(g.Stakes)
	dst.Wins = dst.Wins.Add(g.Wins)
	dst.GGR = dst.GGR.Add(g.GGR)
	dst.NGR = dst.NGR.Add(g.NGR)
	dst.Bets += g.Bets
	dst.WinCount += g.WinCount
	dst.Reversals += g.Reversals
}

func ggrRow(provider, game, cur string, g *statement.Gaming) GGRRow {
	f := func(d decimal.Decimal) string { return formatAmount(cur, d) }
	return GGRRow{Provider: provider, Game: game, Currency: cur, Stakes: f(g.Stakes), Wins: f(g.Wins), GGR: f(g.GGR), NGR: f(g.NGR),
		Bets: g.Bets, WinCount: g.WinCount, Reversals: g.Reversals}
}

// ggrOver sums the buckets in [from, to) of provider ("" = all): per
// (provider, game, currency), per (provider, currency), and the GGR per hour
// (UTC) and currency.
func (r *revenue) ggrOver(from, to time.Time, provider string) (games, providers []GGRRow, hours []HourValue) {
	lo, hi := from.Unix()/quarter, to.Unix()/quarter
	type pk struct{ provider, currency string }
	type hk struct {
		hour     int64
		currency string
	}
	byGame := map[ggrKey]*statement.Gaming{}
	byProv := map[pk]*statement.Gaming{}
	byHour := map[hk]*agg{}
	r.mu.Lock()
	for k, g := range r.ggr {
		if k.q < lo || k.q >= hi || (provider != "" && k.provider != provider) {
			continue
		}
		gk := ggrKey{0, k.provider, k.game, k.currency}
		if byGame[gk] == nil {
			byGame[gk] = &statement.Gaming{}
		}
		merge(byGame[gk], g)
		p := pk{k.provider, k.currency}
		if byProv[p] == nil {
			byProv[p] = &statement.Gaming{}
		}
		merge(byProv[p], g)
		h := hk{k.q * quarter / 3600, k.currency}
		if byHour[h] == nil {
			byHour[h] = &agg{}
		}
		byHour[h].count += g.Bets + g.WinCount + g.Reversals
		byHour[h].amount = byHour[h].amount.Add(g.GGR)
	}
	r.mu.Unlock()
	games, providers, hours = []GGRRow{}, []GGRRow{}, []HourValue{}
	for k, g := range byGame {
		games = append(games, ggrRow(k.provider, k.game, k.currency, g))
	}
	for k, g := range byProv {
		providers = append(providers, ggrRow(k.provider, "", k.currency, g))
	}
	for k, a := range byHour {
		hours = append(hours, HourValue{Hour: time.Unix(k.hour*3600, 0).UTC().Format(time.RFC3339), Currency: k.currency,
			Count: a.count, Amount: formatAmount(k.currency, a.amount), value: a.amount})
	}
	sortRows(games)
	sortRows(providers)
	sortHours(hours)
	return games, providers, hours
}

func sortRows(rs []GGRRow) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.Game != b.Game {
			return a.Game < b.Game
		}
		return a.Currency < b.Currency
	})
}

func sortHours(hs []HourValue) {
	sort.Slice(hs, func(i, j int) bool {
		if hs[i].Hour != hs[j].Hour {
			return hs[i].Hour < hs[j].Hour
		}
		return hs[i].Currency < hs[j].Currency
	})
}

// partyHours sums party's shares in [from, to) per hour of loc and
// currency: every hour of the period is listed for each currency the party
// has (zero when nothing settled), so a chart shows the day's shape.
func (r *revenue) partyHours(party string, from, to time.Time, loc *time.Location) []HourValue {
	lo, hi := from.Unix()/quarter, to.Unix()/quarter
	type hk struct {
		hour     time.Time
		currency string
	}
	sums := map[hk]*agg{}
	curs := map[string]bool{}
	r.mu.Lock()
	for k, a := range r.party {
		if k.party != party || k.q < lo || k.q >= hi {
			continue
		}
		t := time.Unix(k.q*quarter, 0).In(loc)
		h := hk{time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc), k.currency}
		if sums[h] == nil {
			sums[h] = &agg{}
		}
		sums[h].count += a.count
		sums[h].amount = sums[h].amount.Add(a.amount)
		curs[k.currency] = true
	}
	r.mu.Unlock()
	out := []HourValue{}
	for cur := range curs {
		// Hours of the period in loc; a day with a DST change has 23 or 25.
		for t, n := from.In(loc), 0; t.Before(to) && n < 24*40; t, n = t.Add(time.Hour), n+1 {
			h := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
			a := sums[hk{h, cur}]
			if a == nil {
				a = &agg{}
			}
			out = append(out, HourValue{Hour: h.Format(time.RFC3339), Currency: cur, Count: a.count, Amount: formatAmount(cur, a.amount), value: a.amount})
		}
	}
	sortHours(out)
	return out
}
