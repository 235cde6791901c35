// Package examples embeds the example configs and rules, so `tally demo` runs
// from the binary alone and tests can check every example loads.
package examples

import "embed"

// FS holds the *.hcl files of this directory.
//
//go:embed *.hcl
var FS embed.FS
