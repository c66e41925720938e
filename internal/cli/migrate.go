package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/gitx"
)

func newMigrateCmd(e env) *cobra.Command {
	var database string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations",
		Example: `  deltaci migrate                       # .deltaci/state.db of this repository
  deltaci migrate --database postgres://deltaci@db:5432/deltaci`,
		Args: checkArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if database == "" {
				database = e.get("DELTACI_DATABASE")
			}
			if err := fromEnvFiles(e, &database, "DELTACI_DATABASE"); err != nil {
				return err
			}
			if database == "" {
				top, err := gitx.TopLevel(ctx, ".")
				if err != nil {
					return usage(fmt.Errorf("no --database given and not inside a git repository: pass --database PATH or a postgres:// URL"))
				}
				database = filepath.Join(top, ".deltaci", "state.db")
			}
			applied, err := migrate(ctx, database)
			if err != nil {
				return err
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
	cmd.Flags().StringVar(&database, "database", "", "SQLite file path or postgres:// URL (env DELTACI_DATABASE; default .deltaci/state.db in the repository)")
	return cmd
}
