//go:build !unix

package main

import (
	"io/fs"
	"path/filepath"
)

// cpuSeconds is not measured on this platform.
func cpuSeconds() float64 { return 0 }

// maxRSSBytes is not measured on this platform.
func maxRSSBytes() int64 { return 0 }

// diskBytes sums file sizes (apparent, not allocated) under dir.
func diskBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
