package settle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Every key of the settle index is built here, and only here.
//
// Key layout (p = partition as 4 bytes big-endian, \x00 separates strings):
//
//	m/<p>                         committed segment count (uint64 BE)
//	l/<p>                         TALLY_LEDGER stream sequence of the last message applied (uint64 BE)
//	h/<p><node>\x00<provider>     high-water edge sequence (uint64 BE)
//	d/<provider>\x00<id>          dedupRec (binary version 2, see dedupcodec.go; version 1 and JSON of earlier builds still read): permanent (provider, id) index
//	r/<n uint64 BE>               a rule-set hash that version-2 dedup records name by n (rulesets.go)
//	o/<p><provider>\x00<parent>\x00<id>  orphanRec (JSON): reversal waiting for its parent
//	b/<p><party>\x00<currency>    balance (decimal string), per partition so writers never conflict
//	s/<p>                         Counters (JSON)
//	c/<p>                         consumer start: stream sequence (uint64 BE) + TALLY_TX creation time (unix ns BE), see Node.consumer
//	x/<p><unix nanos BE><i BE>    Exception (JSON)
//	p/<statement hash, 64 hex>    id of the payout_run entry that pays the statement (paid.go)
//	y/<p>                         l/<p> (8B BE) up to which p/ keys cover every payout_run entry of partition p (paid.go)
//
// Everything but c/ and y/ is a function of the partition's messages on
// TALLY_LEDGER (docs/settle.md, "The stream is the source of truth"): a
// node rebuilds it from them. The numbers n of r/ are the order in which
// this index first met each rule set, so two indexes of the same ledger may
// number them differently; the records they decode to are the same.
const (
	pfxSegments   = "m/"
	pfxApplied    = "l/"
	pfxMark       = "h/"
	pfxDedup      = "d/"
	pfxOrphan     = "o/"
	pfxBalance    = "b/"
	pfxCounters   = "s/"
	pfxConsumer   = "c/"
	pfxException  = "x/"
	pfxRuleSet    = "r/"
	pfxPaid       = "p/"
	pfxPaidDone   = "y/"
	partitionHead = 2 + 4 // prefix and partition of a partitioned key
)

func pkey(prefix string, p uint32, rest ...string) []byte {
	return appendPKey(make([]byte, 0, 32), prefix, p, rest...)
}

// appendPKey appends pkey(prefix, p, rest...) to k.
func appendPKey(k []byte, prefix string, p uint32, rest ...string) []byte {
	k = append(k, prefix...)
	k = binary.BigEndian.AppendUint32(k, p)
	for i, r := range rest {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, r...)
	}
	return k
}

func skey(prefix string, parts ...string) []byte {
	n := len(prefix) + len(parts)
	for _, r := range parts {
		n += len(r)
	}
	k := make([]byte, 0, n) // one allocation, sized
	k = append(k, prefix...)
	for i, r := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, r...)
	}
	return k
}

func keySegments(p uint32) []byte { return pkey(pfxSegments, p) }
func keyApplied(p uint32) []byte  { return pkey(pfxApplied, p) }
func keyCounters(p uint32) []byte { return pkey(pfxCounters, p) }
func keyConsumer(p uint32) []byte { return pkey(pfxConsumer, p) }

// keyMark is the high-water mark of (edge node, provider) in partition p.
func keyMark(p uint32, node, provider string) []byte { return pkey(pfxMark, p, node, provider) }

// keyDedup is the permanent record of (provider, id); not partitioned: the
// partition is a function of the provider.
func keyDedup(provider, id string) []byte { return skey(pfxDedup, provider, id) }

// keyPaid is the payout_run paying a statement; not partitioned: every
// payout_run comes from provider _tally, so from one partition.
func keyPaid(statement string) []byte { return skey(pfxPaid, statement) }

// keyPaidDone marks partition p's p/ keys as derived from all its entries.
func keyPaidDone(p uint32) []byte { return pkey(pfxPaidDone, p) }

// appendKeyDedup appends keyDedup(provider, id) to dst: a lookup's key in a
// reused buffer.
func appendKeyDedup(dst []byte, provider, id string) []byte {
	dst = append(dst, pfxDedup...)
	dst = append(dst, provider...)
	dst = append(dst, 0)
	return append(dst, id...)
}

// keyRuleSet is the interned rule-set hash number n (rulesets.go).
func keyRuleSet(n uint64) []byte { return binary.BigEndian.AppendUint64([]byte(pfxRuleSet), n) }

func keyBalance(p uint32, party, currency string) []byte { return pkey(pfxBalance, p, party, currency) }

// parseBalanceKey is keyBalance's inverse.
func parseBalanceKey(k []byte) (p uint32, party, currency string, err error) {
	if len(k) < partitionHead+1 || string(k[:2]) != pfxBalance {
		return 0, "", "", fmt.Errorf("index: bad balance key %q", k)
	}
	rest := k[partitionHead:]
	sep := bytes.IndexByte(rest, 0)
	if sep < 0 {
		return 0, "", "", fmt.Errorf("index: bad balance key %q", k)
	}
	return binary.BigEndian.Uint32(k[2:]), string(rest[:sep]), string(rest[sep+1:]), nil
}

// keyOrphan is a reversal id of provider held for parent.
func keyOrphan(p uint32, provider, parent, id string) []byte {
	return pkey(pfxOrphan, p, provider, parent, id)
}

// appendKeyOrphanParent appends the prefix of every reversal held for
// parent to dst.
func appendKeyOrphanParent(dst []byte, p uint32, provider, parent string) []byte {
	return appendPKey(dst, pfxOrphan, p, provider, parent, "")
}

// keyOrphans is the prefix of every reversal held in partition p.
func keyOrphans(p uint32) []byte { return pkey(pfxOrphan, p) }

func keyException(p uint32, at time.Time, i int) []byte {
	k := pkey(pfxException, p)
	k = binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
	return binary.BigEndian.AppendUint64(k, uint64(i))
}

// relKey is a partitioned key without its prefix and partition (how the
// ledger message's state record names marks and orphans); absKey puts them
// back.
func relKey(k string) string                            { return k[min(len(k), partitionHead):] }
func absKey(prefix string, p uint32, rel string) []byte { return append(pkey(prefix, p), rel...) }

// dedupRel and dedupAbs do the same for the unpartitioned d/ keys.
func dedupRel(k string) string   { return strings.TrimPrefix(k, pfxDedup) }
func dedupAbs(rel string) []byte { return append([]byte(pfxDedup), rel...) }

func ptr[T any](v T) *T { return &v }
