package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/ops/anomaly"
	"github.com/tally-mesh/tally/recon"
	"github.com/tally-mesh/tally/settle"
)

func exceptionCase(x settle.ExceptionRef) Case {
	return Case{ID: x.ID, Source: SourceException, Kind: x.Kind, Provider: x.Provider, TxID: x.Exception.ID,
		Summary: x.Reason, At: x.At.UTC(), State: StateOpen, History: []Event{}}
}

func anomalyCase(seq uint64, r anomaly.Record) Case {
	return Case{ID: "a-" + strconv.FormatUint(seq, 10), Source: SourceAnomaly, Kind: r.Series + "_" + r.Direction, Provider: r.Provider,
		Summary: r.Summary, At: r.At.UTC(), State: StateOpen, History: []Event{}}
}

// reconCases lists a kept reconciliation's breaks as cases.
func reconCases(k recon.Kept) []Case {
	r := k.Result
	at, _ := time.Parse(time.RFC3339, r.CreatedAt)
	var out []Case
	add := func(section string, n int, txID, summary string) {
		out = append(out, Case{ID: fmt.Sprintf("r-%d-%s-%d-%s", k.Seq, section, n, r.Provider), Source: SourceReconciliation, Kind: section,
			Provider: r.Provider, TxID: txID, Summary: fmt.Sprintf("%s %s: %s", r.Period, txID, summary), At: at.UTC(), State: StateOpen, History: []Event{}})
	}
	for i, it := range r.Missing {
		add("missing", i+1, it.ID, fmt.Sprintf("in the report (%s %s %s), not in the ledger", it.Type, it.Amount, it.Currency))
	}
	for i, it := range r.Extra {
		add("extra", i+1, it.ID, fmt.Sprintf("in the ledger (%s %s %s), not in the report", it.Type, it.Amount, it.Currency))
	}
	for i, m := range r.Mismatched {
		add("mismatched", i+1, m.ID, fmt.Sprintf("%s differ: report %s %s %s, ledger %s %s %s", strings.Join(m.Fields, ", "),
			m.Report.Type, m.Report.Amount, m.Report.Currency, m.Ledger.Type, m.Ledger.Amount, m.Ledger.Currency))
	}
	for i, d := range r.Duplicates {
		add("duplicate", i+1, d.ID, fmt.Sprintf("on report rows %v", d.Rows))
	}
	for i, j := range r.Rejected {
		add("rejected", i+1, j.ID, fmt.Sprintf("report row %d refused: %s (%s)", j.Row, j.Code, j.Reason))
	}
	for i, it := range r.OutOfPeriod {
		add("out_of_period", i+1, it.ID, "dated "+it.OccurredAt+", outside the period")
	}
	return out
}

// sourceCase finds the queue item named id in its source (no workflow state).
func (c *Console) sourceCase(ctx context.Context, id string) (Case, bool, error) {
	w := c.wf
	switch {
	case strings.HasPrefix(id, "x-"):
		e, found, err := w.exceptions.ExceptionByID(id)
		if err != nil || !found {
			return Case{}, false, err
		}
		return exceptionCase(settle.ExceptionRef{ID: id, Exception: e}), true, nil
	case strings.HasPrefix(id, "a-"):
		seq, err := strconv.ParseUint(id[2:], 10, 64)
		if err != nil || "a-"+strconv.FormatUint(seq, 10) != id {
			return Case{}, false, nil
		}
		st, err := c.anomalies(ctx)
		if err != nil || st == nil {
			return Case{}, false, err
		}
		r, found, err := c.anomaly(ctx, st, seq)
		if err != nil || !found {
			return Case{}, false, err
		}
		return anomalyCase(seq, r), true, nil
	case strings.HasPrefix(id, "r-"):
		parts := strings.SplitN(id, "-", 5)
		if len(parts) != 5 || w.ReconDir == "" || c.verifier == nil {
			return Case{}, false, nil
		}
		seq, err := strconv.Atoi(parts[1])
		if err != nil || seq < 1 {
			return Case{}, false, nil
		}
		ch, err := recon.Load(w.ReconDir, parts[4], c.verifier)
		if err != nil || seq > len(ch.Kept) {
			return Case{}, false, err
		}
		for _, cs := range reconCases(ch.Kept[seq-1]) {
			if cs.ID == id {
				return cs, true, nil
			}
		}
	}
	return Case{}, false, nil
}

// anomalies is the anomalies stream, nil when there is none (yet).
func (c *Console) anomalies(ctx context.Context) (jetstream.Stream, error) {
	if c.wf.JS == nil || c.wf.AnomalyStream == "" {
		return nil, nil
	}
	st, err := c.wf.JS.Stream(ctx, c.wf.AnomalyStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	return st, err
}

func (c *Console) anomaly(ctx context.Context, st jetstream.Stream, seq uint64) (anomaly.Record, bool, error) {
	var r anomaly.Record
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return r, false, fmt.Errorf("anomaly %d: %w", seq, err)
	}
	return r, true, nil
}

// getCase is the case named id: its record, or its source item (open);
// 404 for an id that names neither.
func (c *Console) getCase(ctx context.Context, id string) (*Case, error) {
	if !caseIDPattern.MatchString(id) {
		return nil, refuse(404, CodeNotFound, "no such case")
	}
	var cs Case
	rev, err := c.wf.load(ctx, caseKey(id), &cs)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		src, found, err := c.sourceCase(ctx, id)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, refuse(404, CodeNotFound, "no such case")
		}
		cs = src
	}
	cs.Revision = rev
	if cs.History == nil {
		cs.History = []Event{}
	}
	return &cs, nil
}

// inLedger fills cs.InLedger when its correction has been settled.
func (c *Console) inLedger(cs *Case) {
	if cs.Posted == nil {
		return
	}
	p, idx, held, found, err := c.o.Node.Lookup(OpsProvider, cs.Posted.CorrectionID)
	if err == nil && found && !held {
		cs.InLedger = &LedgerPos{Partition: p, Index: idx}
	}
}

// queue lists every case: the sources' newest items merged with every
// workflow record, newest first.
func (c *Console) queue(ctx context.Context) ([]Case, error) {
	w := c.wf
	byID := map[string]Case{}
	xs, err := w.exceptions.ExceptionRefs(w.Queue.Exceptions)
	if err != nil {
		return nil, err
	}
	for _, x := range xs {
		byID[x.ID] = exceptionCase(x)
	}
	st, err := c.anomalies(ctx)
	if err != nil {
		return nil, err
	}
	if st != nil {
		info, err := st.Info(ctx)
		if err != nil {
			return nil, err
		}
		for seq, n := info.State.LastSeq, 0; seq >= max(info.State.FirstSeq, 1) && n < w.Queue.Anomalies; seq, n = seq-1, n+1 {
			r, found, err := c.anomaly(ctx, st, seq)
			if err != nil {
				return nil, err
			}
			if found {
				cs := anomalyCase(seq, r)
				byID[cs.ID] = cs
			}
		}
	}
	if w.ReconDir != "" && c.verifier != nil {
		des, err := os.ReadDir(w.ReconDir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		n := 0
		for _, de := range des {
			provider, err := url.PathUnescape(de.Name())
			if err != nil || !de.IsDir() {
				continue
			}
			ch, err := recon.Load(w.ReconDir, provider, c.verifier)
			if err != nil {
				c.log.Warn("reconciliations unreadable", "provider", provider, "error", err)
				continue
			}
			latest := map[string]recon.Kept{} // a period's latest run supersedes the earlier ones
			for _, k := range ch.Kept {
				latest[k.Result.Period] = k
			}
			for _, k := range latest {
				for _, cs := range reconCases(k) {
					if n < w.Queue.Breaks {
						byID[cs.ID] = cs
						n++
					}
				}
			}
		}
	}
	err = w.records(ctx, "case.", func(key string, rev uint64, v []byte) error {
		var cs Case
		if err := json.Unmarshal(v, &cs); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		cs.Revision = rev
		byID[cs.ID] = cs
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Case, 0, len(byID))
	for _, cs := range byID {
		if cs.History == nil {
			cs.History = []Event{}
		}
		out = append(out, cs)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.After(out[j].At)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
