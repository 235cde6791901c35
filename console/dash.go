package console

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/mod/sumdb/note"

	"github.com/tally-mesh/tally/alerts"
	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/ops/sla"
	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/settle/statement"
	"github.com/tally-mesh/tally/txn"
)

// DashOptions configure the dashboard's figures (GGR, revenue by hour,
// alerts, SLA) and the reconciliation upload. Every field is optional.
type DashOptions struct {
	// TimeZone is the zone a party's contract names (UTC when none): its
	// revenue by hour and "today" are in it.
	TimeZone func(party string) *time.Location
	// SLA computes the SLA figures of [from, to) (the TALLY_SLA windows).
	SLA func(ctx context.Context, from, to time.Time) ([]sla.Figures, error)
	// Reconciliations: where results are kept (recon's store), the key
	// that signs them (the ledger's), the largest report accepted, and the
	// limits reports are decoded with. Without a signer uploads are refused.
	ReconDir  string
	Signer    note.Signer
	MaxUpload int64
	Limits    txn.Limits
	// Replay asks the edges serving provider to republish ids (the
	// missing ids of a reconciliation; recon.AskReplay on the node's NATS
	// connection). nil: the console cannot reach the edges and says so.
	Replay func(ctx context.Context, provider string, ids []string) ([]recon.ReplayOutcome, error)
}

// dash is the console's dashboard state.
type dash struct {
	rev     *revenue
	alerts  atomic.Pointer[func() []alerts.Alert]
	reconMu sync.Mutex // one reconciliation kept at a time
}

func newDash(c *Console) *dash {
	if c.o.Dash.MaxUpload <= 0 {
		c.o.Dash.MaxUpload = 32 << 20
	}
	if c.o.Dash.Limits == (txn.Limits{}) {
		c.o.Dash.Limits = txn.DefaultLimits()
	}
	return &dash{rev: newRevenue(c.o.Ledger, c.o.Node, c.o.FeedInterval, c.now, c.log.Named("revenue"))}
}

// SetAlerts gives the console the node's firing alerts (the alert manager
// starts after the console).
func (c *Console) SetAlerts(f func() []alerts.Alert) { c.dash.alerts.Store(&f) }

func dashRoutes() []route {
	return []route{
		{"GET", "/v1/ggr", false, (*Console).ggrAPI},
		{"GET", "/v1/revenue", false, (*Console).revenueAPI},
		{"GET", "/v1/alerts", false, (*Console).alertsAPI},
		{"GET", "/v1/sla", false, (*Console).slaAPI},
		{"GET", "/v1/reconciliations", false, (*Console).reconListAPI},
		{"POST", "/v1/reconciliations", false, (*Console).reconUploadAPI},
		{"GET", "/v1/reconciliations/{provider}/{seq}/{format}", false, (*Console).reconFileAPI},
		{"POST", "/v1/reconciliations/{provider}/{seq}/replay", false, (*Console).reconReplayAPI},
	}
}

func formatAmount(cur string, d decimal.Decimal) string {
	if c, ok := money.Lookup(cur); ok {
		return c.Format(d)
	}
	return d.String()
}

// periodParam reads ?period= (a day 2026-11-05, an ISO week 2026-W45 or a
// month 2026-11) in loc; the default is today in loc.
func periodParam(r *http.Request, now time.Time, loc *time.Location) (statement.Period, error) {
	s := r.URL.Query().Get("period")
	if s == "" {
		return statement.PeriodIn("day", now, loc), nil
	}
	p, err := statement.ParsePeriod(s)
	if err != nil {
		return statement.Period{}, fmt.Errorf("period=%s: use a day 2026-11-05, a week 2026-W45 or a month 2026-11", quote(s))
	}
	return p.In(loc), nil
}

// GGR is GET /v1/ggr.
type GGR struct {
	Period     string      `json:"period"`
	From       string      `json:"from"`
	To         string      `json:"to"`
	Complete   bool        `json:"complete"` // false while the index reads the ledger, or for a period older than it keeps
	Since      string      `json:"since"`    // the oldest time the index keeps
	ByProvider []GGRRow    `json:"by_provider"`
	ByGame     []GGRRow    `json:"by_game"`
	Hours      []HourValue `json:"hours"` // GGR per UTC hour and currency
}

func (c *Console) ggrFor(r *http.Request) (GGR, error) {
	p, err := periodParam(r, c.now(), time.UTC)
	if err != nil {
		return GGR{}, err
	}
	g := GGR{Period: p.String(), From: p.Start.Format(time.RFC3339), To: p.End().Format(time.RFC3339)}
	var since time.Time
	g.Complete, since = c.dash.rev.covers(p.Start)
	g.Since = since.Format(time.RFC3339)
	g.ByGame, g.ByProvider, g.Hours = c.dash.rev.ggrOver(p.Start, p.End(), r.URL.Query().Get("provider"))
	return g, nil
}

func (c *Console) ggrAPI(w http.ResponseWriter, r *http.Request, id Identity) {
	if !operatorOnly(w, id) {
		return
	}
	g, err := c.ggrFor(r)
	if err != nil {
		fail(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	writeJSON(w, g)
}

// PartyRevenue is one party's revenue by hour in GET /v1/revenue.
type PartyRevenue struct {
	Party    string      `json:"party"`
	TimeZone string      `json:"time_zone"`
	Period   string      `json:"period"`
	From     string      `json:"from"`
	To       string      `json:"to"`
	Complete bool        `json:"complete"`
	Hours    []HourValue `json:"hours"`
	Totals   []HourValue `json:"totals"` // per currency over the period (Hour = From)
}

func (c *Console) zone(party string) *time.Location {
	if f := c.o.Dash.TimeZone; f != nil {
		if loc := f(party); loc != nil {
			return loc
		}
	}
	return time.UTC
}

// revenueFor is each party in scope (or the one asked for) with its shares
// by hour over the period, in its own time zone.
func (c *Console) revenueFor(r *http.Request, id Identity, party string) ([]PartyRevenue, error) {
	var parties []string
	switch {
	case party != "":
		parties = []string{party}
	case id.Partner():
		parties = id.Parties
	default:
		seen := map[string]bool{}
		c.dash.rev.mu.Lock()
		for k := range c.dash.rev.party {
			seen[k.party] = true
		}
		c.dash.rev.mu.Unlock()
		for p := range seen {
			parties = append(parties, p)
		}
		sort.Strings(parties)
	}
	out := []PartyRevenue{}
	for _, p := range parties {
		loc := c.zone(p)
		per, err := periodParam(r, c.now(), loc)
		if err != nil {
			return nil, err
		}
		complete, _ := c.dash.rev.covers(per.Start)
		pr := PartyRevenue{Party: p, TimeZone: loc.String(), Period: per.String(), From: per.Start.Format(time.RFC3339),
			To: per.End().Format(time.RFC3339), Complete: complete, Hours: c.dash.rev.partyHours(p, per.Start, per.End(), loc), Totals: []HourValue{}}
		sums := map[string]*HourValue{}
		for _, h := range pr.Hours {
			t := sums[h.Currency]
			if t == nil {
				t = &HourValue{Hour: pr.From, Currency: h.Currency}
				sums[h.Currency] = t
			}
			t.Count += h.Count
			t.value = t.value.Add(h.value)
		}
		for _, t := range sums {
			t.Amount = formatAmount(t.Currency, t.value)
			pr.Totals = append(pr.Totals, *t)
		}
		sortHours(pr.Totals)
		out = append(out, pr)
	}
	return out, nil
}

func (c *Console) revenueAPI(w http.ResponseWriter, r *http.Request, id Identity) {
	party, ok := scopeParty(w, r, id)
	if !ok {
		return
	}
	out, err := c.revenueFor(r, id, party)
	if err != nil {
		fail(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	writeJSON(w, out)
}

// firingAlerts is the node's firing alerts, newest first (none when alerts
// are off).
func (c *Console) firingAlerts() []alerts.Alert {
	out := []alerts.Alert{}
	if f := c.dash.alerts.Load(); f != nil && *f != nil {
		out = append(out, (*f)()...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.After(out[j].Since) })
	return out
}

func (c *Console) alertsAPI(w http.ResponseWriter, r *http.Request, id Identity) {
	if !operatorOnly(w, id) {
		return
	}
	writeJSON(w, c.firingAlerts())
}

// SLAAnswer is GET /v1/sla.
type SLAAnswer struct {
	Period  string        `json:"period"`
	Figures []sla.Figures `json:"figures"`
	Note    string        `json:"note,omitempty"` // why there are no figures
}

func (c *Console) slaFor(ctx context.Context, r *http.Request) (SLAAnswer, error) {
	p, err := periodParam(r, c.now(), time.UTC)
	if err != nil {
		return SLAAnswer{}, err
	}
	out := SLAAnswer{Period: p.String(), Figures: []sla.Figures{}}
	if c.o.Dash.SLA == nil {
		out.Note = "no SLA figures on this node: alerts are off or no sla blocks are configured (docs/sla.md)"
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fs, err := c.o.Dash.SLA(ctx, p.Start, p.End())
	if err != nil {
		c.log.Warn("sla figures", "error", err)
		out.Note = "the SLA windows could not be read: " + err.Error()
		return out, nil
	}
	if fs != nil {
		out.Figures = fs
	}
	return out, nil
}

func (c *Console) slaAPI(w http.ResponseWriter, r *http.Request, id Identity) {
	if !operatorOnly(w, id) {
		return
	}
	out, err := c.slaFor(r.Context(), r)
	if err != nil {
		fail(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	writeJSON(w, out)
}

// barChart draws one series of hourly values as an SVG bar chart, rendered
// on the server (no script: the page's CSP allows none inline). Negative
// values are drawn below the axis.
func barChart(title string, hs []HourValue) template.HTML {
	if len(hs) == 0 {
		return ""
	}
	const w, h, pad = 720.0, 160.0, 24.0
	maxAbs := decimal.Zero
	for _, v := range hs {
		maxAbs = decimal.Max(maxAbs, v.value.Abs())
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f"><title>%s</title>`, w, h+pad, w, h+pad, template.HTMLEscapeString(title))
	bw := (w - 2*pad) / float64(len(hs))
	mid := h / 2
	if maxAbs.IsZero() || !anyNegative(hs) {
		mid = h - 4
	}
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" class="axis"/>`, pad, mid, w-pad, mid)
	for i, v := range hs {
		frac := 0.0
		if !maxAbs.IsZero() {
			frac, _ = v.value.Div(maxAbs).Float64()
		}
		bh := frac * (mid - 6)
		x := pad + float64(i)*bw + 1
		y, hh, cls := mid-bh, bh, "bar"
		if bh < 0 {
			y, hh, cls = mid, -bh, "bar neg"
		}
		label := v.Hour
		if len(label) >= 16 {
			label = label[11:13]
		}
		fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" data-hour="%s" data-amount="%s"><title>%s %s %s</title></rect>`,
			cls, x, y, max(bw-2, 1), hh, template.HTMLEscapeString(v.Hour), template.HTMLEscapeString(v.Amount),
			template.HTMLEscapeString(v.Hour), template.HTMLEscapeString(v.Amount), template.HTMLEscapeString(v.Currency))
		if len(hs) <= 48 && i%3 == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" class="tick">%s</text>`, x, h+pad-6, template.HTMLEscapeString(label))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every value written into it is escaped above
}

func anyNegative(hs []HourValue) bool {
	for _, v := range hs {
		if v.value.IsNegative() {
			return true
		}
	}
	return false
}

// Chart is one chart of the UI: a title and its SVG.
type Chart struct {
	Title string
	SVG   template.HTML
}

// fillHours adds the hours of [from, to) that have no value, as zeros, for
// each currency, so a day's chart shows the whole day (periods of up to
// two days; longer ones are charted as they are).
func fillHours(hs []HourValue, from, to time.Time) []HourValue {
	if to.Sub(from) > 48*time.Hour {
		return hs
	}
	have := map[string]bool{}
	curs := map[string]bool{}
	for _, h := range hs {
		have[h.Currency+" "+h.Hour] = true
		curs[h.Currency] = true
	}
	out := append([]HourValue(nil), hs...)
	for cur := range curs {
		for t := from.UTC(); t.Before(to); t = t.Add(time.Hour) {
			if k := t.Format(time.RFC3339); !have[cur+" "+k] {
				out = append(out, HourValue{Hour: k, Currency: cur, Amount: formatAmount(cur, decimal.Zero)})
			}
		}
	}
	sortHours(out)
	return out
}

// charts splits hourly values by currency into one chart each.
func charts(prefix string, hs []HourValue) []Chart {
	by := map[string][]HourValue{}
	var curs []string
	for _, h := range hs {
		if by[h.Currency] == nil {
			curs = append(curs, h.Currency)
		}
		by[h.Currency] = append(by[h.Currency], h)
	}
	sort.Strings(curs)
	out := []Chart{}
	for _, cur := range curs {
		t := prefix + " (" + cur + ")"
		out = append(out, Chart{Title: t, SVG: barChart(t, by[cur])})
	}
	return out
}

// dashData adds the dashboard's figures to the home page's data.
func (c *Console) dashData(r *http.Request, id Identity, data map[string]any) {
	if id.Partner() {
		revs, err := c.revenueFor(r, id, "")
		if err != nil {
			data["DashError"] = err.Error()
			return
		}
		type partyView struct {
			PartyRevenue
			Charts []Chart
		}
		var views []partyView
		for _, pr := range revs {
			views = append(views, partyView{pr, charts("Revenue by hour, "+pr.Party, pr.Hours)})
		}
		data["Revenue"] = views
		return
	}
	g, err := c.ggrFor(r)
	if err != nil {
		data["DashError"] = err.Error()
		g, _ = c.ggrFor(&http.Request{URL: &url.URL{}}) // today
	}
	data["GGR"] = g
	from, _ := time.Parse(time.RFC3339, g.From)
	to, _ := time.Parse(time.RFC3339, g.To)
	data["GGRCharts"] = charts("GGR by hour (UTC)", fillHours(g.Hours, from, to))
	data["Alerts"] = c.firingAlerts()
	s, err := c.slaFor(r.Context(), r)
	if err != nil {
		s = SLAAnswer{Note: err.Error()}
	}
	data["SLA"] = s
	data["Period"] = r.URL.Query().Get("period")
}

var errNoSigner = errors.New("this console has no signing key: reconciliations cannot be kept")
