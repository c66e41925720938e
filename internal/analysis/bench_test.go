package analysis

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchSize scales the benchmark files: DELTACI_BENCH_QUICK=1 (make bench
// with -quick) makes them a tenth as large, for a smoke run.
func benchSize(mb int64) int64 {
	if os.Getenv("DELTACI_BENCH_QUICK") == "1" {
		mb /= 10
	}
	return mb * 1_000_000
}

// benchFile writes a generated file of size bytes once per benchmark.
func benchFile(b *testing.B, name string, g *genReader) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	g.nextSample = 1 << 62
	if _, err := io.Copy(f, g); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// heapWatch samples the heap in use every few megabytes read: the peak
// includes garbage not yet collected, which is what the process holds.
type heapWatch struct {
	r    io.Reader
	n    int64
	next int64
	peak uint64
}

func (h *heapWatch) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.n += int64(n)
	if h.n >= h.next {
		h.next += 4 << 20
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.peak = max(h.peak, m.HeapInuse)
	}
	return n, err
}

// measure times f reading path, and its heap growth over the heap in use
// before it; the baseline is SHA-256 of the same file, as sha256sum reads
// it.
func measure(b *testing.B, path string, f func(io.Reader) error) (d, cpu, base time.Duration, growth uint64) {
	b.Helper()
	for b.Loop() {
		file, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		h := sha256.New()
		if _, err := io.Copy(h, file); err != nil {
			b.Fatal(err)
		}
		base += time.Since(start)
		file.Close()

		file, err = os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		before := heapInuse()
		w := &heapWatch{r: file}
		start, cpu0 := time.Now(), cpuTime()
		if err := f(w); err != nil {
			b.Fatal(err)
		}
		d += time.Since(start)
		cpu += cpuTime() - cpu0
		file.Close()
		if w.peak > before {
			growth = max(growth, w.peak-before)
		}
	}
	n := time.Duration(b.N)
	return d / n, cpu / n, base / n, growth
}

// cpuTime is the CPU the process has used: on a machine shared with other
// work the wall time says as much about the others as about the parser.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func report(b *testing.B, what string, d, cpu, base time.Duration, growth uint64) {
	b.ReportMetric(float64(d.Microseconds())/1000, what+"-ms")
	b.ReportMetric(float64(cpu.Microseconds())/1000, what+"-cpu-ms")
	b.ReportMetric(float64(base.Microseconds())/1000, what+"-sha256-ms")
	b.ReportMetric(float64(growth)/(1<<20), what+"-heap-MiB")
}

// BenchmarkAnalysisJUnit parses a 50 MB JUnit file of Surefire-like suites:
// a test in ten fails with a stack trace and output.
func BenchmarkAnalysisJUnit(b *testing.B) {
	var body strings.Builder
	for i := range 1000 {
		body.WriteString(genCase(i))
		body.WriteByte('\n')
	}
	size := benchSize(50)
	path := benchFile(b, "report.xml", newGenReader(`<?xml version="1.0" encoding="UTF-8"?><testsuites><testsuite name="gen">`,
		body.String(), `</testsuite></testsuites>`, size))
	lim := DefaultLimits()
	lim.MaxFileBytes = size
	d, cpu, base, growth := measure(b, path, func(r io.Reader) error {
		rep, err := ParseJUnit(r, lim)
		if err == nil && rep.Failing() == nil {
			err = fmt.Errorf("no failures found")
		}
		return err
	})
	report(b, "junit", d, cpu, base, growth)
}

// BenchmarkAnalysisLog finds the first error in a 200 MB build log whose
// only error is at its end, so that the whole log is read: coloured build
// lines and module downloads.
func BenchmarkAnalysisLog(b *testing.B) {
	// A line in four has a colon, which sends it through the patterns.
	var body strings.Builder
	for i := range 1000 {
		if i%4 == 0 {
			fmt.Fprintf(&body, "go: downloading example.com/module%d v1.%d.0\n", i, i%7)
			continue
		}
		fmt.Fprintf(&body, "\x1b[32m[INFO]\x1b[0m compiling module %d of the project, with some words to make a realistic line\n", i)
	}
	path := benchFile(b, "build.log", newGenReader("", body.String(), "\n./main.go:12:3: undefined: foo\n", benchSize(200)))
	d, cpu, base, growth := measure(b, path, func(r io.Reader) error {
		ex, err := Excerpt(r, DefaultLimits())
		if err == nil && ex.Pattern != PatternCompiler {
			err = fmt.Errorf("found %q, not the compiler error", ex.Pattern)
		}
		return err
	})
	report(b, "log", d, cpu, base, growth)
}
