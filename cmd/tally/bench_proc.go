package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// procFigures are the Linux /proc figures of this process that show a soak's
// mechanisms: what it wrote to disk and what its resident set is made of.
// Elsewhere (no /proc) they are zero.
type procFigures struct {
	WriteBytes int64 // /proc/self/io write_bytes: bytes this process caused to be written to storage
	RSSAnon    int64 // /proc/self/status RssAnon: heap, stacks, Badger's memtables and caches
	RSSFile    int64 // RssFile: mmapped file pages touched (Badger SSTs, value logs, memtable logs), page cache the kernel can drop
}

func readProc() procFigures {
	var p procFigures
	field := func(path, name string, mult int64) int64 {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(name+":"))
			if !ok {
				continue
			}
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			n, _ := strconv.ParseInt(string(f[0]), 10, 64)
			return n * mult
		}
		return 0
	}
	p.WriteBytes = field("/proc/self/io", "write_bytes", 1)
	p.RSSAnon = field("/proc/self/status", "RssAnon", 1024)
	p.RSSFile = field("/proc/self/status", "RssFile", 1024)
	return p
}
