// Command scaler is the Runnerscaler daemon and its tools. Wiring only: every
// decision lives in internal packages.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // time zones for pool schedules, even in a minimal container

	"github.com/runnerscaler/runnerscaler/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli(ctx, os.Args[1:], config.EnvironFromOS(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
