// Package jobcache keeps job caches (a job's cache: key, restore-keys and
// paths) in the artifact store.
//
// An entry is one manifest of the cached directories: "~/..." paths under
// "home/", workspace paths under "workspace/", so a save uploads only the
// files the store lacks. Its ref is cache/<project>/<env>/<key>:<scope>:
// env is the digest of the executor, the runner labels and the paths
// (planner.Cache), which restore keys never cross, and scope is the trust
// namespace that wrote it. A trusted run writes its project's shared scope;
// another run writes a scope of its own and reads the shared one, which
// trusted runs read alone, so no untrusted run can change what a trusted
// one restores. The server, never the runner, picks the scopes and sets
// the refs.
package jobcache

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// Namespace is the artifact store namespace of cache entries.
const Namespace = "cache"

// Restore outcomes.
const (
	Exact  = "exact"  // an entry with the job's key
	Prefix = "prefix" // the newest entry whose key starts with a restore key
	Cold   = "cold"   // nothing to restore
)

// Local is the project and scope of deltaci run's entries, in the
// developer's own store.
const Local = "local"

// Roots are where a job's cache paths live.
type Roots struct {
	// Home is the job's home directory ("~/"), Workspace its workspace.
	Home, Workspace string
}

// Trees maps cache paths (as the pipeline file writes them) to the
// directories they name and their prefixes in an entry's manifest.
func (r Roots) Trees(paths []string) ([]registry.Tree, error) {
	out := make([]registry.Tree, 0, len(paths))
	for _, p := range paths {
		rel, home := strings.CutPrefix(p, "~/")
		rel = strings.TrimSuffix(rel, "/")
		root, prefix := r.Workspace, "workspace/"
		if home {
			root, prefix = r.Home, "home/"
		}
		if root == "" {
			return nil, core.E(core.KindInvalid, "cache", "cache path %s: the job has no home directory", p)
		}
		if filepath.IsAbs(rel) || !filepath.IsLocal(filepath.FromSlash(rel)) {
			return nil, core.E(core.KindInvalid, "cache", "cache path %s is outside the job's home and workspace", p)
		}
		out = append(out, registry.Tree{Prefix: prefix + rel, Dir: filepath.Join(root, filepath.FromSlash(rel))})
	}
	return out, nil
}

// Restored is what a restore wrote.
type Restored struct {
	Files int
	Bytes int64
}

// Restore writes entry (a manifest digest) into the cache paths, over what
// is there.
func Restore(ctx context.Context, tr *registry.Transfer, entry string, roots Roots, paths []string) (Restored, error) {
	trees, err := roots.Trees(paths)
	if err != nil {
		return Restored{}, err
	}
	var out Restored
	for _, t := range trees {
		res, err := tr.PullPrefixInto(ctx, entry, t.Prefix, t.Dir)
		out.Files += res.Files
		out.Bytes += res.Bytes
		if err != nil {
			return out, fmt.Errorf("restore the cache into %s: %w", t.Prefix, err)
		}
	}
	return out, nil
}

// Save uploads the cache paths as one manifest, only the files the store
// lacks, unless it is restored (the digest of the entry restored, or
// ""): then nothing is sent and the result says Unchanged.
func Save(ctx context.Context, tr *registry.Transfer, actor string, roots Roots, paths []string, restored string, ann map[string]string) (registry.PushResult, error) {
	trees, err := roots.Trees(paths)
	if err != nil {
		return registry.PushResult{}, err
	}
	opts := registry.PushOptions{Annotations: ann}
	if restored != "" {
		if opts.Unless, err = digest.Parse(restored); err != nil {
			return registry.PushResult{}, err
		}
	}
	return tr.PushTrees(ctx, actor, trees, opts)
}

// Ref is the ref of an entry.
func Ref(project, env, key, scope string) (eventlog.RefName, error) {
	if project == "" {
		project = "none"
	}
	return eventlog.ParseRef(Namespace + "/" + project + "/" + env + "/" + key + ":" + scope)
}

// KeyOf returns the key of an entry's ref.
func KeyOf(r eventlog.RefName) string { return r.Name[strings.LastIndexByte(r.Name, '/')+1:] }

// Hit is the entry a restore found.
type Hit struct {
	Ref      eventlog.RefName
	Manifest digest.Digest
	// Match is Exact or Prefix.
	Match string
}

// Query is what a job looks for.
type Query struct {
	Project, Env, Key string
	RestoreKeys       []string
	// Scopes are read in order: the run's own first.
	Scopes []string
}

// Find looks for the entry a job restores: the exact key in each scope,
// else for each restore key in turn the newest entry (by when it was
// saved) whose key starts with it, in each scope. It reports false when
// there is none.
func Find(ctx context.Context, meta *eventlog.Store, q Query) (Hit, bool, error) {
	for _, s := range q.Scopes {
		name, err := Ref(q.Project, q.Env, q.Key, s)
		if err != nil {
			return Hit{}, false, err
		}
		r, err := meta.Ref(ctx, name)
		switch {
		case err == nil:
			return Hit{Ref: name, Manifest: r.Manifest, Match: Exact}, true, nil
		case core.KindOf(err) != core.KindNotFound:
			return Hit{}, false, err
		}
	}
	if len(q.RestoreKeys) == 0 {
		return Hit{}, false, nil
	}
	refs, err := meta.Refs(ctx, Namespace)
	if err != nil {
		return Hit{}, false, err
	}
	project := q.Project
	if project == "" {
		project = "none"
	}
	dir := project + "/" + q.Env + "/"
	for _, rk := range q.RestoreKeys {
		for _, s := range q.Scopes {
			var best *eventlog.Ref
			for i, r := range refs {
				if r.Tag != s || !strings.HasPrefix(r.Name, dir+rk) || strings.Contains(r.Name[len(dir):], "/") {
					continue
				}
				if best == nil || r.UpdatedAt.After(best.UpdatedAt) {
					best = &refs[i]
				}
			}
			if best != nil {
				return Hit{Ref: best.RefName, Manifest: best.Manifest, Match: Prefix}, true, nil
			}
		}
	}
	return Hit{}, false, nil
}

// Size renders a byte count for log lines: "12.3 MB".
func Size(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}

// RestoredLine is the job log's line for a restore.
func RestoredLine(match, key string, bytes int64) string {
	switch match {
	case Exact:
		return fmt.Sprintf("cache restored (exact key %s, %s)", key, Size(bytes))
	case Prefix:
		return fmt.Sprintf("cache restored by prefix (key %s, %s)", key, Size(bytes))
	}
	return fmt.Sprintf("cache cold (no entry for key %s)", key)
}

// SavedLine is the job log's line for a save.
func SavedLine(key string, res registry.PushResult) string {
	if res.Unchanged {
		return fmt.Sprintf("cache unchanged, not saved (key %s)", key)
	}
	return fmt.Sprintf("cache saved (key %s, %d files, %s, %s uploaded)", key, res.Files, Size(res.Bytes), Size(res.Sent))
}
