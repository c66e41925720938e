package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchInput returns 20 secrets like real ones (API tokens, passwords, a
// DSN) and 1 MiB of build-log text that prints some of them now and then.
func benchInput() ([]Value, []byte) {
	rng := rand.New(rand.NewPCG(8, 9))
	token := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	var vals []Value
	for i := range 20 {
		switch i % 4 {
		case 0:
			vals = append(vals, New("ghp_"+token(27)))
		case 1:
			vals = append(vals, New(token(12)))
		case 2:
			vals = append(vals, New("postgres://deploy:"+token(9)+"@db.internal:5432/app?sslmode=require"))
		default:
			vals = append(vals, New(hex.EncodeToString([]byte(token(16)))))
		}
	}
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		sum := make([]byte, 20)
		for j := range sum {
			sum[j] = byte(rng.IntN(256))
		}
		switch {
		case i%97 == 0:
			fmt.Fprintf(&b, "2025-06-01T12:%02d:%02dZ debug: using token %s\n", i/60%60, i%60, vals[rng.IntN(20)].Reveal())
		case i%13 == 0:
			fmt.Fprintf(&b, "  blob %s\n", base64.StdEncoding.EncodeToString(append(sum, sum...)))
		default:
			fmt.Fprintf(&b, "2025-06-01T12:%02d:%02dZ [INFO] compiling internal/pkg%d/file_%d.go (%x) ok\n",
				i/60%60, i%60, i%37, i, sum[:8])
		}
	}
	return vals, []byte(b.String()[:1<<20])
}

// BenchmarkMasker masks 1 MiB of log text with 20 secrets. "pipe" writes
// 32 KiB at a time (what io.Copy from a pipe does); "lines" writes line by
// line (an unbuffered program), where the cost per Write dominates.
func BenchmarkMasker(b *testing.B) {
	vals, text := benchInput()
	var lines [][]byte
	for rest := text; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n') + 1
		if i == 0 {
			i = len(rest)
		}
		lines = append(lines, rest[:i])
		rest = rest[i:]
	}
	var pipe [][]byte
	for i := 0; i < len(text); i += 32 << 10 {
		pipe = append(pipe, text[i:min(i+32<<10, len(text))])
	}
	for _, bc := range []struct {
		name   string
		chunks [][]byte
	}{{"pipe", pipe}, {"lines", lines}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			k := NewMasker(io.Discard, vals)
			for b.Loop() {
				for _, c := range bc.chunks {
					if _, err := k.Write(c); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkNewMasker measures building the automaton for 20 secrets,
// paid once per attempt.
func BenchmarkNewMasker(b *testing.B) {
	vals, _ := benchInput()
	for b.Loop() {
		NewMasker(io.Discard, vals)
	}
}
