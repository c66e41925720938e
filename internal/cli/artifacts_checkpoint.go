package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/core"
)

// Checkpoints: the store signs its log's head with an Ed25519 key, keeps
// every checkpoint in store_checkpoints and the newest in a file beside the
// key (see eventlog.CheckpointConfig). The standalone store's key is
// checkpoint.key in its local directory, created on first start like a
// deltaci server's signing key; a deltaci server signs with its signing key.

const (
	checkpointKeyName  = "checkpoint.key"
	checkpointFileName = "checkpoint.json"
)

// checkpointFlags are the checkpoint settings of serve, replay and
// checkpoint.
type checkpointFlags struct {
	key      string        // --checkpoint-key: the seed file
	public   []string      // --checkpoint-public-key: more trusted keys
	interval time.Duration // serve: --checkpoint-interval
	serve    bool          // registered for serve
}

func (c *checkpointFlags) register(fl *pflag.FlagSet, serve bool) {
	c.serve = serve
	what := "file holding the hex Ed25519 seed whose public half signed the checkpoints (env ARTIFACTSTORE_CHECKPOINT_KEY; default " +
		checkpointKeyName + " in the store directory, or beside an SQLite database, when it exists); the checkpoint file beside it is checked too"
	if serve {
		what = "file holding the hex Ed25519 seed that signs checkpoints of the event log, created if missing, mode 0600 (env ARTIFACTSTORE_CHECKPOINT_KEY; default " +
			checkpointKeyName + " in the store directory, or beside an SQLite database; with S3 and PostgreSQL none, and no checkpoints without one); the newest checkpoint is kept beside it in " + checkpointFileName
		fl.DurationVar(&c.interval, "checkpoint-interval", eventlog.DefaultCheckpointInterval, "how often to checkpoint the event log's head when it moved")
	}
	fl.StringVar(&c.key, "checkpoint-key", "", what)
	fl.StringArrayVar(&c.public, "checkpoint-public-key", nil, "hex Ed25519 public key whose checkpoints are genuine too, such as the key before a rotation (repeatable)")
}

// localDir is where a store keeps its local files when nothing says
// otherwise: its directory, or beside its SQLite database. It is empty for
// S3 with PostgreSQL, which have nothing local.
func (f *artifactFlags) localDir() string {
	switch {
	case !strings.HasPrefix(f.store, "s3://"):
		return f.store
	case !open.IsPostgres(f.database):
		return filepath.Dir(strings.TrimPrefix(f.database, "sqlite://"))
	}
	return ""
}

// configure sets f.checkpoints from the flags. A signer (serve) creates its
// key when missing; a verifier reads the key only for its public half, and
// only when it exists.
func (c *checkpointFlags) configure(e env, f *artifactFlags, sign bool) error {
	if c.key == "" {
		c.key = e.get("ARTIFACTSTORE_CHECKPOINT_KEY")
	}
	explicit := c.key != ""
	if !explicit && f.server == "" {
		if dir := f.localDir(); dir != "" {
			c.key = filepath.Join(dir, checkpointKeyName)
		}
	}
	if c.serve && c.interval <= 0 {
		return usage(fmt.Errorf("--checkpoint-interval %s: must be positive", c.interval))
	}
	var cfg eventlog.CheckpointConfig
	for _, p := range c.public {
		k, err := eventlog.ParsePublicKey(p)
		if err != nil {
			return usage(fmt.Errorf("--checkpoint-public-key: %w", err))
		}
		cfg.Trusted = append(cfg.Trusted, k)
	}
	if c.key != "" {
		if sign && !explicit {
			// The default location is created with the store.
			if err := os.MkdirAll(filepath.Dir(c.key), 0o700); err != nil {
				return fmt.Errorf("--checkpoint-key %s: %w", c.key, err)
			}
		}
		seed, err := readSeed("--checkpoint-key", c.key, sign)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !explicit:
			// A store that never served has no key: nothing to check with.
		case err != nil && !sign:
			return usage(err)
		case err != nil:
			return err
		case sign:
			cfg.Key = ed25519.NewKeyFromSeed(seed)
		default:
			cfg.Trusted = append(cfg.Trusted, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
		}
		if err == nil {
			cfg.File = filepath.Join(filepath.Dir(c.key), checkpointFileName)
		}
	}
	f.checkpoints = cfg
	return nil
}

// readSeed reads a hex Ed25519 seed from path. With create, a missing file
// is made first with a fresh seed, mode 0600. A missing file otherwise is
// an error that wraps fs.ErrNotExist.
func readSeed(flag, path string, create bool) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		seed := make([]byte, ed25519.SeedSize)
		_, _ = rand.Read(seed)
		b = []byte(hex.EncodeToString(seed) + "\n")
		// O_EXCL: two servers starting together keep one key.
		fh, ferr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if ferr == nil {
			_, ferr = fh.Write(b)
			if cerr := fh.Close(); ferr == nil {
				ferr = cerr
			}
		}
		if errors.Is(ferr, fs.ErrExist) {
			b, err = os.ReadFile(path)
		} else if ferr != nil {
			return nil, fmt.Errorf("%s %s: %w", flag, path, ferr)
		} else {
			err = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, usage(fmt.Errorf("%s %s: not a hex seed: %w", flag, path, err))
	}
	if len(seed) != ed25519.SeedSize {
		return nil, usage(fmt.Errorf("%s %s: the seed is %d bytes, want %d", flag, path, len(seed), ed25519.SeedSize))
	}
	return seed, nil
}

// startCheckpointer checkpoints meta's log every interval while leader
// leads (nil: always), when meta has a key; nil otherwise. Stop it after the
// HTTP server, before the store closes.
func startCheckpointer(ctx context.Context, meta *eventlog.Store, interval time.Duration, leader eventlog.Leader, log *slog.Logger) *eventlog.Checkpointer {
	if !meta.CanCheckpoint() {
		log.Warn("no checkpoint key (--checkpoint-key): the event log's head is not checkpointed, so removing its last events would go unseen")
		return nil
	}
	c := &eventlog.Checkpointer{Store: meta, Interval: interval, Leader: leader, Log: log}
	c.Start(ctx)
	return c
}

// verifyFlags are replay --verify's checks beyond the chain.
type verifyFlags struct {
	checkpointFlags
	expectHead  string
	checkpoints []string
}

func (v *verifyFlags) register(fl *pflag.FlagSet) {
	v.checkpointFlags.register(fl, false)
	fl.StringVar(&v.expectHead, "expect-head", "", "SEQ:HASH the log must end at exactly, as an earlier replay --verify printed it")
	fl.StringArrayVar(&v.checkpoints, "checkpoint", nil, "file holding a checkpoint kept outside the store (the checkpoint command's output): the log must reach it with the same hash (repeatable)")
}

// options reads the flags into verification options; the store's own
// keys and checkpoint file come with f.checkpoints.
func (v *verifyFlags) options(e env, f *artifactFlags) (eventlog.VerifyOptions, error) {
	var opts eventlog.VerifyOptions
	if v.expectHead != "" {
		h, err := eventlog.ParseHead(v.expectHead)
		if err != nil {
			return opts, usage(fmt.Errorf("--expect-head: %w", err))
		}
		opts.ExpectHead = &h
	}
	for _, path := range v.checkpoints {
		b, err := os.ReadFile(path)
		if err != nil {
			return opts, usage(fmt.Errorf("--checkpoint: %w", err))
		}
		c, err := eventlog.ParseCheckpoint(b)
		if err != nil {
			return opts, usage(fmt.Errorf("--checkpoint %s: %w", path, err))
		}
		opts.Checkpoints = append(opts.Checkpoints, c)
	}
	if err := v.configure(e, f, false); err != nil {
		return opts, err
	}
	if f.server != "" {
		// The server checks with its own keys; these are trusted besides.
		opts.TrustedKeys = f.checkpoints.Trusted
		if f.checkpoints.File != "" {
			if c, ok, err := readCheckpointFile(f.checkpoints.File); err != nil {
				return opts, err
			} else if ok {
				opts.Checkpoints = append(opts.Checkpoints, c)
			}
		}
	}
	return opts, nil
}

// readCheckpointFile reads a checkpoint file when it exists.
func readCheckpointFile(path string) (eventlog.Checkpoint, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return eventlog.Checkpoint{}, false, nil
	}
	if err != nil {
		return eventlog.Checkpoint{}, false, err
	}
	c, err := eventlog.ParseCheckpoint(b)
	if err != nil {
		return eventlog.Checkpoint{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return c, true, nil
}

// checkpointLine says what the report checked, for people.
func checkpointLine(rep eventlog.ReplayReport) string {
	if rep.Checkpoints == 0 {
		return "no signed checkpoint yet: only the chain and the head were checked"
	}
	c := rep.LatestCheckpoint
	s := fmt.Sprintf("%s reached; the newest is %s", plural(int(rep.Checkpoints), "checkpoint"), c)
	if !rep.SignersChecked {
		s += "\n(signatures checked against the keys they carry only: pass --checkpoint-key or --checkpoint-public-key to check who signed)"
	}
	return s
}

func newCheckpointCmd(e env, f *artifactFlags) *cobra.Command {
	var ck checkpointFlags
	var out string
	var sign bool
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Print the event log's newest signed checkpoint, to keep outside the store",
		Long: `Checkpoint prints the newest signed checkpoint of the event log as one line of
JSON: the event's seq and hash, when it was signed, and the public key and
Ed25519 signature. A server makes one every minute while its log grows.

Keep copies somewhere the database's administrators cannot write: replay
--verify --checkpoint FILE then detects a log that no longer reaches it, even
when its last events, their checkpoints and the store's head were all removed
together.

--sign signs the current head now with the store's key (a local store only).`,
		Example: `  artifactstore checkpoint > /mnt/audit/artifacts-$(date +%F).json
  artifactstore checkpoint --out /mnt/audit/latest.json
  artifactstore replay --verify --checkpoint /mnt/audit/latest.json`,
		Args: checkArgs(cobra.NoArgs),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.resolve(cmd.Context(), e); err != nil {
				return err
			}
			if sign && f.server != "" {
				return usage(errors.New("--sign signs with a local store's key; a server signs its own checkpoints every minute"))
			}
			if err := ck.configure(e, f, sign); err != nil {
				return err
			}
			if sign && f.checkpoints.Key == nil {
				return usage(errors.New("--sign needs --checkpoint-key: a store with its blobs in S3 and its database in PostgreSQL has no default place for the key"))
			}
			return nil
		},
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, _ []string) error {
			ctx := cmd.Context()
			var c eventlog.Checkpoint
			var err error
			if local, ok := b.(localBackend); sign && ok {
				c, _, err = local.s.Meta.Checkpoint(ctx)
				if err == nil && c.Seq == 0 {
					err = core.E(core.KindNotFound, "checkpoint", "the log is empty: nothing to sign yet")
				}
			} else {
				c, err = latestCheckpoint(ctx, b)
			}
			if err != nil {
				return err
			}
			if out == "" {
				line, err := c.MarshalJSON()
				if err != nil {
					return err
				}
				_, err = e.stdout.Write(append(line, '\n'))
				return err
			}
			if err := eventlog.WriteCheckpointFile(out, c); err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			fmt.Fprintf(e.stdout, "wrote %s to %s\n", c, out)
			return nil
		}),
	}
	ck.register(cmd.Flags(), false)
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the checkpoint to this file (replaced whole) instead of standard output")
	cmd.Flags().BoolVar(&sign, "sign", false, "sign the current head now with the store's --checkpoint-key (created if missing)")
	return cmd
}

// latestCheckpoint asks the store or the server for its newest checkpoint.
func latestCheckpoint(ctx context.Context, b artifactBackend) (eventlog.Checkpoint, error) {
	switch b := b.(type) {
	case localBackend:
		return b.s.Meta.LatestCheckpoint(ctx)
	case remoteBackend:
		return b.c.LatestCheckpoint(ctx)
	}
	return eventlog.Checkpoint{}, core.E(core.KindInternal, "checkpoint", "unknown backend %T", b)
}
