// Package config owns a node's configuration: the HCL file shape (File), the
// defaults, and the validated runtime values (Config) the rest of tally uses.
//
// Values are merged in one documented order: built-in defaults, then the HCL
// file, then command-line flags. Load reports every problem at once, each
// naming file:line, the key, the bad value and how to fix it. Unknown keys are
// errors. Every limit tally enforces has a key here with a sane default.
package config
