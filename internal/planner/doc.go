// Package planner decides what a run does with each job of a pipeline: run
// it, reuse a recorded result, or skip it, and it says why. It must never
// reuse a job that a change could affect, and it should reuse everything
// else. Make is the entry point; it reads the repository with the git CLI
// (package gitx) and asks the caller for recorded results through Lookup.
//
// # Base
//
// The base is the commit changes are measured from. It is chosen by
// Trigger.Kind, and Base records the rule used, and any rule that did not
// apply, with the reason:
//
//   - push: Before, if it exists and is an ancestor of Head. Otherwise
//     (all-zero Before: a new branch; Before missing from the repository;
//     Before not an ancestor: a force-push) the merge-base of Head and the
//     default branch (gitx.DefaultBranch), unless the push is to the default
//     branch itself, which cannot be its own base.
//   - pull_request: the merge-base of Head and Target.
//   - local: an explicit Base if given, else the merge-base of HEAD and the
//     default branch, else of HEAD and its upstream, else HEAD itself (only
//     the uncommitted changes count). Uncommitted changes, untracked files
//     that are not ignored included, are part of the run.
//   - manual: the explicit Base, or none.
//
// In a shallow clone, when a rule fails for want of a commit or of ancestry,
// the clone is deepened once (git fetch --deepen, Options.DeepenBy commits
// from Options.Remote) and the rules are tried again; if history is still
// missing there is no base. Local runs never fetch. Without a base (also: no
// default branch, no common ancestor, a repository without commits) every
// job that is not filtered runs, and each says so.
//
// The base only decides explanations and the no-base rule: reuse is decided
// by digests alone, so a job is never reused because of a wrong base.
//
// # Changed paths
//
// git diff -z --name-status --no-renames base head, so both sides of a
// rename count, with deletions, mode and type changes, and no cap on their
// number; for a local run, plus gitx.DirtyPaths. Paths are bytes: spaces,
// newlines and non-UTF-8 bytes are kept exactly.
//
// # Input digest
//
// Every job gets an input digest, computed in topological order (each job
// after its needs). It is "sha256:" followed by the lowercase hex SHA-256 of
// the RFC 8949 core deterministic CBOR encoding (the artifact store's
// manifest encoding) of a map with five entries:
//
//	"f": the files: an array, sorted by path bytewise, of one entry per file
//	     of the tree at head that the job's inputs match or that a symlink
//	     among them leads to (see Symlinks), each entry an array
//	     [path, mode, id]:
//	       path: byte string, the path from the top of the repository, with
//	             "/" separators, exactly as git stores it;
//	       mode: unsigned integer, git's mode (0o100644 = 33188, 0o100755,
//	             0o120000 for a symlink, 0o160000 for a submodule);
//	       id:   text string, the object id in lowercase hex as git prints
//	             it (a blob, or a submodule's commit).
//	     The tree is git ls-tree -r -z --full-tree at head. For a local run,
//	     it is read from the index (gitx.WorkTree), which holds head's tree
//	     at every path that is not dirty, and each dirty path is replaced
//	     by the working tree's file: mode from the file system (symlink, or
//	     executable when the owner's x bit is set, else 0o100644), id from
//	     git hash-object with the repository's filters, as git add would
//	     record it (a symlink's id is that of a blob holding its target); a
//	     dirty path that is gone, or is now a directory or a special file,
//	     is left out. A path marked assume-unchanged or skip-worktree (so
//	     every path sparse checkout leaves out) keeps its index entry: the
//	     snapshot a local run executes in writes it from the index too, so
//	     that the digest describes what the job sees. A job without inputs
//	     matches every file. Matching is doublestar's (package
//	     github.com/bmatcuk/doublestar/v4) on the full path. The inputs
//	     entries are read in order and the last that holds a path
//	     decides: a glob adds what it matches, "!" and a glob removes
//	     it, and {go: dir} or {workspace: name} adds the files under the
//	     directories of the modules or packages it expands to (package
//	     ecosystem), but not under those of others nested deeper.
//	"i": only with inputs_from: an array, sorted by name bytewise, of
//	     [name, digest], as "n".
//	"j": the job's definition, only what can change its result: a map of
//	       "env":      map of text to text, the job's env (defaults applied);
//	       "run":      text;
//	       "name":     text, the job's name, since a result belongs to one job;
//	       "network":  bool, sandbox.network;
//	       "runs_on":  array of text, the runner labels, sorted, distinct;
//	       "secrets":  array of text, the secret names (never values),
//	                   sorted, distinct;
//	       "executor": text, "shell" or "sandbox" (Options.Executor);
//	       "hermetic": true, only for a hermetic job (the key is left out
//	                   otherwise, so other jobs keep their digests).
//	     Not in it: timeout, retry, the order of needs, branches, events,
//	     reuse, outputs, reports, and inputs themselves (the files they
//	     match are).
//	"l": only with lockfile slices: an array, sorted by path then id,
//	     of [path (bytes), id (text)]: the slice's "sha256:" digest
//	     (ecosystem.Lock), or the lockfile's blob id when it counts whole.
//	"n": the needs: an array, sorted by name bytewise, of [name, digest]
//	     (both text), digest being the need's own input digest.
//	"r": unsigned integer, the recipe version, Recipe (1); "i" and "l"
//	     are left out when empty, so older digests are unchanged.
//	"s": text, the salt, Options.Salt.
//
// Core deterministic encoding puts the keys in that order (f, i, j, l, n, r, s;
// and env, run, name, network, runs_on, secrets, executor, hermetic), uses the
// shortest form of every head and definite lengths, and encodes an empty
// map or array as such, never as null. Nothing else goes in: no commit id,
// no time, no path of the clone, no git setting, so the same files and
// definition give the same digest on every machine, in every clone, under
// any git configuration. TestDigestRecipe spells out one digest input byte
// by byte.
//
// # Symlinks
//
// Each symlink entry among a job's files is resolved as Linux would in a
// checkout of the planned tree (its text from its blob, or from the working
// tree when dirty; relative to its directory, one name at a time, links on
// the way replaced by their text), and what it leads to is added to the
// files, each path once: a file's entry, every entry under a directory
// (their links resolved in turn), a submodule's entry; the links on the way
// too. A link that leads outside (an absolute text, or ".." above the top)
// or nowhere (dangling) adds nothing: its own entry counts. A resolution
// that meets the same link with the same names left, or passes 40 links,
// is a cycle: Make fails with KindInvalid, naming a job and the links.
// Texts are read by one git cat-file --batch, and only when a job's inputs
// hold a link. Job.Links lists them (Link), and a changed path reached
// only through links is a FileMatch with Via. The recipe version stays 1:
// digests without followed links are unchanged, and those with are over
// more files, so never equal to one recorded before.
//
// # Decision
//
// In topological order, each job is
//
//   - skip, when its branches globs (doublestar, matched against
//     Trigger.Branch; a detached HEAD matches none) or its events (the
//     trigger's Event: push, pull_request, or manual for local and manual
//     runs) exclude it, or when a job it needs is skipped;
//   - else run, when there is no base, when the job says reuse: false, or
//     when Options.NoReuse is set;
//   - else reuse, when Lookup finds a recorded successful result for its
//     digest, pointing at that result's run and attempt;
//   - else run.
//
// Since a job's digest covers the digests of its needs, a change upstream
// changes the digest of every job downstream: "upstream X will run" is an
// explanation, never a rule, and a job is reused only when its digest is
// exactly one that succeeded.
//
// # Explanations
//
// Job.Why lists Reasons: first the job's warnings (unmatched_input, one per
// input glob that matches no file of the tree at head, with the nearest
// existing path when one is close; see Warning), then the causes, what
// changed since the base
// (inputs_changed with the changed files its inputs match and the first
// matching glob of each, at most MaxListedFiles with a count of the rest;
// definition_changed with the fields, or new_job, when the pipeline at the
// base is known (Options.BasePipeline or BasePipelineAt); upstream_runs with the needs that will run), then the one
// deciding reason (no_base, reuse_disabled, no_reuse, reused, no_result),
// or for a skipped job its one filter (filtered_branch, filtered_event,
// upstream_skipped). Causes may appear on a reused job: the same inputs may
// have succeeded elsewhere.
//
// # Warnings
//
// A glob of a job's inputs that matches no file of the planned tree is a
// Warning in Plan.Warnings and the first reason of the job: the job would
// otherwise be reused whatever the files it was meant to cover hold. With
// Options.Strict or strict: true in the pipeline, Make returns them as a
// KindInvalid error instead. Finding the nearest path compares the glob's
// directories, one at a time, with the names in the directory above, and
// its literal rest with the names in the last: the cost is bounded by the
// names of a few directories, not the size of the tree.
//
// # JSON
//
// A Plan marshals with encoding/json to a stable form; jobs are in
// topological order, lists are sorted, and optional fields are left out
// when empty:
//
//	{
//	  "version": 1,                      // SchemaVersion
//	  "event": "push",                   // push | pull_request | manual
//	  "branch": "main",                  // "" when detached
//	  "head": "<commit id>",             // "" before the first commit
//	  "dirty": false,                    // uncommitted changes included
//	  "base": {"commit": "<id or empty>", "reason": "...", "fallback": "..."},
//	  "changed_files": 3,                // paths changed since the base
//	  "summary": {"run": 2, "reuse": 4, "skip": 1},
//	  "warnings": [{"code": "unmatched_input", "job": "api", "glob": "scr/**",
//	                "nearest": "src/", "text": "..."}],
//	  "jobs": [{
//	    "name": "api",
//	    "decision": "run",               // run | reuse | skip
//	    "digest": "sha256:<64 hex>",
//	    "needs": ["lint"],               // sorted
//	    "inputs_from": ["schema"],       // sorted, left out when none
//	    "inferred": [{"input": "{go: ./services/api}",
//	                  "units": [{"name": "example.com/api", "dir": "services/api"}],
//	                  "include": ["services/api"], "exclude": [], "files": [],
//	                  "locks": [{"path": "pnpm-lock.yaml", "digest": "sha256:...",
//	                             "whole": "why, instead of digest"}]}],
//	    "reused_from": {"run_id": "...", "attempt_id": "...", "attempt": 1},
//	    "why": [{
//	      "code": "inputs_changed",      // see ReasonCode
//	      "text": "1 changed file matches its inputs",
//	      "files": [{"path": "services/api/main.go", "path_base64": "...",
//	                 "status": "modified", "glob": "services/api/**",
//	                 "via": ["..."]}],   // links, to a file reached through them
//	      "more_files": 0,
//	      "fields": ["run"],             // definition_changed
//	      "jobs": ["lint"]               // upstream_runs, upstream_skipped
//	    }],
//	    "links": [{"path": "services/api/cfg", "text": "../../cfg.json",
//	               "target": "cfg.json", "through": [], "kind": "file"}],
//	    "more_links": 0,
//	    "cache": {"key": "api-<24 hex>", "env": "<16 hex>", "restore_keys": ["api-"],
//	              "paths": ["~/.cache/go-build"], "files": 1}
//	  }]
//	}
//
// A file's status is added, deleted, modified, type_changed or unmerged.
// Its glob is "" for a job without inputs. path_base64 (standard base64 of
// the path's bytes) is there only when the path is not valid UTF-8, whose
// bytes "path" shows as U+FFFD.
package planner
