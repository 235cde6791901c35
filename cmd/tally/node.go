package main

import (
	"context"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"

	"github.com/tally-mesh/tally/config"
	"github.com/tally-mesh/tally/nodes"
)

func newLogger(level string, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "tally", Level: hclog.LevelFromString(level), Output: w})
}

func cmdNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("node", stdout, stderr)
	path := fs.String("config", "", "HCL config file (see config/examples/)")
	check := fs.Bool("check-config", false, "validate the config and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"node needs --config FILE"}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok (roles %v, data %s)\n", *path, cfg.Roles, cfg.DataDir)
		return nil
	}
	return nodes.Run(ctx, cfg, newLogger(cfg.LogLevel, stderr))
}
