package workspace_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/workspace"
)

// BenchmarkCreateRemove makes and removes one workspace over a tree of
// 2,500 files with each method, reporting the two halves.
func BenchmarkCreateRemove(b *testing.B) {
	base := filepath.Join(b.TempDir(), "base")
	for i := range 2500 {
		write(b, filepath.Join(base, fmt.Sprintf("d%02d/f%04d.txt", i%50, i)), "x", 0o644)
	}
	for _, m := range []workspace.Method{workspace.MethodOverlay, workspace.MethodFuse, workspace.MethodCopy} {
		b.Run(string(m), func(b *testing.B) {
			dir := b.TempDir()
			bl, err := workspace.New(b.Context(), nil, m, dir)
			if err != nil {
				b.Skip(err)
			}
			var create, remove time.Duration
			i := 0
			for b.Loop() {
				t0 := time.Now()
				w, err := bl.Create(b.Context(), base, filepath.Join(dir, fmt.Sprint(i)))
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := w.Remove(b.Context()); err != nil {
					b.Fatal(err)
				}
				create += t1.Sub(t0)
				remove += time.Since(t1)
				i++
			}
			b.ReportMetric(float64(create.Microseconds())/float64(i)/1000, "create-ms")
			b.ReportMetric(float64(remove.Microseconds())/float64(i)/1000, "remove-ms")
		})
	}
}
