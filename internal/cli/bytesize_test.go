package cli

import (
	"testing"

	"github.com/deltaci/deltaci/internal/executor"
)

func TestByteSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"20GiB": 20 << 30, "20G": 20 << 30, "512MiB": 512 << 20, "1T": 1 << 40, "4096": 4096, "64KiB": 64 << 10,
		"none": executor.NoLimit,
	} {
		var b byteSize
		if err := b.Set(in); err != nil || int64(b) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, b, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1G", "ten", "1.5G", "1PiB", "9999999999T", "G"} {
		var b byteSize
		if err := b.Set(in); err == nil {
			t.Errorf("Set(%q) = %d, want an error", in, b)
		}
	}
	b := byteSize(20 << 30)
	if b.String() != "20GiB" {
		t.Errorf("String() = %q", b.String())
	}
}
