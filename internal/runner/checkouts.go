package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/deltaci/deltaci/internal/gitx"
	"github.com/deltaci/deltaci/internal/workspace"
)

// checkoutsDir holds the runner's shared checkouts, one per commit.
const checkoutsDir = "checkouts"

// keepCheckouts is how many checkouts no attempt uses are kept, the most
// recently used, for the next attempts of the same commits (the other
// jobs of a run).
const keepCheckouts = 4

// checkouts shares one checkout of each commit among a runner's attempts:
// it is made once from the mirror, never written, and every attempt works
// in its own copy-on-write view of it (see workspace).
type checkouts struct {
	mirrors gitx.Mirrors
	dir     string
	log     *slog.Logger

	mu    sync.Mutex
	byKey map[string]*checkout
	tick  int64
}

// checkout is one commit's shared tree.
type checkout struct {
	key, path, mirror, commit string
	ready                     chan struct{} // closed once made, or failed (err)
	err                       error
	users                     int   // attempts using it; guarded by checkouts.mu
	used                      int64 // when it was last released, in ticks
}

func newCheckouts(m gitx.Mirrors, dir string, log *slog.Logger) *checkouts {
	return &checkouts{mirrors: m, dir: dir, log: log, byKey: map[string]*checkout{}}
}

// acquire returns the checkout of commit of repo, making it the first
// time (concurrent callers wait for the one making it). Call release once
// done with it.
func (c *checkouts) acquire(ctx context.Context, repo, commit string) (*checkout, error) {
	sum := sha256.Sum256([]byte(repo + "\x00" + commit))
	key := hex.EncodeToString(sum[:16])
	c.mu.Lock()
	co, ok := c.byKey[key]
	if !ok {
		co = &checkout{key: key, path: filepath.Join(c.dir, key), commit: commit, ready: make(chan struct{})}
		c.byKey[key] = co
	}
	co.users++
	c.mu.Unlock()
	if !ok {
		co.err = c.make(ctx, co, repo)
		close(co.ready)
	}
	select {
	case <-co.ready:
	case <-ctx.Done():
		c.release(context.WithoutCancel(ctx), co)
		return nil, ctx.Err()
	}
	if co.err != nil {
		c.release(context.WithoutCancel(ctx), co)
		return nil, co.err
	}
	return co, nil
}

// make fetches commit into the mirror of repo and checks it out.
func (c *checkouts) make(ctx context.Context, co *checkout, repo string) error {
	mirror, err := c.mirrors.Ensure(ctx, repo, co.commit)
	if err != nil {
		return fmt.Errorf("cannot fetch %s at %s: %w", repo, co.commit, err)
	}
	co.mirror = mirror
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	if err := c.mirrors.Checkout(ctx, mirror, co.commit, co.path); err != nil {
		_ = os.RemoveAll(co.path)
		return fmt.Errorf("cannot check out %s: %w", co.commit, err)
	}
	return nil
}

// release ends an attempt's use of co. A failed checkout goes at once;
// past keepCheckouts unused ones, the least recently used go.
func (c *checkouts) release(ctx context.Context, co *checkout) {
	c.mu.Lock()
	co.users--
	c.tick++
	co.used = c.tick
	var drop []*checkout
	if co.users == 0 && co.err != nil {
		delete(c.byKey, co.key)
	}
	for {
		var oldest *checkout
		idle := 0
		for _, o := range c.byKey {
			if o.users == 0 && o.err == nil {
				idle++
				if oldest == nil || o.used < oldest.used {
					oldest = o
				}
			}
		}
		if idle <= keepCheckouts {
			break
		}
		delete(c.byKey, oldest.key)
		drop = append(drop, oldest)
	}
	c.mu.Unlock()
	for _, o := range drop {
		c.remove(ctx, o)
	}
}

// close removes every checkout no attempt uses.
func (c *checkouts) close(ctx context.Context) {
	c.mu.Lock()
	var drop []*checkout
	for k, o := range c.byKey {
		if o.users == 0 && o.err == nil {
			delete(c.byKey, k)
			drop = append(drop, o)
		}
	}
	c.mu.Unlock()
	for _, o := range drop {
		c.remove(ctx, o)
	}
}

func (c *checkouts) remove(ctx context.Context, o *checkout) {
	if err := c.mirrors.Release(ctx, o.mirror, o.path); err != nil {
		c.log.WarnContext(ctx, "removing a checkout", slog.String("dir", o.path), slog.Any("err", err))
	}
}

// gitDir gives a workspace over co a git directory of its own, in dir: a
// worktree's (HEAD, the mirror as its common directory, the checkout's
// index), and points the workspace's .git file to it. A job's git
// commands (a checkout of another commit, an index refreshed) then change
// its own HEAD and index, never the checkout's that other attempts share.
func (co *checkout) gitDir(ws, dir string) error {
	b, err := os.ReadFile(filepath.Join(co.path, ".git"))
	if err != nil {
		return err
	}
	shared, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "gitdir: ")
	if !ok || !filepath.IsAbs(shared) {
		return fmt.Errorf("the checkout's .git file is not a worktree's: %.100q", b)
	}
	mirror, err := filepath.Abs(co.mirror)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	index, err := os.ReadFile(filepath.Join(shared, "index"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for name, content := range map[string]string{
		"HEAD": co.commit + "\n", "commondir": mirror + "\n", "gitdir": filepath.Join(ws, ".git") + "\n", "index": string(index),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	// Written through the view: the checkout keeps its own .git file.
	return os.WriteFile(filepath.Join(ws, ".git"), []byte("gitdir: "+dir+"\n"), 0o644)
}

// attemptRoot is where an attempt's workspace lives: its view in ws/ and
// its git directory in git/.
func attemptRoot(workDir, attemptID string) string { return filepath.Join(workDir, "ws", attemptID) }

// newView makes an attempt's workspace over co.
func newView(ctx context.Context, b *workspace.Builder, co *checkout, root string) (*workspace.Workspace, error) {
	w, err := b.Create(ctx, co.path, root)
	if err != nil {
		return nil, err
	}
	if err := co.gitDir(w.Dir, filepath.Join(root, "git")); err != nil {
		_ = w.Remove(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("the workspace's git directory: %w", err)
	}
	return w, nil
}
