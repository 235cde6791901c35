package nodes

import (
	"context"
	"time"

	"github.com/tally-mesh/tally/console"
	"github.com/tally-mesh/tally/ops/anomaly"
	"github.com/tally-mesh/tally/wire"
)

// enableWorkflow turns on the console's exception and statement workflow:
// the <PREFIX>_CASES bucket (created here, with the streams' replicas),
// the anomalies stream when it exists, the kept reconciliations. No
// Poster yet: approved adjustments stay approved until the operator log
// is wired (SEAM.md).
func (n *Node) enableWorkflow(c *console.Console) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	kv, err := console.OpenCasesBucket(ctx, n.js, n.cfg.Prefix, n.cfg.Streams.Replicas)
	if err != nil {
		return err
	}
	return c.EnableWorkflow(console.WorkflowOptions{KV: kv, JS: n.js, AnomalyStream: anomaly.StreamName(wire.NewSubjects(n.cfg.Prefix)),
		ReconDir: n.cfg.Path("reconciliations"), DualApprovalAbove: n.cfg.Settle.ConsoleDualApprovalAbove})
}

// SetCorrectionPoster wires the console's Poster (approved adjustments to
// the ledger); a node without the console ignores it.
func (n *Node) SetCorrectionPoster(p console.Poster) {
	if n.console != nil {
		n.console.Console().SetPoster(p)
	}
}
