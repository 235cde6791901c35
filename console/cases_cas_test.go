package console

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tally-mesh/tally/internal/natstest"
)

// TestWorkflowStoreCAS: the compare-and-set itself, on a real bucket: of
// writers racing from one revision exactly one wins and the others get
// errStale; a create of an existing key is stale too.
func TestWorkflowStoreCAS(t *testing.T) {
	ns := natstest.Run(t)
	js, err := jetstream.New(natstest.Connect(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv, err := OpenCasesBucket(ctx, js, "tally", 1)
	if err != nil {
		t.Fatal(err)
	}
	w := &workflow{WorkflowOptions: WorkflowOptions{KV: kv}}
	rev, err := w.store(ctx, caseKey("x-1-2-3"), 0, Case{ID: "x-1-2-3", State: StateProposed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store(ctx, caseKey("x-1-2-3"), 0, Case{ID: "x-1-2-3"}); !errors.Is(err, errStale) {
		t.Fatalf("second create: %v", err)
	}
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = w.store(ctx, caseKey("x-1-2-3"), rev, Case{ID: "x-1-2-3", State: StateApproved})
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, errStale):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d racing writers won, want exactly 1", won, writers)
	}
}
