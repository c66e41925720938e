// Command deltaci is the Delta CI binary: the embedded runner, the server,
// the runner agent and the maintenance commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/deltaci/deltaci/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A closed pipe on stdout (deltaci run | head) must not kill the run
	// midway; writes then fail and are dropped. Notify, not Ignore: an
	// ignored signal would be inherited by the jobs.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	code := cli.Run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
