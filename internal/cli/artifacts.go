package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/artifact/blobstore/s3"
	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/gitx"
)

// RunArtifactStore is the entry point of the standalone artifactstore
// binary: the same commands as "deltaci artifacts", with defaults in the
// current directory instead of the repository's .deltaci/.
func RunArtifactStore(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) int {
	e := env{vars: environ, stdout: stdout, stderr: stderr}
	return execute(ctx, newArtifactStoreRoot(e), args, stdout, stderr)
}

// newArtifactStoreRoot is the command tree of the artifactstore binary.
func newArtifactStoreRoot(e env) *cobra.Command {
	root := newArtifactsCmd(e, "artifactstore", true)
	root.SilenceUsage, root.SilenceErrors = true, true
	root.AddCommand(newVersionCmd(e, "artifactstore"))
	return root
}

// artifactFlags are the settings every artifact command shares.
type artifactFlags struct {
	database   string
	store      string
	server     string
	token      string
	s3Endpoint string
	stageDir   string
	actor      string
	json       bool
	standalone bool
	// checkpoints is how a store opened here signs and checks its
	// checkpoints (set by the commands that use them).
	checkpoints eventlog.CheckpointConfig
}

func newArtifactsCmd(e env, use string, standalone bool) *cobra.Command {
	f := &artifactFlags{standalone: standalone}
	prog := "deltaci " + use
	if standalone {
		prog = use
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: "The content-addressed artifact store",
		Long: `A content-addressed artifact store: blobs named by their digest, manifests
that list a tree of files, refs (namespace/name:tag) that point at manifests,
retention policies, garbage collection and a hash-chained event log.

Every command works on a database (--database: an SQLite file or a postgres://
URL) and a blob store (--store: a directory or s3://bucket/prefix), or through
a running server with --server URL.`,
		Example: `  ` + prog + ` push ./dist --ref outputs/build:v1
  ` + prog + ` pull outputs/build:v1 ./restored
  ` + prog + ` --store s3://artifacts/ci --database postgres://ci@db/ci --s3-endpoint https://s3.amazonaws.com ls outputs`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.database, "database", "", "metadata database: SQLite file or postgres:// URL (env ARTIFACTSTORE_DATABASE)")
	pf.StringVar(&f.store, "store", "", "blob store: a directory or s3://bucket/prefix (env ARTIFACTSTORE_STORE)")
	serverEnv, tokenEnv := "env ARTIFACTSTORE_SERVER", "env ARTIFACTSTORE_TOKEN"
	if !standalone {
		serverEnv += ", or DELTACI_SERVER's /store when no --database or --store is set"
		tokenEnv += " or DELTACI_API_TOKEN"
	}
	pf.StringVar(&f.server, "server", "", "act through a running artifactstore serve at this URL, or a deltaci server's at <url>/store ("+serverEnv+")")
	pf.StringVar(&f.token, "api-token", "", "with --server: the bearer token the server requires, such as a deltaci server's API token ("+tokenEnv+")")
	pf.StringVar(&f.s3Endpoint, "s3-endpoint", "", "S3 endpoint URL for s3:// stores (env ARTIFACTSTORE_S3_ENDPOINT; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	pf.StringVar(&f.stageDir, "stage-dir", "", "local directory for resumable uploads in progress (env ARTIFACTSTORE_STAGE_DIR; default: in the store directory, or beside an SQLite database, or the system temp dir)")
	pf.StringVar(&f.actor, "as", "", "who the audit trail records for writes to a local store (env ARTIFACTSTORE_ACTOR; default $USER); a server records its API token's name instead")
	pf.BoolVar(&f.json, "json", false, "print JSON for scripts")
	cmd.AddCommand(
		newPushCmd(e, f), newPullCmd(e, f), newStatCmd(e, f), newLsCmd(e, f), newFindMissingCmd(e, f),
		newTagCmd(e, f), newRetentionCmd(e, f), newGCCmd(e, f), newReplayCmd(e, f), newCheckpointCmd(e, f), newAuditCmd(e, f),
		newServeCmd(e, f), newTokensCmd(e, f, prog), newArtifactMigrateCmd(e, f, prog), newScrubCmd(e, f, prog),
	)
	return cmd
}

func (f *artifactFlags) resolve(ctx context.Context, e env) error {
	// Explicit local settings win over a server named in the environment.
	if f.server == "" && f.database == "" && f.store == "" {
		f.server = e.get("ARTIFACTSTORE_SERVER")
	}
	if f.token == "" {
		f.token = e.get("ARTIFACTSTORE_TOKEN")
	}
	if f.token == "" && !f.standalone {
		f.token = e.get("DELTACI_API_TOKEN")
	}
	if f.database == "" {
		f.database = e.get("ARTIFACTSTORE_DATABASE")
	}
	if f.database == "" && !f.standalone {
		f.database = e.get("DELTACI_DATABASE")
	}
	if f.store == "" {
		f.store = e.get("ARTIFACTSTORE_STORE")
	}
	if f.stageDir == "" {
		f.stageDir = e.get("ARTIFACTSTORE_STAGE_DIR")
	}
	if f.s3Endpoint == "" {
		f.s3Endpoint = e.get("ARTIFACTSTORE_S3_ENDPOINT")
	}
	if f.actor == "" {
		f.actor = e.get("ARTIFACTSTORE_ACTOR")
	}
	if f.actor == "" {
		f.actor = e.get("USER")
	}
	if f.actor == "" {
		f.actor = "anonymous"
	}
	// deltaci artifacts, given nothing else, uses the store of the server
	// the other commands talk to.
	if f.server == "" && f.database == "" && f.store == "" && !f.standalone {
		if srv := e.get("DELTACI_SERVER"); srv != "" {
			f.server = strings.TrimRight(srv, "/") + "/store"
		}
	}
	if f.server != "" || (f.database != "" && f.store != "") {
		return nil
	}
	// Defaults: the current directory for the standalone binary, the
	// repository's .deltaci/ for deltaci artifacts.
	base := "."
	if !f.standalone {
		top, err := gitx.TopLevel(ctx, ".")
		if err != nil {
			return usage(fmt.Errorf("not inside a git repository: pass --database and --store"))
		}
		base = filepath.Join(top, gitx.StateDir)
		if f.database == "" {
			f.database = filepath.Join(base, "state.db")
		}
		if f.store == "" {
			f.store = filepath.Join(base, "store")
		}
		return nil
	}
	if f.database == "" {
		f.database = filepath.Join(base, "artifacts.db")
	}
	if f.store == "" {
		f.store = filepath.Join(base, "artifacts")
	}
	return nil
}

// openLocal opens the store the flags name; log (nil: none) gets the
// store's log lines.
func (f *artifactFlags) openLocal(ctx context.Context, e env, log *slog.Logger) (*open.Store, error) {
	if err := f.resolve(ctx, e); err != nil {
		return nil, err
	}
	cfg := open.Config{Database: f.database, Store: f.store, StageDir: f.stageDir, Log: log}
	if strings.HasPrefix(f.store, "s3://") {
		if f.s3Endpoint == "" {
			return nil, usage(fmt.Errorf("--store %s needs --s3-endpoint (or ARTIFACTSTORE_S3_ENDPOINT), e.g. https://s3.amazonaws.com", f.store))
		}
		cfg.S3 = s3.EnvCredentials(s3.Options{Endpoint: f.s3Endpoint, Region: e.get("AWS_REGION")}, e.get)
	}
	s, err := open.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.Meta.UseCheckpoints(f.checkpoints)
	return s, nil
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress reports transferred bytes on stderr when it is a terminal.
type progress struct {
	w     io.Writer
	on    bool
	total int64
	done  int64
	last  time.Time
	verb  string
}

func newProgress(w io.Writer, verb string, total int64) *progress {
	return &progress{w: w, on: isTerminal(w), total: total, verb: verb}
}

func (p *progress) add(n int64) {
	p.done += n
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%s %s / %s", p.verb, human(p.done), human(p.total))
}

func (p *progress) finish() {
	if p.on && p.done > 0 {
		fmt.Fprintf(p.w, "\r%s %s / %s\n", p.verb, human(p.done), human(p.total))
	}
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func parseDigests(args []string) ([]digest.Digest, error) {
	ds := make([]digest.Digest, 0, len(args))
	for _, a := range args {
		d, err := digest.Parse(a)
		if err != nil {
			return nil, usage(err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

func refJSON(r eventlog.Ref) map[string]any {
	return map[string]any{
		"ref": r.String(), "manifest": r.Manifest.String(), "pinned": r.Pinned,
		"created_at": eventlog.FormatTime(r.CreatedAt), "updated_at": eventlog.FormatTime(r.UpdatedAt),
	}
}

// redactURL hides a password in a database URL before it is printed.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}
