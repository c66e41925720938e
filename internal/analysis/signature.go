package analysis

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// maskRules replace the parts of a failure message that change from run to
// run without the failure changing, in this order (a UUID before its
// numbers, a temporary path before the numbers in its name).
var maskRules = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "<uuid>"},
	{regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}\b)?`), "<time>"},
	{regexp.MustCompile(`\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b`), "<time>"},
	// Temporary directories: the system's, macOS's per-user one, Windows',
	// and any path through a directory named tmp, temp or _temp (runners'
	// TMPDIR).
	{regexp.MustCompile(`(?i)(?:[a-z]:)?(?:[/\\][^\s'"(),;:<>\[\]]*)?[/\\](?:tmp|temp|_temp|folders)[/\\][^\s'"(),;:<>\[\]]*`), "<tmp>"},
	{regexp.MustCompile(`\b0x[0-9a-fA-F]+\b`), "<addr>"},
	{regexp.MustCompile(`\b(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns))+(?:\b|$)`), "<dur>"},
	{regexp.MustCompile(`(?i)\b\d+(?:\.\d+)? ?(?:seconds?|secs?|milliseconds?|minutes?|mins?)\b`), "<dur>"},
	{regexp.MustCompile(`\b[0-9a-fA-F]*[0-9][0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b|\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*[0-9][0-9a-fA-F]*\b`), "<hex>"},
	{regexp.MustCompile(`\d+`), "<n>"},
}

// Mask returns message with its volatile parts replaced by placeholders:
// UUIDs, timestamps, paths under temporary directories, addresses such as
// 0xc000012345, durations, hexadecimal ids and every other number;
// terminal escapes are dropped and runs of white space become one space.
func Mask(message string) string {
	s := stripANSI(message)
	for _, r := range maskRules {
		if r.with == "<hex>" {
			s = r.re.ReplaceAllStringFunc(s, func(m string) string {
				if len(m) < 8 { // short words such as "b2b" or "1e" stay
					return m
				}
				return "<hex>"
			})
			continue
		}
		s = r.re.ReplaceAllString(s, r.with)
	}
	return strings.Join(strings.Fields(s), " ")
}

// Signature identifies a failure across runs: the SHA-256 of the test id
// and the masked message, as 16 hex digits. Two failures of one test that
// differ only in volatile parts share it; a different message does not.
func Signature(testID, message string) string {
	h := sha256.Sum256([]byte(testID + "\x00" + Mask(message)))
	return hex.EncodeToString(h[:8])
}

var (
	locationRe = regexp.MustCompile(`([A-Za-z0-9_./\\@+~-]*[A-Za-z0-9_]\.(?:go|py|js|jsx|ts|tsx|mjs|cjs|java|kt|kts|scala|groovy|rs|php|rb|cs|c|cc|cpp|cxx|h|hpp|swift|ex|exs|dart)):(\d+)`)
	pyFileRe   = regexp.MustCompile(`File "([^"]+)", line (\d+)`)
)

// libraryPath tells frames of test frameworks and runtimes, which are not
// where a test failed.
func libraryPath(p string) bool {
	for _, s := range []string{"node_modules/", "site-packages/", "dist-packages/", "/src/testing/", "/src/runtime/", "/src/time/", "/rustc/", "/.cargo/registry/", "_testmain.go"} {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}

// locate finds where a failure happened in its text: a file:line outside
// libraries, preferring a file named after the test's class (Java stack
// traces list the assertion library's frames first), then a file named
// like a test (a Go panic lists the runtime's frames first), then the
// first one.
func locate(text, suite string) (string, int) {
	const maxScan = 64 << 10
	text = truncate(text, maxScan)
	class := suite
	if i := strings.LastIndexAny(class, "./\\:"); i >= 0 {
		class = class[i+1:]
	}
	type loc struct {
		file string
		line int
	}
	var best [3]loc // by preference: class, test file, any
	consider := func(file, line string) {
		n, err := strconv.Atoi(line)
		if err != nil || n <= 0 || libraryPath(file) {
			return
		}
		base := path.Base(strings.ReplaceAll(file, "\\", "/"))
		rank := 2
		switch lower := strings.ToLower(base); {
		case class != "" && strings.TrimSuffix(base, path.Ext(base)) == class:
			rank = 0
		case strings.Contains(lower, "test") || strings.Contains(lower, "spec"):
			rank = 1
		}
		if best[rank].file == "" {
			best[rank] = loc{file, n}
		}
	}
	for _, m := range pyFileRe.FindAllStringSubmatch(text, 50) {
		consider(m[1], m[2])
	}
	for _, m := range locationRe.FindAllStringSubmatch(text, 50) {
		consider(m[1], m[2])
	}
	for _, b := range best {
		if b.file != "" {
			return b.file, b.line
		}
	}
	return "", 0
}
