package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// benchGC runs thousands of GC cycles with a zero grace window while three
// writers push, retag and delete refs over a small pool of contents, so
// blobs are shared, dropped and uploaded again under GC's feet. It counts
// the pushes that failed (none may: a push holds a lease on what it
// commits), the rounds pushes lost to GC and had to upload again, and then
// the blobs of live refs that are missing or corrupt; and it compares the
// GC rate with GC cycles on an idle store.
func benchGC(ctx context.Context, h *harness) ([]Result, error) {
	const grace = 0
	cycles := 2000
	if h.quick {
		cycles = 100
	}
	rounds := &roundsLost{}
	st, err := open.Open(ctx, open.Config{Database: filepath.Join(h.dir, "gc", "meta.db"), Store: filepath.Join(h.dir, "gc", "store"),
		Log: slog.New(rounds)})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	reg := st.Registry
	idleStart := time.Now()
	for i := 0; i < 200; i++ {
		if _, err := reg.GC(ctx, "gc", grace); err != nil {
			return nil, err
		}
	}
	idleRate := 200 / time.Since(idleStart).Seconds()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	tokens := make(chan struct{}, 16)
	var pushes, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				select {
				case <-tokens:
				case <-runCtx.Done():
					return
				}
				src := filepath.Join(h.dir, "gc", fmt.Sprintf("src-%d-%d", w, i))
				os.MkdirAll(src, 0o755)
				for f := 0; f < 3; f++ {
					os.WriteFile(filepath.Join(src, fmt.Sprint("f", f)), []byte(fmt.Sprint("content-", rng.IntN(12))), 0o644)
				}
				_, err := reg.Push(runCtx, "pusher", src, fmt.Sprintf("ns/w%d:%d", w, rng.IntN(4)), registry.PushOptions{Parallel: 2})
				os.RemoveAll(src)
				switch {
				case err == nil:
					pushes.Add(1)
				case runCtx.Err() != nil:
					return
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				if rng.IntN(3) == 0 {
					r := eventlog.RefName{Namespace: "ns", Name: fmt.Sprint("w", w), Tag: fmt.Sprint(rng.IntN(4))}
					if err := reg.Meta.DeleteRef(runCtx, "pusher", r, "bench"); err != nil && core.KindOf(err) != core.KindNotFound && runCtx.Err() == nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
				}
			}
		}(w)
	}
	start := time.Now()
	for c := 0; c < cycles; c++ {
		if _, err := reg.GC(ctx, "gc", grace); err != nil {
			cancel()
			wg.Wait()
			return nil, err
		}
		for k := 0; k < 4; k++ {
			select {
			case tokens <- struct{}{}:
			default:
			}
		}
	}
	rate := float64(cycles) / time.Since(start).Seconds()
	cancel()
	wg.Wait()
	lost, err := lostBlobs(ctx, reg)
	if err != nil {
		return nil, err
	}
	failNote := ""
	if e, ok := firstErr.Load().(string); ok {
		failNote = "the first: " + e
	}
	return []Result{
		{
			Name:  fmt.Sprintf("GC cycles/s with pushes racing (%d cycles at grace 0, %d pushes)", cycles, pushes.Load()),
			Value: rate, Unit: "cycles/s", Baseline: "idle GC cycles/s", BaselineValue: idleRate, Ratio: rate / idleRate,
			Goal: "report", Met: true,
			Note: fmt.Sprintf("%d push rounds lost to GC and uploaded again", rounds.n.Load()),
		},
		{Name: "pushes failed during the GC race", Value: float64(failed.Load()), Unit: "pushes", Goal: "0", Met: failed.Load() == 0, Note: failNote},
		{Name: "referenced blobs lost after the GC race", Value: float64(lost), Unit: "blobs", Goal: "0", Met: lost == 0},
	}, nil
}

// roundsLost is a slog handler that counts the push rounds lost to GC.
type roundsLost struct{ n atomic.Int64 }

func (r *roundsLost) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (r *roundsLost) Handle(_ context.Context, rec slog.Record) error {
	if strings.HasPrefix(rec.Message, "push raced with GC") {
		r.n.Add(1)
	}
	return nil
}

func (r *roundsLost) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *roundsLost) WithGroup(string) slog.Handler      { return r }

// lostBlobs counts blobs of referenced manifests that are missing or corrupt.
func lostBlobs(ctx context.Context, reg *registry.Registry) (int, error) {
	refs, err := reg.Meta.Refs(ctx, "")
	if err != nil {
		return 0, err
	}
	lost := 0
	for _, r := range refs {
		_, m, err := reg.Manifest(ctx, r.Manifest.String())
		if err != nil {
			return 0, err
		}
		for _, e := range m.Entries {
			if e.IsSymlink() {
				continue
			}
			rc, _, err := reg.Data.Open(ctx, e.Digest, 0, -1)
			if err != nil {
				lost++
				continue
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				lost++
			}
			rc.Close()
		}
	}
	return lost, nil
}
