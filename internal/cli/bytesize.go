package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/executor"
)

// byteSize is a size flag: a whole number of bytes with an optional unit
// (KiB, MiB, GiB, TiB, or K, M, G, T meaning the same powers of 1024), or
// "none" for no limit. Zero means the default.
type byteSize int64

var sizeUnits = []struct {
	suffixes []string
	shift    uint
}{
	{[]string{"TiB", "T"}, 40}, {[]string{"GiB", "G"}, 30}, {[]string{"MiB", "M"}, 20}, {[]string{"KiB", "K"}, 10}, {[]string{"B", ""}, 0},
}

func (b *byteSize) Set(s string) error {
	if s == "none" {
		*b = byteSize(executor.NoLimit)
		return nil
	}
	for _, u := range sizeUnits {
		for _, suf := range u.suffixes {
			num, ok := strings.CutSuffix(s, suf)
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n <= 0 || n > (1<<62)>>u.shift {
				return fmt.Errorf("%q is not a size: write a positive whole number with a unit, such as 512MiB or 20GiB, or none", s)
			}
			*b = byteSize(n << u.shift)
			return nil
		}
	}
	return fmt.Errorf("%q is not a size", s)
}

func (b *byteSize) String() string {
	switch {
	case *b == 0:
		return ""
	case int64(*b) == executor.NoLimit:
		return "none"
	}
	for _, u := range sizeUnits {
		if v := int64(*b); u.shift > 0 && v%(1<<u.shift) == 0 {
			return strconv.FormatInt(v>>u.shift, 10) + u.suffixes[0]
		}
	}
	return strconv.FormatInt(int64(*b), 10) + "B"
}

func (b *byteSize) Type() string { return "size" }
