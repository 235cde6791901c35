package rules

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid marks a rule source or canonical encoding that does not parse or
// validate. The error is a *ParseError listing every problem.
var ErrInvalid = errors.New("invalid rules")

// ErrNoVersion means no rule version is in force at the transaction's time:
// every version of the book is effective later.
var ErrNoVersion = errors.New("no rule version in force")

// ErrNoRule means the version in force has no rule whose conditions match the
// transaction. Add a catch-all rule (no conditions) last to avoid it.
var ErrNoRule = errors.New("no rule matches")

// ErrReversal means a rollback or refund was given to Split. Reversals replay
// the parent's recorded shares with Reverse instead.
var ErrReversal = errors.New("reversal cannot be split by rules")

// ErrInvalidTx means the transaction cannot be split: unknown type, negative
// amount, more decimals than its currency, or no provider.
var ErrInvalidTx = errors.New("transaction cannot be split")

// ErrOverReversal means a reversal is larger than what is left of its parent.
var ErrOverReversal = errors.New("reversal exceeds its parent")

// Problem is one thing wrong with a rule source.
type Problem struct {
	Pos  string // file:line:column, or a path inside a canonical encoding
	Key  string // the attribute or block at fault
	Msg  string // what is wrong, with the bad value
	Hint string // how to fix it
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Pos)
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString(" (")
		b.WriteString(p.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// ParseError lists every problem found in one or more rule sources. It
// matches ErrInvalid with errors.Is.
type ParseError struct {
	Problems []Problem
}

func (e *ParseError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *ParseError) Is(target error) bool { return target == ErrInvalid }
