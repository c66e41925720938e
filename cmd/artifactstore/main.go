// Command artifactstore is the content-addressed artifact store on its own:
// the same commands as "deltaci artifacts".
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
	code := cli.RunArtifactStore(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
