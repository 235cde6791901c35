// Package badgerlog adapts an hclog.Logger to badger.Logger, for every Badger
// database tally opens (the ingest WAL and dead-letter store, the settle
// index), and opens them (Open: the repair of a value log torn at creation). Badger's info lines (tables opened, compactions) are debug noise
// for an operator, so they go to Debug, and its debug lines to Trace.
package badgerlog

import (
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
)

// New returns a badger.Logger writing to l.
func New(l hclog.Logger) badger.Logger { return logger{l} }

type logger struct{ l hclog.Logger }

func (b logger) Errorf(f string, a ...any)   { b.l.Error(line(f, a)) }
func (b logger) Warningf(f string, a ...any) { b.l.Warn(line(f, a)) }
func (b logger) Infof(f string, a ...any)    { b.l.Debug(line(f, a)) }
func (b logger) Debugf(f string, a ...any)   { b.l.Trace(line(f, a)) }

// line formats one Badger message without the newline Badger ends it with.
func line(f string, a []any) string { return strings.TrimRight(fmt.Sprintf(f, a...), "\n") }
