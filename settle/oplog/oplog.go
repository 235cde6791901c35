// Package oplog is the operator log: how the system's own entries —
// approved adjustments (correction), FX rates (fx_rate) and payout runs
// (payout_run) — enter the
// ledger through the same commit path as every provider's transaction, with
// the same exactly-once guarantee (docs/settle.md, "Operator log").
//
//   - Post publishes one canonical operator transaction to the JetStream
//     stream <PREFIX>_OPLOG (subject <prefix>.oplog). Its stream sequence
//     is the record's edge sequence: contiguous from 1, allocated by the
//     server. Nats-Msg-Id is the action's own id, so a retried post inside
//     the duplicate window is stored once; a later repeat is a duplicate
//     for the engine's (provider, id) index anyway.
//   - The forwarder (every settle node, one shared durable pull consumer
//     "oplog-fwd") publishes each oplog message as a one-record wire batch
//     to <prefix>.tx._tally._tally, waits for the PubAck, then acks. Two
//     nodes forwarding out of order only make a short gap, which the
//     partition worker holds.
//   - The replay responder (every settle node, queue group) answers the
//     worker's replay requests for edge node _tally by republishing the
//     asked sequences from the oplog stream, exactly as an edge does, so a
//     lost forward closes like any gap.
//
// Correction, FXRate and PayoutRun build the canonical payloads, checked exactly as the
// engine, the store and `tally verify` will check the entry.
package oplog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/tally-mesh/tally/money"
	"github.com/tally-mesh/tally/settle/engine"
	"github.com/tally-mesh/tally/txn"
	"github.com/tally-mesh/tally/wire"
)

// ErrInvalid marks a payload or action the operator log refuses to post.
var ErrInvalid = errors.New("invalid operator entry")

// Check decodes payload as the settle engine will and checks that it is
// canonical and would settle as a valid operator entry.
func Check(payload []byte) (txn.Tx, error) {
	tx, rej := txn.Decode(payload, engine.Limits)
	if rej != nil {
		return tx, fmt.Errorf("%w: %v", ErrInvalid, rej)
	}
	if !tx.Type.Operator() {
		return tx, fmt.Errorf("%w: type %s is not an operator type (correction, fx_rate, payout_run)", ErrInvalid, tx.Type)
	}
	if c := tx.Canonical(); string(c) != string(payload) {
		return tx, fmt.Errorf("%w: payload is not in canonical form (txn.Tx.Canonical)", ErrInvalid)
	}
	if _, err := engine.OperatorEntry(tx, time.Unix(1, 0)); err != nil {
		return tx, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return tx, nil
}

// Post publishes the canonical operator transaction payload to the oplog
// stream with Nats-Msg-Id msgID (the action's own id, e.g. adj-<exception>)
// and returns its stream sequence (for a post the stream recognised as a
// duplicate within its window: the sequence of the first). It refuses a
// payload Check refuses. The entry is in the ledger once a settle node has
// forwarded and settled it: Post does not wait for that.
func Post(ctx context.Context, js jetstream.JetStream, subjects wire.Subjects, payload []byte, msgID string) (seq uint64, err error) {
	if msgID == "" || len(msgID) > 256 {
		return 0, fmt.Errorf("%w: message id must be 1-256 bytes", ErrInvalid)
	}
	if _, err := Check(payload); err != nil {
		return 0, err
	}
	m := nats.NewMsg(subjects.Oplog())
	m.Data = payload
	m.Header.Set(wire.HdrMsgID, msgID)
	ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(subjects.OplogStream()))
	if err != nil {
		return 0, fmt.Errorf("post to %s: %w", subjects.OplogStream(), err)
	}
	return ack.Sequence, nil
}

// Correction is an approved adjustment, as the console hands it over.
type Correction struct {
	Exception         string        // the exception id it resolves
	N                 int           // ≥ 1: the id is adj-<Exception>-<N>
	Currency          string        // ISO 4217 code
	Lines             []money.Share // party and signed amount, in the proposal's order, each party once
	ProposedBy        string        // the maker
	ApprovedBy        []string      // the checkers, distinct, none the maker
	ApprovalsRequired int           // as configured when proposed (1 or 2)
	Reason            string
	ApprovedAt        time.Time // occurred_at of the entry
}

// ID is the correction's transaction id: adj-<Exception>-<N>.
func (c Correction) ID() string { return "adj-" + c.Exception + "-" + strconv.Itoa(c.N) }

// Tx is the correction as a transaction: amount = |Σ lines|, meta as
// docs/ledger-format.md lists. It is not checked; Payload checks it.
func (c Correction) Tx() (txn.Tx, error) {
	cur, ok := money.Lookup(c.Currency)
	if !ok {
		return txn.Tx{}, fmt.Errorf("%w: unknown currency %q", ErrInvalid, c.Currency)
	}
	return txn.Tx{
		ID: c.ID(), Type: txn.Correction, Amount: money.Sum(c.Lines).Abs(), Currency: cur, OccurredAt: c.ApprovedAt.UTC(),
		Meta: map[string]string{
			txn.MetaException:         c.Exception,
			txn.MetaProposedBy:        c.ProposedBy,
			txn.MetaApprovedBy:        strings.Join(c.ApprovedBy, ","),
			txn.MetaApprovalsRequired: strconv.Itoa(c.ApprovalsRequired),
			txn.MetaReason:            c.Reason,
			txn.MetaLines:             txn.FormatLines(c.Lines, cur),
		},
	}, nil
}

// Payload is the correction's canonical JSON, checked as the engine, the
// store and `tally verify` will check it (Check).
func (c Correction) Payload() ([]byte, error) {
	if c.N < 1 {
		return nil, fmt.Errorf("%w: N must be >= 1", ErrInvalid)
	}
	tx, err := c.Tx()
	if err != nil {
		return nil, err
	}
	return payload(tx)
}

// FXRate is an exchange rate to enter into the ledger.
type FXRate struct {
	Source   string          // a-z A-Z 0-9 _ (e.g. "ecb")
	Base     string          // ISO 4217 code: the entry's currency
	Quote    string          // ISO 4217 code
	Rate     decimal.Decimal // quote units per 1 base, > 0, at most 12 decimals
	AsOf     time.Time       // whole seconds: occurred_at of the entry
	PostedBy string
}

// ID is the rate's transaction id: fx-<source>-<BASE><QUOTE>-<as_of unix seconds>.
func (f FXRate) ID() string { return txn.FXRateID(f.Source, f.Base, f.Quote, f.AsOf) }

// Tx is the rate as a transaction (amount 0, currency = base). It is not
// checked; Payload checks it.
func (f FXRate) Tx() (txn.Tx, error) {
	cur, ok := money.Lookup(f.Base)
	if !ok {
		return txn.Tx{}, fmt.Errorf("%w: unknown base currency %q", ErrInvalid, f.Base)
	}
	return txn.Tx{
		ID: f.ID(), Type: txn.FXRate, Amount: decimal.Zero, Currency: cur, OccurredAt: f.AsOf.UTC(),
		Meta: map[string]string{
			txn.MetaSource:   f.Source,
			txn.MetaPair:     f.Base + "/" + f.Quote,
			txn.MetaRate:     f.Rate.String(),
			txn.MetaPostedBy: f.PostedBy,
		},
	}, nil
}

// Payload is the rate's canonical JSON, checked (Check).
func (f FXRate) Payload() ([]byte, error) {
	tx, err := f.Tx()
	if err != nil {
		return nil, err
	}
	return payload(tx)
}

// PayoutRun is a recorded payout run (settle/payout) to enter into the
// ledger: which statements it pays, so that no statement is paid twice is
// checkable from the ledger alone (tally verify).
type PayoutRun struct {
	Run        string   // RUN-<seq, 6 digits>: the run's id
	RunHash    string   // hex SHA-256 of the signed run record's canonical JSON
	Statements []string // hex SHA-256 of each statement paid, in the run's order
	CreatedBy  string
	ApprovedBy string
	Totals     []PayoutTotal // one per currency paid, any order
	CreatedAt  time.Time     // the run's created_at, whole seconds: occurred_at of the entry
}

// PayoutTotal is what a run pays in one currency.
type PayoutTotal struct {
	Currency string // ISO 4217 code
	Sum      decimal.Decimal
}

// ID is the run's transaction id: payout-<Run>.
func (p PayoutRun) ID() string { return txn.PayoutRunID(p.Run) }

// MsgID is the oplog message id of the run: its transaction id and its
// hash, so a retried post of the same run is stored once, while another
// run under the same id reaches the engine (a conflict, not dropped).
func (p PayoutRun) MsgID() string { return p.ID() + "-" + p.RunHash }

// Tx is the run as a transaction: amount 0, currency = the first of the
// totals by code, meta as docs/ledger-format.md lists. It is not checked;
// Payload checks it.
func (p PayoutRun) Tx() (txn.Tx, error) {
	totals := make([]txn.PayoutTotal, 0, len(p.Totals))
	for _, t := range p.Totals {
		cur, ok := money.Lookup(t.Currency)
		if !ok {
			return txn.Tx{}, fmt.Errorf("%w: unknown currency %q in the totals", ErrInvalid, t.Currency)
		}
		totals = append(totals, txn.PayoutTotal{Currency: cur, Sum: t.Sum})
	}
	if len(totals) == 0 {
		return txn.Tx{}, fmt.Errorf("%w: a payout run without totals pays nothing", ErrInvalid)
	}
	slices.SortFunc(totals, func(a, b txn.PayoutTotal) int { return strings.Compare(a.Currency.Code, b.Currency.Code) })
	return txn.Tx{
		ID: p.ID(), Type: txn.PayoutRun, Amount: decimal.Zero, Currency: totals[0].Currency, OccurredAt: p.CreatedAt.UTC(),
		Meta: map[string]string{
			txn.MetaRun:        p.Run,
			txn.MetaRunHash:    p.RunHash,
			txn.MetaStatements: strings.Join(p.Statements, ";"),
			txn.MetaCreatedBy:  p.CreatedBy,
			txn.MetaApprovedBy: p.ApprovedBy,
			txn.MetaTotals:     txn.FormatTotals(totals),
		},
	}, nil
}

// Payload is the run's canonical JSON, checked (Check).
func (p PayoutRun) Payload() ([]byte, error) {
	tx, err := p.Tx()
	if err != nil {
		return nil, err
	}
	return payload(tx)
}

func payload(tx txn.Tx) ([]byte, error) {
	b := tx.Canonical()
	if _, err := Check(b); err != nil {
		return nil, err
	}
	return b, nil
}

// Options tune a Service. Zero values take the defaults.
type Options struct {
	// NoForward runs the replay responder only (tests; a node that must not
	// forward).
	NoForward bool
	// AckWait is how long a forward may take before another node gets the
	// message (default 30s).
	AckWait time.Duration
	// PublishTimeout bounds one forward or replay publish (default 10s).
	PublishTimeout time.Duration
}

// Service is one settle node's forwarder and replay responder.
type Service struct {
	subj   wire.Subjects
	js     jetstream.JetStream
	log    hclog.Logger
	opt    Options
	sub    *nats.Subscription
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	stream jetstream.Stream
}

// Start runs the replay responder (queue group on Subjects.Replay(_tally))
// and, unless NoForward, the forwarder on the shared durable consumer. The
// forwarder waits for the oplog stream to exist (a hub that has not created
// the streams yet) and retries on JetStream errors; Close stops both.
func Start(nc *nats.Conn, js jetstream.JetStream, subjects wire.Subjects, log hclog.Logger, o Options) (*Service, error) {
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 10 * time.Second
	}
	s := &Service{subj: subjects, js: js, log: log.Named("oplog"), opt: o}
	sub, err := nc.QueueSubscribe(subjects.Replay(wire.OpsNode), "oplog-replay", s.handleReplay)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subjects.Replay(wire.OpsNode), err)
	}
	s.sub = sub
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if !o.NoForward {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.forward(ctx) }()
	}
	return s, nil
}

// Close stops the forwarder and the responder and waits for them. A forward
// in flight finishes or is redelivered to another node after AckWait.
func (s *Service) Close() {
	if s == nil {
		return
	}
	if err := s.sub.Unsubscribe(); err != nil {
		s.log.Debug("unsubscribe replay", "error", err)
	}
	s.cancel()
	s.wg.Wait()
}

// forward runs the forwarder until ctx ends.
func (s *Service) forward(ctx context.Context) {
	wait := 250 * time.Millisecond
	var cons jetstream.Consumer
	for ctx.Err() == nil {
		if cons == nil {
			c, err := s.js.CreateOrUpdateConsumer(ctx, s.subj.OplogStream(), jetstream.ConsumerConfig{
				Durable:       s.subj.OplogConsumer(),
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       s.opt.AckWait,
				MaxDeliver:    -1,
				MaxAckPending: 256,
				DeliverPolicy: jetstream.DeliverAllPolicy,
			})
			if err != nil {
				if ctx.Err() == nil {
					s.log.Debug("oplog consumer not ready; retrying", "error", err)
				}
				sleep(ctx, wait)
				wait = min(2*wait, 5*time.Second)
				continue
			}
			cons, wait = c, 250*time.Millisecond
		}
		batch, err := cons.Fetch(32, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			s.log.Debug("oplog fetch", "error", err)
			cons = nil
			sleep(ctx, wait)
			continue
		}
		for m := range batch.Messages() {
			s.forwardOne(ctx, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			s.log.Debug("oplog fetch", "error", err)
		}
	}
}

// forwardOne publishes one oplog message as record seq of (_tally, _tally)
// and acks it after the PubAck. A failed publish is left unacked: it comes
// back after a short delay.
func (s *Service) forwardOne(ctx context.Context, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		s.log.Error("oplog message without metadata", "error", err)
		return
	}
	seq := md.Sequence.Stream
	if err := s.publish(ctx, seq, m.Data(), ""); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("forward of an operator entry failed; it is retried", "seq", seq, "error", err)
		}
		_ = m.NakWithDelay(time.Second)
		return
	}
	if err := m.Ack(); err != nil {
		// The record is in TALLY_TX; a redelivery forwards it again under
		// the same message id, and the engine skips it anyway.
		s.log.Debug("oplog ack", "seq", seq, "error", err)
	}
}

// Forward publishes payload as record seq of (_tally, _tally) to TALLY_TX:
// the forwarder's publish, exported for tests that lose or reorder a forward.
func Forward(ctx context.Context, js jetstream.JetStream, subjects wire.Subjects, seq uint64, payload []byte) error {
	s := &Service{subj: subjects, js: js, opt: Options{PublishTimeout: 10 * time.Second}}
	return s.publish(ctx, seq, payload, "")
}

// publish sends one record; replay != "" marks a replay (fresh message id).
func (s *Service) publish(ctx context.Context, seq uint64, payload []byte, replay string) error {
	body := wire.AppendBatch(make([]byte, 0, len(payload)+24), []wire.Record{{Seq: seq, Payload: payload}})
	sum := sha256.Sum256(body)
	m := nats.NewMsg(s.subj.Tx(wire.OpsNode, wire.OpsProvider))
	m.Data = body
	id := wire.OpsNode + "-" + strconv.FormatUint(seq, 10)
	if replay != "" {
		id += ".r" + replay
		m.Header.Set(wire.HdrReplay, "1")
	}
	m.Header.Set(wire.HdrMsgID, id)
	m.Header.Set(wire.HdrNode, wire.OpsNode)
	m.Header.Set(wire.HdrProvider, wire.OpsProvider)
	m.Header.Set(wire.HdrFirstSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(wire.HdrLastSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(wire.HdrHash, hex.EncodeToString(sum[:]))
	pctx, cancel := context.WithTimeout(ctx, s.opt.PublishTimeout)
	defer cancel()
	_, err := s.js.PublishMsg(pctx, m, jetstream.WithExpectStream(s.subj.TxStream()))
	return err
}

// replayMax bounds the records one replay request republishes; the worker
// asks again while the gap stays open.
const replayMax = 1000

func (s *Service) handleReplay(m *nats.Msg) {
	rep := s.replay(m.Data)
	if m.Reply == "" {
		return
	}
	b, _ := json.Marshal(rep)
	if err := m.Respond(b); err != nil {
		s.log.Debug("replay reply not sent", "error", err)
	}
}

// replay republishes From..To of the oplog (at most replayMax).
func (s *Service) replay(body []byte) wire.ReplayReply {
	var req wire.ReplayRequest
	if len(body) > 4<<10 || json.Unmarshal(body, &req) != nil {
		return wire.ReplayReply{Error: "bad replay request: want JSON {provider, from, to}"}
	}
	if req.Provider != wire.OpsProvider || req.From == 0 || req.To < req.From {
		return wire.ReplayReply{Error: fmt.Sprintf("bad replay request: provider %q, from %d, to %d (this is the operator log: provider %s only)", req.Provider, req.From, req.To, wire.OpsProvider)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := s.oplogStream(ctx)
	if err != nil {
		return wire.ReplayReply{Error: err.Error()}
	}
	var rep wire.ReplayReply
	to := min(req.To, req.From+replayMax-1)
	tag := strconv.FormatInt(time.Now().UnixNano(), 10)
	for seq := req.From; seq <= to; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			rep.Missing = seq
			break
		}
		if err != nil {
			rep.Error = fmt.Sprintf("read oplog %d: %v", seq, err)
			break
		}
		if err := s.publish(ctx, seq, raw.Data, tag); err != nil {
			rep.Error = fmt.Sprintf("republish oplog %d: %v", seq, err)
			break
		}
		rep.Published++
	}
	log := s.log.With("from", req.From, "to", req.To, "published", rep.Published)
	if rep.Error != "" || rep.Missing != 0 {
		log.Error("operator log replay incomplete", "missing", rep.Missing, "error", rep.Error)
	} else {
		log.Info("operator log replayed")
	}
	return rep
}

func (s *Service) oplogStream(ctx context.Context) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		return s.stream, nil
	}
	st, err := s.js.Stream(ctx, s.subj.OplogStream())
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", s.subj.OplogStream(), err)
	}
	s.stream = st
	return st, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
