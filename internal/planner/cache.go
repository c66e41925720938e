package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/deltaci/deltaci/internal/core"
)

// Cache is a job's cache as planned: its key and what it falls back to.
type Cache struct {
	// Key is "<job>-<24 hex digits>": the job's name, then the start of
	// the SHA-256 of the key's files and the environment (Env).
	Key string `json:"key"`
	// Env is the first 16 hex digits of the SHA-256 of the executor, the
	// job's runner labels and its cache paths. Entries of another Env are
	// never restored, not even by a restore key.
	Env string `json:"env"`
	// RestoreKeys are the prefixes tried when no entry has Key.
	RestoreKeys []string `json:"restore_keys,omitempty"`
	// Paths are the cached directories, as written.
	Paths []string `json:"paths"`
	// Files counts the files of the tree that the key's globs match.
	Files int `json:"files"`
}

// cacheEnv is what partitions a job's cache entries beyond the key.
type cacheEnv struct {
	Executor string   `cbor:"executor"`
	Paths    []string `cbor:"paths"`
	RunsOn   []string `cbor:"runs_on"`
}

// cacheKeyInput is what a cache key hashes: the key's files as the digest
// lists them ([path, mode, id], sorted by path) and the environment.
type cacheKeyInput struct {
	Env   string     `cbor:"env"`
	Files []keyEntry `cbor:"files"`
}

type keyEntry struct {
	_    struct{} `cbor:",toarray"`
	Path []byte
	Mode uint32
	ID   string
}

// jobCache plans j's cache, or returns nil when j has none. The key reads
// the tree's git blob ids, never the files, as the digest does; it is not
// part of the digest, so adding or changing a cache never changes whether
// a result is reused.
func jobCache(j core.JobSpec, executor string, tree *treeFiles) (*Cache, error) {
	if j.Cache == nil {
		return nil, nil
	}
	env, err := encMode.Marshal(cacheEnv{Executor: executor, Paths: sortedSet(j.Cache.Paths), RunsOn: sortedSet(j.RunsOn)})
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "cache key", err)
	}
	envSum := sha256.Sum256(env)
	in := cacheKeyInput{Env: hex.EncodeToString(envSum[:8]), Files: []keyEntry{}}
	if len(j.Cache.Files) > 0 {
		for i := int32(0); i < int32(tree.entries.n); i++ {
			e := tree.entries.at(i)
			for _, g := range j.Cache.Files {
				if ok, _ := doublestar.Match(g, e.Path); ok {
					in.Files = append(in.Files, keyEntry{Path: []byte(e.Path), Mode: uint32(e.Mode), ID: e.ObjectID})
					break
				}
			}
		}
	}
	slices.SortFunc(in.Files, func(a, b keyEntry) int { return slices.Compare(a.Path, b.Path) })
	b, err := encMode.Marshal(in)
	if err != nil {
		return nil, core.Wrap(core.KindInternal, "cache key", err)
	}
	sum := sha256.Sum256(b)
	return &Cache{
		Key: j.Name + "-" + hex.EncodeToString(sum[:12]), Env: in.Env,
		RestoreKeys: slices.Clone(j.Cache.RestoreKeys), Paths: slices.Clone(j.Cache.Paths), Files: len(in.Files),
	}, nil
}
