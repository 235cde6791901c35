package nodes

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/ops/anomaly"
	"github.com/tally-mesh/tally/settle/oplog"
	"github.com/tally-mesh/tally/wire"
)

// enableWorkflow turns on the console's exception and statement workflow:
// the <PREFIX>_CASES bucket (created here, with the streams' replicas),
// the anomalies stream when it exists, the kept reconciliations, and the
// operator log as the Poster: an approved adjustment becomes a correction
// entry through the settle commit path (settle/oplog).
func (n *Node) enableWorkflow(c *console.Console) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	kv, err := console.OpenCasesBucket(ctx, n.js, n.cfg.Prefix, n.cfg.Streams.Replicas)
	if err != nil {
		return err
	}
	return c.EnableWorkflow(console.WorkflowOptions{KV: kv, JS: n.js, AnomalyStream: anomaly.StreamName(wire.NewSubjects(n.cfg.Prefix)),
		ReconDir: n.cfg.Path("reconciliations"), DualApprovalAbove: n.cfg.Settle.ConsoleDualApprovalAbove,
		Queue: console.QueueLimits{Exceptions: n.cfg.Settle.ConsoleQueueExceptions, Anomalies: n.cfg.Settle.ConsoleQueueAnomalies,
			Breaks: n.cfg.Settle.ConsoleQueueBreaks},
		Poster: oplogPoster{js: n.js, subjects: wire.NewSubjects(n.cfg.Prefix)}})
}

// oplogPoster posts the console's approved corrections to the operator log.
// The msg id is the correction's own id (adj-<case>-<n>), so a retried post
// is stored once, and the engine's (provider, id) dedup makes any later
// repeat a duplicate.
type oplogPoster struct {
	js       jetstream.JetStream
	subjects wire.Subjects
}

func (p oplogPoster) PostCorrection(ctx context.Context, c console.Correction) (uint64, error) {
	oc, err := toOplog(c)
	if err != nil {
		return 0, err
	}
	payload, err := oc.Payload()
	if err != nil {
		return 0, err
	}
	return oplog.Post(ctx, p.js, p.subjects, payload, c.ID)
}

// toOplog converts the console's correction to the operator log's, checking
// that both name it by the same id.
func toOplog(c console.Correction) (oplog.Correction, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(c.ID, "adj-"+c.Exception+"-"))
	if err != nil || n < 1 {
		return oplog.Correction{}, fmt.Errorf("correction id %q is not adj-%s-<n>", c.ID, c.Exception)
	}
	lines := make([]money.Share, len(c.Lines))
	for i, l := range c.Lines {
		d, err := decimal.NewFromString(l.Amount)
		if err != nil {
			return oplog.Correction{}, fmt.Errorf("correction %s line %d: %w", c.ID, i+1, err)
		}
		lines[i] = money.Share{Party: l.Party, Amount: d}
	}
	oc := oplog.Correction{Exception: c.Exception, N: n, Currency: c.Currency, Lines: lines, ProposedBy: c.ProposedBy,
		ApprovedBy: c.ApprovedBy, ApprovalsRequired: c.ApprovalsRequired, Reason: c.Reason, ApprovedAt: c.OccurredAt}
	if oc.ID() != c.ID {
		return oplog.Correction{}, fmt.Errorf("correction id %q, operator log id %q", c.ID, oc.ID())
	}
	return oc, nil
}

// SetCorrectionPoster wires the console's Poster (approved adjustments to
// the ledger); a node without the console ignores it.
func (n *Node) SetCorrectionPoster(p console.Poster) {
	if n.console != nil {
		n.console.Console().SetPoster(p)
	}
}
