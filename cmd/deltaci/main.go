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
	code := cli.Run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
