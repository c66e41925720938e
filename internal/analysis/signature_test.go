package analysis

import (
	"bytes"
	"testing"
)

func TestMask(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"calc_test.go:34: no config after 1.52643ms: stat /tmp/TestConfig2501530815/001/config.yaml: no such file": "calc_test.go:<n>: no config after <dur>: stat <tmp>: no such file",
		"job 0190a8c4-5d2e-7b3f-9c1d-2e4f6a8b0c1d failed":                                                          "job <uuid> failed",
		"at 2026-11-30T10:02:17.412+00:00 and 10:02:17":                                                            "at <time> and <time>",
		"nil pointer at 0xc000012345 (goroutine 7)":                                                                "nil pointer at <addr> (goroutine <n>)",
		"commit 3f6c1a52ab9e not found":                                                                            "commit <hex> not found",
		"took 1m2.5s, limit 100ms":                                                                                 "took <dur>, limit <dur>",
		"waited 3 seconds":                                                                                         "waited <dur>",
		`open C:\Users\dev\AppData\Local\Temp\pytest-12\x.txt: denied`:                                             "open <tmp>: denied",
		"/private/var/folders/xy/abc123/T/go-build42/b001: gone":                                                   "<tmp>: gone",
		"/home/runner/work/_temp/7f/out.log missing":                                                               "<tmp> missing",
		"expected 90 but was 100":                                                                                  "expected <n> but was <n>",
		"\x1b[31mred\x1b[0m   and\n\tspaced":                                                                       "red and spaced",
		"deadbeef is a word, cafe too":                                                                             "deadbeef is a word, cafe too",
		"/srv/app/tests/InvoiceTest.php stays":                                                                     "/srv/app/tests/InvoiceTest.php stays",
	}
	for in, want := range cases {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSignature(t *testing.T) {
	t.Parallel()
	id := "example.com/sample/calc::TestConfig"
	a := "calc_test.go:34: no config after 1.52643ms: stat /tmp/TestConfig2501530815/001/config.yaml: no such file or directory"
	b := "calc_test.go:34: no config after 988µs: stat /tmp/TestConfig77120/001/config.yaml: no such file or directory"
	if Signature(id, a) != Signature(id, b) {
		t.Errorf("failures differing in a temporary path and a duration have signatures %s and %s", Signature(id, a), Signature(id, b))
	}
	other := "calc_test.go:34: config is empty"
	if Signature(id, a) == Signature(id, other) {
		t.Error("two different assertions share a signature")
	}
	if Signature(id, a) == Signature(id+"2", a) {
		t.Error("two tests share a signature")
	}
	if s := Signature(id, a); len(s) != 16 {
		t.Errorf("signature %q is not 16 hex digits", s)
	}
}

// Two runs of a real test that fails with a fresh temporary directory and
// a measured duration in its message: one signature.
func TestSignatureOfRealReruns(t *testing.T) {
	t.Parallel()
	out, _ := runInSample(t, nil, "go", "test", "-json", "-count=2", "-run", "^TestConfig$", "./calc")
	rep, err := ParseGoTestJSON(bytes.NewReader(out), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Failing()
	if len(f) != 2 || f[0].ID() != f[1].ID() {
		t.Fatalf("want two failures of one test, got %+v", f)
	}
	if f[0].Message == f[1].Message {
		t.Fatalf("the two runs' messages are equal (%q): the test proves nothing", f[0].Message)
	}
	if Signature(f[0].ID(), f[0].Message) != Signature(f[1].ID(), f[1].Message) {
		t.Errorf("signatures differ for\n%q\n%q\nmasked\n%q\n%q", f[0].Message, f[1].Message, Mask(f[0].Message), Mask(f[1].Message))
	}
}
