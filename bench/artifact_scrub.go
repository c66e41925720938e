package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/open"
	"github.com/deltaci/deltaci/internal/artifact/registry"
)

// benchScrub scrubs a store of 256 blobs of 4 MiB (1 GiB) on the fs
// backend with no rate limit, and compares with sha256sum reading the
// same files; one blob is damaged so that the quarantine is on the path
// timed too.
func benchScrub(ctx context.Context, h *harness) ([]Result, error) {
	n, size := 256, int64(4*mib)
	if h.quick {
		n = 16
	}
	dir := filepath.Join(h.dir, "scrub")
	st, err := open.Open(ctx, open.Config{Database: filepath.Join(dir, "meta.db"), Store: filepath.Join(dir, "store")})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var files []string
	var damaged string
	for i := range n {
		hh := sha256.New()
		if _, err := io.Copy(hh, newPattern(byte(i), size)); err != nil {
			return nil, err
		}
		d, err := digest.Parse("sha256:" + hex.EncodeToString(hh.Sum(nil)))
		if err != nil {
			return nil, err
		}
		if _, err := st.Data.Upload(ctx, "bench", digest.SHA256, d, newPattern(byte(i), size), size); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, "store", "blobs", "sha256", d.Hex()[:2], d.Hex())
		files = append(files, p)
		if i == n/2 {
			damaged = p
		}
	}
	if err := flipByte(damaged, size/3); err != nil {
		return nil, err
	}
	// Warm the page cache for both sides alike, then time sha256sum.
	if err := exec.CommandContext(ctx, "cat", files...).Run(); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := exec.CommandContext(ctx, "sha256sum", files...).Run(); err != nil {
		// One file hashes to another name: sha256sum only reports, and
		// exits 0 on reading; a failure here is real.
		return nil, fmt.Errorf("sha256sum: %w", err)
	}
	shaSecs := time.Since(start).Seconds()
	start = time.Now()
	rep, err := st.Registry.Scrub(ctx, "bench", registry.ScrubOptions{Rate: -1})
	if err != nil {
		return nil, err
	}
	scrubSecs := time.Since(start).Seconds()
	if rep.Blobs != n || len(rep.Corrupt) != 1 {
		return nil, fmt.Errorf("scrub checked %d blobs and found %d corrupt, want %d and 1", rep.Blobs, len(rep.Corrupt), n)
	}
	mb := float64(int64(n)*size) / 1e6
	rate, shaRate := mb/scrubSecs, mb/shaSecs
	return []Result{{
		Name: fmt.Sprintf("scrub of %d blobs, %d MiB, on fs", n, int64(n)*size/mib), Value: rate, Unit: "MB/s",
		Baseline: "sha256sum MB/s", BaselineValue: shaRate, Ratio: rate / shaRate,
		Goal: "ratio >= 0.4", Met: rate/shaRate >= 0.4,
		Note: "unlimited rate (scrubs read at 50 MiB/s by default); each byte is hashed twice, for the blob's digest and for its chunk's, and one corrupt blob is quarantined",
	}}, nil
}

// flipByte inverts one byte of a read-only stored file.
func flipByte(path string, offset int64) error {
	if err := os.Chmod(path, 0o644); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, offset); err != nil {
		return err
	}
	b[0] ^= 0xff
	_, err = f.WriteAt(b, offset)
	return err
}
