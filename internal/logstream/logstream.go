// Package logstream moves job logs: the runner-side Shipper uploads output
// as offset-addressed chunks (DESIGN.md section 6), and the server-side
// Sealer turns an ended attempt's chunks into one blob in the artifact store
// (section 10).
package logstream

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/results"
	"github.com/deltaci/deltaci/internal/store"
)

// sealRead is how much of the log the Sealer holds in memory at once.
const sealRead = 4 << 20

// Sealer keeps ended attempts' logs in the artifact store.
type Sealer struct {
	Store    *store.Store
	Transfer *registry.Transfer
	// Actor is recorded in the artifact store's audit trail.
	Actor string
	// TempDir holds the log file while it is pushed; os.TempDir when empty.
	TempDir string
}

// Seal concatenates an ended attempt's chunks into one file, pushes it as
// logs/<attempt id>, records its content digest on the attempt and drops
// the chunks. It returns the digest. Sealing a sealed log returns its digest.
func (s *Sealer) Seal(ctx context.Context, a core.Attempt) (string, error) {
	info, err := s.Store.LogInfo(ctx, a.ID)
	if err != nil {
		return "", err
	}
	if info.Digest != "" {
		return info.Digest, nil
	}
	if !a.State.Terminal() {
		return "", core.E(core.KindConflict, "seal log", "attempt %s is %s, not ended", a.ID, a.State)
	}
	alg := s.Transfer.Alg
	if alg == "" {
		alg = digest.Default
	}
	h, err := digest.NewHasher(alg)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(s.TempDir, "deltaci-log-")
	if err != nil {
		return "", core.Wrap(core.KindInternal, "seal log", err)
	}
	defer os.RemoveAll(dir)
	// The pushed manifest names its one file after the file's base name.
	path := filepath.Join(dir, "log")
	if err := s.writeLog(ctx, a.ID, info.Length, path, h); err != nil {
		return "", err
	}
	_, err = s.Transfer.Push(ctx, s.Actor, path, results.LogRef(a.ID), registry.PushOptions{
		// The same annotations as results.Store.SaveLog writes.
		Annotations: map[string]string{"deltaci.run": a.RunID, "deltaci.attempt": a.ID, "deltaci.attempt_number": strconv.Itoa(a.Number)},
	})
	if err != nil {
		return "", err
	}
	d := h.Digest().String()
	if err := s.Store.SealLog(ctx, a.ID, d); err != nil {
		return "", err
	}
	return d, nil
}

// writeLog streams the first length bytes of the log into path and h.
func (s *Sealer) writeLog(ctx context.Context, attemptID string, length int64, path string, h *digest.Hasher) error {
	f, err := os.Create(path)
	if err != nil {
		return core.Wrap(core.KindInternal, "seal log", err)
	}
	var off int64
	for off < length {
		b, _, err := s.Store.ReadLog(ctx, attemptID, off, int(min(sealRead, length-off)))
		if err != nil {
			f.Close()
			return err
		}
		if len(b) == 0 {
			f.Close()
			return core.E(core.KindInternal, "seal log", "attempt %s: the log ends at %d, not %d", attemptID, off, length)
		}
		_, _ = h.Write(b) // hashing never fails
		if _, err := f.Write(b); err != nil {
			f.Close()
			return core.Wrap(core.KindInternal, "seal log", err)
		}
		off += int64(len(b))
	}
	return errors.Join(f.Close())
}
