package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// scrubPoll is how often scrub --server asks the server how its scrub goes.
const scrubPoll = time.Second

func newScrubCmd(e env, f *artifactFlags, prog string) *cobra.Command {
	rate := byteSize(registry.DefaultScrubRate)
	var limit int
	var since string
	var status bool
	cmd := &cobra.Command{
		Use:   "scrub",
		Short: "Check every stored blob against its digest and quarantine the corrupt ones",
		Long: `Scrub reads every stored blob, at most --rate bytes a second, and checks it
against its digest. A corrupt blob (a failing disk, an object changed behind the
store's back) is quarantined: its bytes move to the blob store's quarantine/
directory or prefix, where nothing serves them, and the event log records a
blob.quarantined event (the digest, the first damaged chunk, the verdict, who
scrubbed) and blob.gone. From then on reads of the blob answer not found,
find-missing lists it, and pushing the files that hold it again uploads it and
repairs it. Scrub prints each corrupt blob and exits 1 when it found any.

With --server the server runs the scrub in the background and this command
follows it until it ends; Ctrl-C stops following, not the scrub. A server
already scrubbing (on its schedule, see serve --scrub-interval) is followed
instead. --status only shows the server's running or last scrub.`,
		Example: `  ` + prog + ` scrub
  ` + prog + ` scrub --rate 200MiB --since 24h
  ` + prog + ` --server https://store.example.com scrub --status`,
		Args: checkArgs(cobra.NoArgs),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usage(fmt.Errorf("--limit %d: give 0 (every blob) or more", limit))
			}
			return nil
		},
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, _ []string) error {
			ctx := cmd.Context()
			sb, ok := b.(scrubBackend)
			if !ok {
				return core.E(core.KindInternal, "scrub", "this backend cannot scrub")
			}
			opts := registry.ScrubOptions{Rate: int64(rate), Limit: limit}
			if since != "" {
				t, err := eventlog.ParseSince(since, time.Now())
				if err != nil {
					return usage(err)
				}
				opts.Since = t
			}
			p := &scrubProgress{w: e.stderr, on: isTerminal(e.stderr)}
			var st registry.ScrubStatus
			var err error
			if status {
				st, err = sb.scrubStatus(ctx)
			} else {
				st, err = sb.scrub(ctx, e, f.actor, opts, p.show)
			}
			p.finish()
			if err != nil {
				return err
			}
			return printScrub(e.stdout, f.json, st)
		}),
	}
	fl := cmd.Flags()
	fl.Var(&rate, "rate", "read at most this many bytes a second, such as 50MiB or 1GiB, or none for no limit")
	fl.IntVar(&limit, "limit", 0, "stop after checking this many blobs (0: every blob)")
	fl.StringVar(&since, "since", "", "check only blobs written since an RFC 3339 time or a duration ago (24h)")
	fl.BoolVar(&status, "status", false, "with --server: show the server's running or last scrub, start none")
	return cmd
}

// scrubBackend is a backend that can scrub: every one does, in its way.
type scrubBackend interface {
	// scrub runs one scrub, calling progress as it goes, and returns how
	// it ended; a scrub that stopped on an error is returned with it.
	scrub(ctx context.Context, e env, actor string, opts registry.ScrubOptions, progress func(registry.ScrubReport)) (registry.ScrubStatus, error)
	// scrubStatus returns the running or last scrub.
	scrubStatus(ctx context.Context) (registry.ScrubStatus, error)
}

// scrub runs the scrub here, on the store's database and blob store.
func (l localBackend) scrub(ctx context.Context, _ env, actor string, opts registry.ScrubOptions, progress func(registry.ScrubReport)) (registry.ScrubStatus, error) {
	opts.Progress = progress
	rep, err := l.s.Registry.Scrub(ctx, actor, opts)
	return registry.ScrubStatus{State: registry.ScrubDone, Actor: actor, Options: opts, Report: rep, Finished: time.Now()}, err
}

func (l localBackend) scrubStatus(context.Context) (registry.ScrubStatus, error) {
	return registry.ScrubStatus{}, usage(errors.New("--status shows a server's scrub: give --server"))
}

// scrub starts a scrub on the server, or finds one running, and follows
// it to its end.
func (r remoteBackend) scrub(ctx context.Context, e env, _ string, opts registry.ScrubOptions, progress func(registry.ScrubReport)) (registry.ScrubStatus, error) {
	st, err := r.c.StartScrub(ctx, opts)
	if core.KindOf(err) == core.KindConflict {
		if st, err = r.c.ScrubStatus(ctx); err == nil {
			fmt.Fprintf(e.stderr, "a scrub by %s, started at %s, is running on the server: following it\n",
				st.Actor, eventlog.FormatTime(st.Report.Started))
		}
	}
	t := time.NewTicker(scrubPoll)
	defer t.Stop()
	for err == nil && st.State == registry.ScrubRunning {
		progress(st.Report)
		select {
		case <-ctx.Done():
			return st, core.Wrap(core.KindCanceled, "scrub", fmt.Errorf("stopped following; the scrub goes on on the server (scrub --status shows it): %w", ctx.Err()))
		case <-t.C:
		}
		st, err = r.c.ScrubStatus(ctx)
	}
	if err == nil && st.Err != nil {
		err = core.E(core.KindInternal, "scrub", "the scrub on the server failed: %v", st.Err)
	}
	return st, err
}

func (r remoteBackend) scrubStatus(ctx context.Context) (registry.ScrubStatus, error) {
	return r.c.ScrubStatus(ctx)
}

// printScrub prints a scrub's outcome: each corrupt blob, a summary and
// how to repair. A scrub that found corrupt blobs is an exit 1.
func printScrub(w io.Writer, asJSON bool, st registry.ScrubStatus) error {
	rep := st.Report
	if asJSON {
		if err := printJSON(w, httpapi.ScrubBody(st)); err != nil {
			return err
		}
	} else {
		for _, c := range rep.Corrupt {
			fmt.Fprintf(w, "corrupt %s (%s): %s; quarantined to %s\n", c.Digest, human(c.Size), damageOf(c), orGone(c.Quarantine))
			for _, f := range c.Files {
				fmt.Fprintf(w, "  held by %s as %s\n", f.Ref, f.Path)
			}
		}
		took := rep.Took
		if !st.Finished.IsZero() {
			took = st.Finished.Sub(rep.Started)
		}
		speed := ""
		if s := took.Seconds(); s > 0 {
			speed = ", " + human(int64(float64(rep.Bytes)/s)) + "/s"
		}
		state := "scrubbed"
		if st.State == registry.ScrubRunning {
			state = "scrubbing, so far"
		}
		fmt.Fprintf(w, "%s %s (%s) in %s%s: %d corrupt%s\n", state, plural(rep.Blobs, "blob"), human(rep.Bytes),
			took.Round(time.Millisecond), speed, len(rep.Corrupt), scrubScope(rep))
	}
	if n := len(rep.Corrupt); n > 0 && st.State != registry.ScrubRunning {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%s corrupt, quarantined; to repair: %s", plural(n, "blob"), registry.RepairHint)}
	}
	return nil
}

// damageOf says where a corrupt blob is damaged.
func damageOf(c registry.CorruptBlob) string {
	if c.Chunk < 0 {
		return "its bytes do not hash to its digest"
	}
	start := c.Chunk * digest.ChunkSize
	return fmt.Sprintf("chunk %d (bytes %d-%d) is damaged", c.Chunk, start, min(start+digest.ChunkSize, c.Size)-1)
}

func orGone(where string) string {
	if where == "" {
		return "nowhere (GC deleted the bytes first)"
	}
	return where
}

func scrubScope(rep registry.ScrubReport) string {
	s := ""
	if rep.Vanished > 0 {
		s += fmt.Sprintf("; %d deleted before their turn", rep.Vanished)
	}
	if rep.Skipped > 0 {
		s += fmt.Sprintf("; %d older skipped", rep.Skipped)
	}
	if rep.Partial {
		s += " (a partial scrub)"
	}
	return s
}

// scrubProgress shows how far a scrub got, on a terminal.
type scrubProgress struct {
	w     io.Writer
	on    bool
	shown bool
	last  time.Time
}

func (p *scrubProgress) show(rep registry.ScrubReport) {
	if !p.on || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last, p.shown = time.Now(), true
	fmt.Fprintf(p.w, "\rscrubbed %s (%s), %d corrupt ", plural(rep.Blobs, "blob"), human(rep.Bytes), len(rep.Corrupt))
}

func (p *scrubProgress) finish() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

// scrubFlags are the scheduled scrub's settings of a server.
type scrubFlags struct {
	interval time.Duration
	rate     byteSize
}

func (s *scrubFlags) register(fl *pflag.FlagSet) {
	s.rate = byteSize(registry.DefaultScrubRate)
	fl.DurationVar(&s.interval, "scrub-interval", registry.DefaultScrubInterval,
		"scrub every stored blob this often, on the leader, and quarantine the corrupt ones; 0 scrubs only when asked (POST /scrub)")
	fl.Var(&s.rate, "scrub-rate", "how many bytes a second a scheduled scrub reads, such as 50MiB, or none for no limit")
}

// check refuses settings no schedule can have.
func (s *scrubFlags) check() error {
	if s.interval < 0 {
		return usage(fmt.Errorf("--scrub-interval %s: give 0 (no schedule) or a positive duration", s.interval))
	}
	return nil
}

// scrubber returns the server's Scrubber, scheduled as the flags say.
func (s *scrubFlags) scrubber(reg *registry.Registry, leader eventlog.Leader, log *slog.Logger) *registry.Scrubber {
	return &registry.Scrubber{Registry: reg, Interval: s.interval, Rate: int64(s.rate), Leader: leader, Log: log}
}
