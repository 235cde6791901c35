package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/alerts"
	"github.com/tally-mesh/tally/wire"
)

func init() {
	register(command{"alerts", "tail [--nats URL] [--since DUR] [--kind K] [--no-follow] [--events] [--json]", "alert states from TALLY_ALERTS: history, then live", 60, cmdAlerts})
}

// hubFlags are the connection flags of the commands that read the hub's streams.
type hubFlags struct {
	url, user, password, creds, prefix, domain *string
}

func addHubFlags(fs *flags) hubFlags {
	return hubFlags{
		url:      fs.String("nats", "", "NATS URL of a hub (default $NATS_URL, else nats://127.0.0.1:4222)"),
		user:     fs.String("user", "", "NATS user"),
		password: fs.String("password", "", "NATS password (default $NATS_PASSWORD)"),
		creds:    fs.String("creds", "", "NATS credentials file"),
		prefix:   fs.String("prefix", wire.DefaultPrefix, "subject prefix of the mesh"),
		domain:   fs.String("domain", "", "JetStream domain (when connecting to an edge's leaf server)"),
	}
}

func (h hubFlags) connect() (*nats.Conn, jetstream.JetStream, wire.Subjects, error) {
	url := *h.url
	if url == "" {
		url = os.Getenv("NATS_URL")
	}
	if url == "" {
		url = nats.DefaultURL
	}
	opts := []nats.Option{nats.Name("tally cli"), nats.Timeout(5 * time.Second)}
	pwd := *h.password
	if pwd == "" {
		pwd = os.Getenv("NATS_PASSWORD")
	}
	if *h.user != "" {
		opts = append(opts, nats.UserInfo(*h.user, pwd))
	}
	if *h.creds != "" {
		opts = append(opts, nats.UserCredentials(*h.creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, wire.Subjects{}, fmt.Errorf("connect to %s: %w", url, err)
	}
	var js jetstream.JetStream
	if *h.domain != "" {
		js, err = jetstream.NewWithDomain(nc, *h.domain)
	} else {
		js, err = jetstream.New(nc)
	}
	if err != nil {
		nc.Close()
		return nil, nil, wire.Subjects{}, err
	}
	return nc, js, wire.NewSubjects(*h.prefix), nil
}

// cmdAlerts: `tally alerts tail` prints the transitions stored in
// TALLY_ALERTS since --since, then follows new ones until interrupted
// (--no-follow: stops at the end of the history).
func cmdAlerts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if err := helpOnly("alerts", args, stdout, stderr); err != nil {
		return err
	}
	if len(args) == 0 || args[0] != "tail" {
		return usageError{"usage: tally alerts tail [--nats URL] [--since DUR] [--kind K] [--no-follow] [--events] [--json]"}
	}
	fs := newFlags("alerts tail", stdout, stderr)
	hf := addHubFlags(fs)
	since := fs.Duration("since", time.Hour, "show history from this long ago (0 = only new transitions)")
	kind := fs.String("kind", "", "only this alert kind")
	noFollow := fs.Bool("no-follow", false, "print the history and exit")
	events := fs.Bool("events", false, "also print the one-shot events settle publishes (gap, fenced, exception)")
	asJSON := fs.Bool("json", false, "one JSON object per line (the stored transition)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"tally alerts tail takes no arguments"}
	}
	nc, js, subj, err := hf.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	filter := subj.Prefix + ".alert.>"
	if *kind != "" {
		filter = subj.Alert(*kind)
	}
	// From a start time even for --since 0: if the hub restarts before the
	// first transition arrives, the ordered consumer is recreated from the
	// same time and misses nothing stored meanwhile (deliver-new would).
	start := time.Now().Add(-*since)
	cc := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
		// nats.go leaves an ordered consumer on the server for 5 minutes after
		// its client is gone; a script (or a test) reading with --no-follow in
		// a loop would pile up consumers to the stream's limit (1,000).
		InactiveThreshold: 30 * time.Second}
	if *noFollow {
		cc.InactiveThreshold = 5 * time.Second
	}
	var stream jetstream.Stream
	for {
		stream, err = js.Stream(ctx, alerts.StreamName(subj))
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) || *noFollow {
			return fmt.Errorf("stream %s: %w", alerts.StreamName(subj), err)
		}
		fmt.Fprintf(stderr, "tally: no %s stream yet; waiting for a node to create it\n", alerts.StreamName(subj))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	c, err := stream.OrderedConsumer(ctx, cc)
	if err != nil {
		return err
	}
	print := func(m jetstream.Msg) error {
		a, ok, err := alerts.Decode(subj, m.Subject(), m.Headers(), m.Data())
		if err != nil {
			fmt.Fprintln(stderr, "tally:", err)
			return nil
		}
		switch {
		case ok && *asJSON:
			return json.NewEncoder(stdout).Encode(a)
		case ok:
			_, err = fmt.Fprintln(stdout, a.Line())
		case *events && *asJSON:
			_, err = fmt.Fprintf(stdout, "{\"event\":%q,\"body\":%s}\n", a.Kind, m.Data())
		case *events:
			md, _ := m.Metadata()
			at := time.Now()
			if md != nil {
				at = md.Timestamp
			}
			_, err = fmt.Fprintf(stdout, "%s EVENT    %-16s %s\n", at.UTC().Format(time.RFC3339), a.Kind, m.Data())
		}
		return err
	}
	if *noFollow {
		for {
			batch, err := c.FetchNoWait(256)
			if err != nil {
				return err
			}
			n := 0
			var pending uint64
			for m := range batch.Messages() {
				n++
				if md, _ := m.Metadata(); md != nil {
					pending = md.NumPending
				}
				if err := print(m); err != nil {
					return err
				}
			}
			if err := batch.Error(); err != nil {
				return err
			}
			if n == 0 || pending == 0 {
				return nil
			}
		}
	}
	it, err := c.Messages()
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return err
		}
		if err := print(m); err != nil {
			return err
		}
	}
}
