package console

import (
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/store"
)

// Limits of the live feed.
const (
	feedKeep      = 1000            // recent entries kept for /v1/activity and the live feed
	feedBackfill  = 100             // entries per partition shown from before the console started
	feedPerPoll   = 5000            // entries read per partition per poll
	feedBehindMax = 4 * feedPerPoll // further behind than this, the feed skips ahead
	totalsSeconds = 120             // per-second totals kept
	maxStreams    = 64              // live feeds open at once
)

// FeedEntry is one settled entry in the activity feed.
type FeedEntry struct {
	Seq       uint64  `json:"seq"` // position in the console's feed (not the ledger)
	Partition uint32  `json:"partition"`
	Index     uint64  `json:"index"`
	Provider  string  `json:"provider"`
	ID        string  `json:"id"`
	Type      string  `json:"type"`
	Amount    string  `json:"amount"`
	Currency  string  `json:"currency"`
	Game      string  `json:"game,omitempty"`
	SettledAt string  `json:"settled_at"`
	Shares    []Share `json:"shares"`
}

// Share is a party's share of a feed entry.
type Share struct {
	Party  string `json:"party"`
	Amount string `json:"amount"`
}

// Total is one second's settled activity of a party (or, with Party "", a
// provider's volume) in one currency.
type Total struct {
	Second   int64  `json:"second"` // unix seconds of settled_at
	Provider string `json:"provider"`
	Party    string `json:"party,omitempty"`
	Currency string `json:"currency"`
	Count    int    `json:"count"`
	Amount   string `json:"amount"` // the party's shares, or the provider's signed volume
}

type totalKey struct {
	sec                       int64
	provider, party, currency string
}

type agg struct {
	count  int
	amount decimal.Decimal
}

// feed polls the live ledger for new entries: the console's view of
// recent activity. It reads only committed entries through the ledger's
// snapshot reads.
type feed struct {
	led Ledger
	log hclog.Logger

	mu     sync.Mutex
	next   map[uint32]uint64 // partition → next ledger index to read
	seq    uint64
	recent []FeedEntry // ring, oldest first, at most feedKeep
	totals map[totalKey]*agg
	newest int64
	wake   chan struct{} // closed and replaced on every poll that found entries

	stop chan struct{}
	done chan struct{}
}

func newFeed(led Ledger, every time.Duration, log hclog.Logger) *feed {
	f := &feed{led: led, log: log, next: map[uint32]uint64{}, totals: map[totalKey]*agg{},
		wake: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	f.poll()
	go f.run(every)
	return f
}

func (f *feed) run(every time.Duration) {
	defer close(f.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.poll()
		}
	}
}

func (f *feed) close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// poll reads what the ledger committed since the last poll.
func (f *feed) poll() {
	var got []store.IndexedEntry
	parts := f.led.Partitions()
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		size := f.led.Head(p).Size
		f.mu.Lock()
		start, seen := f.next[p]
		f.mu.Unlock()
		if !seen && size > feedBackfill {
			start = size - feedBackfill
		}
		if size-min(start, size) > feedBehindMax {
			// Far behind (a burst, or a long pause of the poller): show what
			// settles now rather than replaying history; totals undercount
			// the skipped entries, balances (from the index) do not.
			f.log.Warn("live feed skipped entries it could not keep up with", "partition", p, "skipped", size-feedPerPoll-start)
			start = size - feedPerPoll
		}
		if start >= size {
			f.mu.Lock()
			f.next[p] = start
			f.mu.Unlock()
			continue
		}
		es, err := f.led.Entries(p, start, size, feedPerPoll)
		if err != nil {
			f.log.Warn("read new entries", "partition", p, "error", err)
			continue
		}
		got = append(got, es...)
		f.mu.Lock()
		f.next[p] = start + uint64(len(es))
		f.mu.Unlock()
	}
	if len(got) == 0 {
		return
	}
	sort.SliceStable(got, func(i, j int) bool { return got[i].SettledAt.Before(got[j].SettledAt) })
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ie := range got {
		e := ie.Entry
		c := e.Tx.Currency
		f.seq++
		fe := FeedEntry{Seq: f.seq, Partition: e.Partition, Index: e.Index, Provider: e.Provider, ID: e.Tx.ID,
			Type: string(e.Tx.Type), Amount: c.Format(e.Tx.Amount), Currency: c.Code, Game: e.Tx.Game,
			SettledAt: e.SettledAt.UTC().Format(time.RFC3339Nano), Shares: make([]Share, 0, len(e.Shares))}
		sec := e.SettledAt.Unix()
		f.newest = max(f.newest, sec)
		f.add(totalKey{sec, e.Provider, "", c.Code}, e.Net)
		for _, s := range e.Shares {
			fe.Shares = append(fe.Shares, Share{Party: s.Party, Amount: c.Format(s.Amount)})
			f.add(totalKey{sec, e.Provider, s.Party, c.Code}, s.Amount)
		}
		f.recent = append(f.recent, fe)
	}
	if n := len(f.recent) - feedKeep; n > 0 {
		f.recent = append([]FeedEntry(nil), f.recent[n:]...)
	}
	for k := range f.totals {
		if k.sec <= f.newest-totalsSeconds {
			delete(f.totals, k)
		}
	}
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *feed) add(k totalKey, amount decimal.Decimal) {
	a := f.totals[k]
	if a == nil {
		a = &agg{}
		f.totals[k] = a
	}
	a.count++
	a.amount = a.amount.Add(amount)
}

// since returns the feed entries after seq that id may see, each narrowed
// to the shares id may see, at most limit (the newest), and the feed's
// latest seq.
func (f *feed) since(seq uint64, id Identity, limit int) ([]FeedEntry, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []FeedEntry{}
	for i := len(f.recent) - 1; i >= 0 && len(out) < limit; i-- {
		e := f.recent[i]
		if e.Seq <= seq {
			break
		}
		if v, ok := scopeEntry(e, id); ok {
			out = append(out, v)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, f.seq
}

// scopeEntry narrows a feed entry to id's parties: a partner sees an entry
// only if one of its parties has a share, and only its own shares.
func scopeEntry(e FeedEntry, id Identity) (FeedEntry, bool) {
	if !id.Partner() {
		return e, true
	}
	var mine []Share
	for _, s := range e.Shares {
		if id.Sees(s.Party) {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		return FeedEntry{}, false
	}
	e.Shares = mine
	return e, true
}

// totalsFor returns the per-second totals id may see, oldest first: for
// operators every provider's volume and every party's shares; for a partner
// only its parties' shares.
func (f *feed) totalsFor(id Identity, party string) []Total {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Total{}
	for k, a := range f.totals {
		if k.party == "" && (id.Partner() || party != "") {
			continue
		}
		if k.party != "" && (!id.Sees(k.party) || (party != "" && k.party != party)) {
			continue
		}
		amt := a.amount.String()
		if c, ok := money.Lookup(k.currency); ok {
			amt = c.Format(a.amount)
		}
		out = append(out, Total{Second: k.sec, Provider: k.provider, Party: k.party, Currency: k.currency, Count: a.count, Amount: amt})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Second != b.Second {
			return a.Second < b.Second
		}
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if a.Party != b.Party {
			return a.Party < b.Party
		}
		return a.Currency < b.Currency
	})
	return out
}

// changed returns a channel closed at the next poll that finds entries.
func (f *feed) changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wake
}
