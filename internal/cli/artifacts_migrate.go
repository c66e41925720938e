package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/artifact/open"
)

func newArtifactMigrateCmd(e env, f *artifactFlags, prog string) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the store's pending database migrations and exit",
		Long: `Migrate creates or upgrades the store's tables in --database (an SQLite file or
a postgres:// URL) and exits. It touches no blob store. Every command and serve
also migrate when they open the database; run migrate to upgrade the schema
before servers of a new version start, or to check that nothing is pending.`,
		Example: `  ` + prog + ` migrate
  ` + prog + ` migrate --database postgres://artifacts@db:5432/artifacts`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := f.resolve(ctx, e); err != nil {
				return err
			}
			if f.server != "" {
				return usage(errors.New("migrate works on a database: pass --database (it does not go through --server)"))
			}
			applied, err := open.Migrate(ctx, f.database)
			if err != nil {
				return err
			}
			if f.json {
				if applied == nil {
					applied = []int64{}
				}
				return printJSON(e.stdout, map[string]any{"database": redactURL(f.database), "applied": applied})
			}
			if len(applied) == 0 {
				fmt.Fprintln(e.stdout, "database is up to date")
				return nil
			}
			for _, v := range applied {
				fmt.Fprintf(e.stdout, "applied migration %05d\n", v)
			}
			return nil
		},
	}
}
