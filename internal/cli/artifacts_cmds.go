package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// withBackend wraps a command body that needs a backend.
func withBackend(e env, f *artifactFlags, run func(cmd *cobra.Command, b artifactBackend, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		b, err := f.backend(cmd.Context(), e)
		if err != nil {
			return err
		}
		defer b.Close()
		err = run(cmd, b, args)
		// A token refused for its scopes is a known one: no hint to give.
		var fe *httpapi.ForbiddenError
		if f.server != "" && core.KindOf(err) == core.KindUnauthorized && !errors.As(err, &fe) {
			err = fmt.Errorf("%w\n%s", err, f.tokenHint())
		}
		return err
	}
}

// tokenHint says how to give the token a refused request lacked.
func (f *artifactFlags) tokenHint() string {
	env := "ARTIFACTSTORE_TOKEN"
	if !f.standalone {
		env = "DELTACI_API_TOKEN (or ARTIFACTSTORE_TOKEN)"
	}
	if f.token == "" {
		return "the server at " + f.server + " needs a token: pass --api-token or set " + env
	}
	return "the server at " + f.server + " refused the token given with --api-token or " + env
}

func newPushCmd(e env, f *artifactFlags) *cobra.Command {
	var ref string
	var annotations []string
	cmd := &cobra.Command{
		Use:   "push SRC --ref NAMESPACE/NAME:TAG",
		Short: "Store a file or a directory as a manifest and tag it",
		Long: `Push hashes every file under SRC, uploads only the blobs the store does not
have, commits a manifest listing them (path, digest, size, mode) and points the
ref at it. Symlinks are kept as links; one pointing outside SRC is refused.`,
		Example: `  artifactstore push ./dist --ref outputs/build:v1
  artifactstore push report.xml --ref reports/test:latest --annotation job=test`,
		Args: checkArgs(cobra.ExactArgs(1)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			ann := map[string]string{}
			for _, a := range annotations {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return usage(fmt.Errorf("--annotation %q: write KEY=VALUE", a))
				}
				ann[k] = v
			}
			p := newProgress(e.stderr, "pushed", 0)
			res, err := b.Transfer().Push(cmd.Context(), f.actor, args[0], ref, registry.PushOptions{Annotations: ann, Progress: p.add})
			p.finish()
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, map[string]any{"manifest": res.Manifest.String(), "ref": ref, "files": res.Files,
					"bytes": res.Bytes, "uploaded": res.Uploaded, "sent": res.Sent})
			}
			fmt.Fprintf(e.stdout, "%s\n", res.Manifest)
			fmt.Fprintf(e.stderr, "%s, %s; uploaded %s (%s)%s\n", plural(res.Files, "file"), human(res.Bytes), plural(res.Uploaded, "new blob"), human(res.Sent), refNote(ref))
			return nil
		}),
	}
	cmd.Flags().StringVar(&ref, "ref", "", "ref to point at the manifest (namespace/name:tag)")
	cmd.Flags().StringArrayVar(&annotations, "annotation", nil, "KEY=VALUE recorded in the manifest (repeatable)")
	return cmd
}

func refNote(ref string) string {
	if ref == "" {
		return ""
	}
	return "; tagged " + ref
}

func newPullCmd(e env, f *artifactFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "pull REF|DIGEST DEST",
		Short: "Write a manifest's files into a new directory",
		Long: `Pull writes every file of the manifest into DEST (which must not exist or be
empty), restores modes and symlinks, and verifies each file's digest.`,
		Example: `  artifactstore pull outputs/build:v1 ./restored
  artifactstore pull sha256:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b ./restored`,
		Args: checkArgs(cobra.ExactArgs(2)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			p := newProgress(e.stderr, "pulled", 0)
			res, err := b.Transfer().Pull(cmd.Context(), args[0], args[1], p.add)
			p.finish()
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, map[string]any{"manifest": res.Manifest.String(), "files": res.Files, "bytes": res.Bytes})
			}
			fmt.Fprintf(e.stdout, "%s: %s, %s into %s\n", res.Manifest, plural(res.Files, "file"), human(res.Bytes), args[1])
			return nil
		}),
	}
}

func newStatCmd(e env, f *artifactFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "stat REF|DIGEST",
		Short:   "Show a manifest's entries",
		Example: `  artifactstore stat outputs/build:v1 --json`,
		Args:    checkArgs(cobra.ExactArgs(1)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			d, m, err := b.Catalog().Manifest(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var total int64
			entries := make([]map[string]any, 0, len(m.Entries))
			for _, en := range m.Entries {
				total += en.Size
				row := map[string]any{"path": en.Path, "mode": fmt.Sprintf("%o", en.Mode)}
				if en.IsSymlink() {
					row["target"] = en.Target
				} else {
					row["digest"], row["size"] = en.Digest.String(), en.Size
				}
				entries = append(entries, row)
			}
			if f.json {
				return printJSON(e.stdout, map[string]any{"manifest": d.String(), "files": len(m.Entries), "bytes": total,
					"annotations": m.Annotations, "entries": entries})
			}
			fmt.Fprintf(e.stdout, "manifest %s: %d entries, %s\n", d, len(m.Entries), human(total))
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, en := range m.Entries {
				if en.IsSymlink() {
					fmt.Fprintf(tw, "%o\t-\t%s -> %s\n", en.Mode, en.Path, en.Target)
				} else {
					fmt.Fprintf(tw, "%o\t%d\t%s\t%s\n", en.Mode, en.Size, en.Path, en.Digest)
				}
			}
			return tw.Flush()
		}),
	}
}

func newLsCmd(e env, f *artifactFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "ls [NAMESPACE]",
		Short:   "List refs",
		Example: `  artifactstore ls outputs`,
		Args:    checkArgs(cobra.MaximumNArgs(1)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			ns := ""
			if len(args) == 1 {
				ns = args[0]
			}
			refs, err := b.Refs(cmd.Context(), ns)
			if err != nil {
				return err
			}
			if f.json {
				out := make([]map[string]any, len(refs))
				for i, r := range refs {
					out[i] = refJSON(r)
				}
				return printJSON(e.stdout, out)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, r := range refs {
				pin := ""
				if r.Pinned {
					pin = "pinned"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r, r.Manifest, eventlog.FormatTime(r.UpdatedAt), pin)
			}
			return tw.Flush()
		}),
	}
}

func newFindMissingCmd(e env, f *artifactFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "find-missing DIGEST...",
		Short:   "Print the digests the store does not have",
		Example: `  artifactstore find-missing sha256:… blake3:…`,
		Args:    checkArgs(cobra.MinimumNArgs(1)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			ds, err := parseDigests(args)
			if err != nil {
				return err
			}
			missing, err := b.Data().FindMissing(cmd.Context(), ds)
			if err != nil {
				return err
			}
			if f.json {
				out := make([]string, len(missing))
				for i, d := range missing {
					out[i] = d.String()
				}
				return printJSON(e.stdout, map[string]any{"missing": out})
			}
			for _, d := range missing {
				fmt.Fprintln(e.stdout, d)
			}
			return nil
		}),
	}
}

func newTagCmd(e env, f *artifactFlags) *cobra.Command {
	var del, pin, unpin bool
	cmd := &cobra.Command{
		Use:   "tag REF [TARGET]",
		Short: "Point a ref at a manifest (by digest or another ref), pin it, or delete it",
		Example: `  artifactstore tag outputs/build:stable outputs/build:v1
  artifactstore tag outputs/build:stable --pin
  artifactstore tag outputs/build:old --delete`,
		Args: checkArgs(cobra.RangeArgs(1, 2)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			name, err := eventlog.ParseRef(args[0])
			if err != nil {
				return usage(err)
			}
			if del || pin || unpin {
				if len(args) != 1 || (del && (pin || unpin)) || (pin && unpin) {
					return usage(fmt.Errorf("tag --delete, --pin and --unpin each take only the ref, one at a time"))
				}
				if del {
					err = b.DeleteRef(cmd.Context(), f.actor, name)
				} else {
					err = b.PinRef(cmd.Context(), f.actor, name, pin)
				}
				if err == nil && f.json {
					return printJSON(e.stdout, map[string]any{"ref": name.String(), "deleted": del, "pinned": pin})
				}
				return err
			}
			if len(args) != 2 {
				return usage(fmt.Errorf("tag needs the ref and a target (a manifest digest or another ref)"))
			}
			d, err := b.Catalog().Resolve(cmd.Context(), args[1])
			if err != nil {
				return err
			}
			if err := b.Catalog().SetRef(cmd.Context(), f.actor, name, d); err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, map[string]any{"ref": name.String(), "manifest": d.String()})
			}
			fmt.Fprintf(e.stdout, "%s -> %s\n", name, d)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&del, "delete", false, "delete the ref instead")
	cmd.Flags().BoolVar(&pin, "pin", false, "pin the ref: retention policies with keep_pinned keep it")
	cmd.Flags().BoolVar(&unpin, "unpin", false, "unpin the ref")
	return cmd
}

func newRetentionCmd(e env, f *artifactFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Manage retention policies and apply them",
		Long: `A retention policy applies to the refs of a namespace whose name:tag matches its
selector (a glob). A ref is kept if any applicable policy keeps it: it is among
the keep-last newest, was updated within keep-within, or is pinned and the
policy has keep-pinned. Refs no policy applies to are kept.`,
	}
	var sel string
	var keepLast int
	var keepWithin time.Duration
	var keepPinned bool
	set := &cobra.Command{
		Use:     "set NAMESPACE",
		Short:   "Create or replace the policy of a namespace and selector",
		Example: `  artifactstore retention set logs --selector '**' --keep-last 50 --keep-within 168h --keep-pinned`,
		Args:    checkArgs(cobra.ExactArgs(1)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			return b.SetPolicy(cmd.Context(), f.actor, eventlog.Policy{Namespace: args[0], Selector: sel,
				KeepLast: keepLast, KeepWithin: keepWithin, KeepPinned: keepPinned})
		}),
	}
	set.Flags().StringVar(&sel, "selector", "**", "glob over name:tag")
	set.Flags().IntVar(&keepLast, "keep-last", 0, "keep the N most recently updated refs")
	set.Flags().DurationVar(&keepWithin, "keep-within", 0, "keep refs updated within this duration (e.g. 72h)")
	set.Flags().BoolVar(&keepPinned, "keep-pinned", false, "keep pinned refs")
	var rmSel string
	rm := &cobra.Command{
		Use:   "rm NAMESPACE --selector GLOB",
		Short: "Delete a policy",
		Args:  checkArgs(cobra.ExactArgs(1)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			return b.DeletePolicy(cmd.Context(), f.actor, args[0], rmSel)
		}),
	}
	rm.Flags().StringVar(&rmSel, "selector", "**", "selector of the policy to delete")
	ls := &cobra.Command{
		Use:   "ls [NAMESPACE]",
		Short: "List policies",
		Args:  checkArgs(cobra.MaximumNArgs(1)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			ns := ""
			if len(args) == 1 {
				ns = args[0]
			}
			ps, err := b.Policies(cmd.Context(), ns)
			if err != nil {
				return err
			}
			if f.json {
				out := make([]map[string]any, len(ps))
				for i, p := range ps {
					out[i] = map[string]any{"namespace": p.Namespace, "selector": p.Selector, "keep_last": p.KeepLast,
						"keep_within": p.KeepWithin.String(), "keep_pinned": p.KeepPinned}
				}
				return printJSON(e.stdout, out)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAMESPACE\tSELECTOR\tKEEP-LAST\tKEEP-WITHIN\tKEEP-PINNED")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%v\n", p.Namespace, p.Selector, p.KeepLast, p.KeepWithin, p.KeepPinned)
			}
			return tw.Flush()
		}),
	}
	var dry bool
	apply := &cobra.Command{
		Use:   "apply [NAMESPACE]",
		Short: "Delete the refs the policies do not keep (--dry-run shows them)",
		Example: `  artifactstore retention apply logs --dry-run
  artifactstore retention apply`,
		Args: checkArgs(cobra.MaximumNArgs(1)),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, args []string) error {
			ns := ""
			if len(args) == 1 {
				ns = args[0]
			}
			plan, err := b.Retention(cmd.Context(), f.actor, ns, !dry)
			if err != nil {
				return err
			}
			if f.json {
				out := []map[string]any{}
				for _, d := range plan {
					out = append(out, map[string]any{"ref": d.Ref.String(), "keep": d.Keep, "reason": d.Reason})
				}
				return printJSON(e.stdout, map[string]any{"dry_run": dry, "decisions": out})
			}
			verb := "deleted"
			if dry {
				verb = "would delete"
			}
			n := 0
			for _, d := range plan {
				if !d.Keep {
					n++
					fmt.Fprintf(e.stdout, "%s %s: %s\n", verb, d.Ref, d.Reason)
				}
			}
			fmt.Fprintf(e.stderr, "%d of %d refs %s\n", n, len(plan), verb)
			return nil
		}),
	}
	apply.Flags().BoolVar(&dry, "dry-run", false, "print what would be deleted and why, change nothing")
	cmd.AddCommand(set, rm, ls, apply)
	return cmd
}

func newGCCmd(e env, f *artifactFlags) *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete manifests and blobs nothing references",
		Long: `GC deletes manifests no ref points to, then blobs no manifest references, that
are older than the grace window. It is safe to run while pushes go on, with
any grace, 0s included: a push and an upload hold a lease on what they will
reference, and GC never deletes anything leased. The window only protects
what clients without a lease uploaded and have not referenced yet.`,
		Example: `  artifactstore gc --grace 1h
  artifactstore gc --grace 0s    # everything unreferenced and unleased, now`,
		Args: checkArgs(cobra.NoArgs),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, _ []string) error {
			rep, err := b.GC(cmd.Context(), f.actor, grace)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(e.stdout, map[string]any{"manifests": rep.Manifests, "blobs": rep.Blobs, "bytes": rep.Bytes, "orphans": rep.Orphans, "stale": rep.Stale})
			}
			fmt.Fprintf(e.stdout, "deleted %s, %s (%s), %s; removed %s\n", plural(rep.Manifests, "manifest"), plural(rep.Blobs, "blob"),
				human(rep.Bytes), plural(rep.Orphans, "orphan"), plural(rep.Stale, "stale upload"))
			return nil
		}),
	}
	cmd.Flags().DurationVar(&grace, "grace", registry.DefaultGrace, "only delete what is older than this; 0s means no window at all")
	return cmd
}

func newReplayCmd(e env, f *artifactFlags) *cobra.Command {
	var verify bool
	var vf verifyFlags
	var opts eventlog.VerifyOptions
	cmd := &cobra.Command{
		Use:   "replay --verify",
		Short: "Check the event log's hash chain and checkpoints, and rebuild the state from it",
		Long: `Replay walks the event log, checking every event's hash against its contents
and its predecessor, rebuilds all current-state tables from the log in a
scratch database and compares the state digests. It checks every signed
checkpoint the store keeps, and the one in the checkpoint file beside its
key: each signature, and that the log still reaches the checkpoint's event
with the same hash, so a log whose last events were removed and whose head
was rolled back is caught. It exits 1 and names the event or the checkpoint
when the log was tampered with, or says the state differs.

--expect-head SEQ:HASH (as a replay printed it earlier) fails unless the log
ends exactly there; --checkpoint FILE checks a checkpoint kept outside the
store (see the checkpoint command).`,
		Example: `  artifactstore replay --verify
  artifactstore replay --verify --expect-head 45:0567bba38addeebbc4edd83035057efa9e279ffaf7ce11bf24ce915b18c824ba
  artifactstore replay --verify --checkpoint /mnt/audit/latest.json --checkpoint-public-key 79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664`,
		Args: checkArgs(cobra.NoArgs),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if !verify {
				return usage(fmt.Errorf("replay only verifies for now: pass --verify"))
			}
			if err := f.resolve(cmd.Context(), e); err != nil {
				return err
			}
			var err error
			opts, err = vf.options(e, f)
			return err
		},
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, _ []string) error {
			rep, err := b.Replay(cmd.Context(), opts)
			if err != nil {
				if f.json && core.KindOf(err) == core.KindConflict {
					// A script reading the answer learns of the broken chain
					// from it too, not only from the exit code.
					if perr := printJSON(e.stdout, map[string]any{"intact": false, "intact_up_to": rep.Head.Seq,
						"error": err.Error(), "match": false}); perr != nil {
						return perr
					}
				}
				return err
			}
			if f.json {
				out := map[string]any{"intact": true, "events": rep.Events, "head": rep.Head.Seq, "head_hash": rep.Head.Hash,
					"state_digest": rep.StateDigest, "live_digest": rep.LiveDigest, "match": rep.Match(),
					"checkpoints": rep.Checkpoints, "signers_checked": rep.SignersChecked}
				if rep.LatestCheckpoint.Seq > 0 {
					out["latest_checkpoint"] = rep.LatestCheckpoint
				}
				if err := printJSON(e.stdout, out); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(e.stdout, "%d events, chain intact up to event %d\nhead %s\n%s\nreplayed state %s\nlive state     %s\n",
					rep.Events, rep.Head.Seq, rep.Head, checkpointLine(rep), rep.StateDigest, rep.LiveDigest)
			}
			if !rep.Match() {
				return &exitError{code: ExitFailed, err: fmt.Errorf("the live state differs from the state the event log rebuilds: a table was changed outside the log")}
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&verify, "verify", false, "verify the chain and the checkpoints, and compare the rebuilt state")
	vf.register(cmd.Flags())
	return cmd
}

func newAuditCmd(e env, f *artifactFlags) *cobra.Command {
	var subject, actor, since string
	var limit, after int64
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show who changed what: pushes, tags, deletions, pins, retention, GC",
		Example: `  artifactstore audit --actor alice --since 24h
  artifactstore audit --subject outputs/build:v1 --json
  artifactstore audit --limit 100 --after 4200`,
		Args: checkArgs(cobra.NoArgs),
		RunE: withBackend(e, f, func(cmd *cobra.Command, b artifactBackend, _ []string) error {
			if limit < 1 {
				return usage(fmt.Errorf("--limit %d: give at least 1", limit))
			}
			if after < 0 {
				return usage(fmt.Errorf("--after %d: give a sequence number, 0 or more", after))
			}
			filter := eventlog.AuditFilter{Subject: subject, Actor: actor, Limit: limit, After: after}
			if since != "" {
				t, err := eventlog.ParseSince(since, time.Now())
				if err != nil {
					return usage(err)
				}
				filter.Since = t.UnixMilli()
			}
			evs, err := b.Audit(cmd.Context(), filter)
			if err != nil {
				return err
			}
			if f.json {
				out := make([]map[string]any, len(evs))
				for i, ev := range evs {
					out[i] = map[string]any{"seq": ev.Seq, "at": eventlog.FormatTime(ev.At), "kind": ev.Kind,
						"subject": ev.Subject, "actor": ev.Actor, "hash": ev.Hash}
				}
				return printJSON(e.stdout, out)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			for _, ev := range evs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", ev.Seq, eventlog.FormatTime(ev.At), ev.Actor, ev.Kind, ev.Subject)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVar(&subject, "subject", "", "only events about this subject (a ref, whose tag defaults to latest; a digest)")
	cmd.Flags().StringVar(&actor, "actor", "", "only events by this actor")
	cmd.Flags().StringVar(&since, "since", "", "only events since an RFC 3339 time or a duration ago (24h)")
	cmd.Flags().Int64Var(&limit, "limit", 1000, "at most this many events")
	cmd.Flags().Int64Var(&after, "after", 0, "only events after this sequence number: the last one printed, to page on")
	return cmd
}
