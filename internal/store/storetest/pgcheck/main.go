// Command pgcheck prints one loud line when the PostgreSQL the tests use is
// unreachable, because go test hides the skip messages of passing packages.
// It exits 1 in that case, 0 otherwise.
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/deltaci/deltaci/internal/store/storetest"
)

func main() {
	base := os.Getenv("DELTACI_TEST_POSTGRES")
	if base == "" {
		base = storetest.DefaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		shown := "(unparsable URL)"
		if u, perr := url.Parse(base); perr == nil {
			shown = u.Redacted()
		}
		verdict := "SKIPPED"
		if os.Getenv("CI") == "true" {
			verdict = "going to FAIL (CI=true)"
		}
		fmt.Fprintf(os.Stderr, "!!! PostgreSQL unreachable at %s: the PostgreSQL tests are %s. Start it or set DELTACI_TEST_POSTGRES. (%v)\n", shown, verdict, err)
		os.Exit(1)
	}
	conn.Close(ctx)
}
