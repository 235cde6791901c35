package store

import (
	"fmt"
	"os"
)

// ForEachEntry calls fn with every entry of every partition in ledgerDir, in
// partition and leaf order. It parses each segment strictly but checks no
// hashes or signatures: that is Verify's job. A ledger directory that does not
// exist yet has no entries. Safe to run while a node appends (segment files
// appear whole, by rename).
func ForEachEntry(ledgerDir string, fn func(Entry) error) error {
	ps, err := listPartitions(ledgerDir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range ps {
		dir := partitionDir(ledgerDir, p)
		n, _, err := listSegments(dir, p)
		if err != nil {
			return err
		}
		for s := uint64(1); s <= n; s++ {
			b, err := readFileMax(segmentPath(dir, s), MaxSegmentBytes)
			if err != nil {
				return fmt.Errorf("read partition %d segment %d: %w", p, s, err)
			}
			_, entries, err := DecodeSegment(b)
			if err != nil {
				return fmt.Errorf("partition %d segment %d: %w", p, s, err)
			}
			for _, e := range entries {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
