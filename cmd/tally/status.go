package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/nodes"
	"github.com/tally-mesh/tally/settle"
	"github.com/tally-mesh/tally/wire"
)

func init() {
	register(command{"status", "--nats URL [--user U --password P | --creds F] [--json] | --url http://HOST:PORT", "partition owners, lease ages, lag, nodes and edges", 42, cmdStatus})
}

// clusterStatus is what `tally status --nats` prints (--json: this object).
type clusterStatus struct {
	At         time.Time          `json:"at"`
	Partitions []partitionRow     `json:"partitions"`
	Settle     []settle.Heartbeat `json:"settle_nodes"` // heartbeats in TALLY_OWNERS
	Nodes      []nodes.Status     `json:"nodes"`        // every node that answered <prefix>.status
	Missing    []string           `json:"missing,omitempty"`
}

// partitionRow is one partition read from NATS.
type partitionRow struct {
	settle.Owner
	Pending    uint64  `json:"pending"`     // TALLY_TX messages not yet delivered to settle-<p>
	AckPending int     `json:"ack_pending"` // delivered, not yet settled
	Unsettled  float64 `json:"oldest_unsettled_s,omitzero"`
	LastLedger float64 `json:"last_ledger_s,omitzero"` // seconds since the partition's last TALLY_LEDGER message
	Segments   string  `json:"segments,omitempty"`
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stdout, stderr)
	natsURL := fs.String("nats", "", "NATS URL of a hub (reads TALLY_OWNERS, the consumers and the streams; asks every node)")
	user := fs.String("user", "", "NATS user")
	password := fs.String("password", "", "NATS password")
	creds := fs.String("creds", "", "NATS creds file")
	prefix := fs.String("prefix", wire.DefaultPrefix, "subject prefix")
	url := fs.String("url", "", "a node's metrics_listen base URL: print its GET /v1/status")
	asJSON := fs.Bool("json", false, "print JSON")
	wait := fs.Duration("wait", time.Second, "how long to collect node answers")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*natsURL == "") == (*url == "") {
		return usageError{"status needs --nats URL or --url http://HOST:PORT"}
	}
	if *url != "" {
		return statusHTTP(ctx, strings.TrimSuffix(*url, "/")+"/v1/status", stdout)
	}
	opts := []nats.Option{nats.Name("tally status"), nats.Timeout(5 * time.Second)}
	if *creds != "" {
		opts = append(opts, nats.UserCredentials(*creds))
	}
	if *user != "" {
		opts = append(opts, nats.UserInfo(*user, *password))
	}
	nc, err := nats.Connect(*natsURL, opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", *natsURL, err)
	}
	defer nc.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := readStatus(cctx, nc, wire.NewSubjects(*prefix), *wait)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(stdout, st)
	return nil
}

func statusHTTP(ctx context.Context, url string, stdout io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usageError{err.Error()}
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(stdout, resp.Body)
	return err
}

// readStatus reads everything tally status shows from NATS alone.
func readStatus(ctx context.Context, nc *nats.Conn, subj wire.Subjects, wait time.Duration) (clusterStatus, error) {
	out := clusterStatus{At: time.Now().UTC()}
	js, err := jetstream.New(nc)
	if err != nil {
		return out, err
	}
	tx, err := js.Stream(ctx, subj.TxStream())
	if err != nil {
		return out, fmt.Errorf("stream %s: %w", subj.TxStream(), err)
	}
	parts := 0
	if tr := tx.CachedInfo().Config.SubjectTransform; tr != nil {
		if i := strings.Index(tr.Destination, "{{partition("); i >= 0 {
			fmt.Sscanf(tr.Destination[i:], "{{partition(%d", &parts)
		}
	}
	if parts == 0 {
		return out, fmt.Errorf("stream %s: no partition transform", subj.TxStream())
	}
	var owners []settle.Owner
	kv, err := js.KeyValue(ctx, subj.OwnersBucket())
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		out.Missing = append(out.Missing, "no "+subj.OwnersBucket()+" bucket: ownership is static (settle.partitions)")
	case err != nil:
		return out, err
	default:
		if owners, out.Settle, err = settle.ReadOwners(ctx, kv, parts); err != nil {
			return out, err
		}
	}
	led, err := js.Stream(ctx, subj.LedgerStream())
	if err != nil {
		return out, fmt.Errorf("stream %s: %w", subj.LedgerStream(), err)
	}
	for p := range parts {
		r := partitionRow{Owner: settle.Owner{Partition: p}}
		if p < len(owners) {
			r.Owner = owners[p]
		}
		if c, err := tx.Consumer(ctx, subj.SettleConsumer(p)); err == nil {
			if ci, err := c.Info(ctx); err == nil {
				r.Pending, r.AckPending = ci.NumPending, ci.NumAckPending
				if ci.NumPending+uint64(ci.NumAckPending) > 0 {
					if m, err := tx.GetMsg(ctx, ci.AckFloor.Stream+1, jetstream.WithGetMsgSubject(subj.TxPartition(p))); err == nil {
						r.Unsettled = time.Since(m.Time).Seconds()
					}
				}
			}
		} else {
			out.Missing = append(out.Missing, fmt.Sprintf("partition %d: no consumer %s yet", p, subj.SettleConsumer(p)))
		}
		if m, err := led.GetLastMsgForSubject(ctx, subj.Ledger(p)); err == nil {
			r.LastLedger = time.Since(m.Time).Seconds()
			r.Segments = m.Header.Get(wire.HdrSegment)
		}
		out.Partitions = append(out.Partitions, r)
	}
	// Every node answers <prefix>.status; collect for wait.
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return out, err
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(nodes.StatusSubject(subj), inbox, nil); err != nil {
		return out, err
	}
	end := time.Now().Add(wait)
	for len(out.Nodes) < 1000 {
		left := time.Until(end)
		if left <= 0 {
			break
		}
		m, err := sub.NextMsg(left)
		if err != nil {
			break
		}
		var s nodes.Status
		if json.Unmarshal(m.Data, &s) == nil {
			out.Nodes = append(out.Nodes, s)
		}
	}
	slices.SortFunc(out.Nodes, func(a, b nodes.Status) int { return strings.Compare(a.Node, b.Node) })
	if !slices.ContainsFunc(out.Nodes, func(s nodes.Status) bool { return s.Ingest != nil }) {
		out.Missing = append(out.Missing, "no edge answered: edges whose leaf link is down cannot (read their /v1/status on metrics_listen)")
	}
	return out, nil
}

func printStatus(w io.Writer, st clusterStatus) {
	fmt.Fprintf(w, "partitions (%d)\n", len(st.Partitions))
	fmt.Fprintf(w, "  %-4s %-16s %-10s %-9s %-11s %-12s %-12s %s\n", "p", "owner", "lease_age", "pending", "ack_pending", "oldest_unset", "last_ledger", "segments")
	for _, r := range st.Partitions {
		owner, age := r.Owner.Owner, "-"
		if owner == "" {
			owner = "-"
		} else {
			age = fmt.Sprintf("%.1fs", r.Age)
		}
		fmt.Fprintf(w, "  %-4d %-16s %-10s %-9d %-11d %-12s %-12s %s\n", r.Partition, owner, age, r.Pending, r.AckPending, secs(r.Unsettled), secs(r.LastLedger), r.Segments)
	}
	fmt.Fprintf(w, "settle nodes with a heartbeat (%d)\n", len(st.Settle))
	for _, hb := range st.Settle {
		var ps []string
		for _, p := range hb.Partitions {
			ps = append(ps, fmt.Sprintf("%d:%s", p.Partition, p.State))
		}
		fmt.Fprintf(w, "  %-16s heartbeat %.1fs ago, up since %s, partitions [%s]\n", hb.Node, time.Since(hb.At).Seconds(), hb.Started.Format(time.RFC3339), strings.Join(ps, " "))
	}
	fmt.Fprintf(w, "nodes that answered (%d)\n", len(st.Nodes))
	for _, n := range st.Nodes {
		link := "down"
		if n.Link.Up {
			link = "up"
		}
		line := fmt.Sprintf("  %-16s %-22s link %-4s", n.Node, strings.Join(n.Roles, ","), link)
		if n.Ingest != nil {
			line += fmt.Sprintf(" wal %d/%d bytes, %d to forward", n.Ingest.WALBytes, n.Ingest.BudgetBytes, n.Ingest.ForwardLag)
		}
		if n.Settle != nil {
			line += fmt.Sprintf(" %s:", n.Settle.Ownership)
			for _, p := range n.Settle.Partitions {
				line += fmt.Sprintf(" %d=%s(lag %d)", p.Partition, p.State, p.Lag)
			}
		}
		fmt.Fprintln(w, line)
	}
	for _, m := range st.Missing {
		fmt.Fprintln(w, "note:", m)
	}
}

func secs(s float64) string {
	if s == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fs", s)
}
