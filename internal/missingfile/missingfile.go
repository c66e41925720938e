// Package missingfile reads a job's output for the files it could not
// find: the messages that programs print when opening a file fails with
// ENOENT ("No such file or directory", "cannot open", "can't open file",
// Node's "ENOENT: ..., open 'x'", make's "No rule to make target"). It
// is how deltaci plan --check-inputs names the file a hermetic job missed.
package missingfile

import (
	"bytes"
	"regexp"
	"strings"
)

// MaxNames bounds the names Scan returns: a job that fails on one missing
// file rarely names more than a few.
const MaxNames = 20

// maxLine bounds the part of a line that is searched, so that one huge
// line costs no more than a screenful.
const maxLine = 4096

// Patterns whose first group is the name, most specific first.
var named = []*regexp.Regexp{
	// Node: "Error: ENOENT: no such file or directory, open '/ws/x.json'".
	regexp.MustCompile(`ENOENT[:,][^'"]*?, (?:open|stat|lstat|scandir|readlink|access|copyfile|rename|unlink|mkdir|rmdir|chmod|utime) ['"]([^'"]+)['"]`),
	// Python: "FileNotFoundError: [Errno 2] No such file or directory: 'x'".
	regexp.MustCompile(`\[Errno 2\] No such file or directory: ['"]([^'"]+)['"]`),
	// Python's interpreter: "can't open file '/ws/x.py': [Errno 2] ...".
	regexp.MustCompile(`can't open file ['"]([^'"]+)['"]`),
	// Java: "java.io.FileNotFoundException: x (No such file or directory)".
	regexp.MustCompile(`FileNotFoundException: (.+?) \(No such file`),
	// make: "No rule to make target 'x', needed by 'y'".
	regexp.MustCompile("No rule to make target [`'‘\"]([^'’\"]+)['’\"]"),
	// "file: cannot open `x' (No such file or directory)", "cannot open x".
	regexp.MustCompile("(?i)(?:cannot|can't|could not|couldn't|unable to|failed to) (?:open|read|stat|access|find)(?: file)? [`'‘\"]([^'’`\"]+)['’`\"]"),
}

// noSuchFile ends the name before it: "cat: x: No such file or directory",
// Go's "open x: no such file or directory", dash's "cannot open x: No such
// file".
var noSuchFile = regexp.MustCompile(`(?i):\s*no such file`)

// notFound is dash's "sh: 1: ./x.sh: not found"; without a slash the name is
// a command, not a file.
var notFound = regexp.MustCompile(`: ([^\s:]*/[^\s:]*): not found\s*$`)

// Words that open the segment before ": No such file" without being part
// of the name.
var verbs = []string{"cannot open ", "can't open ", "could not open ", "open ", "stat ", "lstat ", "read ", "readlink ", "chdir ", "cd: "}

// Scan returns the names of missing files that output shows, each once, in
// the order they first appear, at most MaxNames. A name is as the output
// prints it: relative to wherever the program ran, or absolute.
func Scan(output []byte) []string {
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		name = clean(name)
		if name == "" || seen[name] || len(out) >= MaxNames {
			return
		}
		seen[name] = true
		out = append(out, name)
	}
	for line := range bytes.Lines(output) {
		if len(out) >= MaxNames {
			break
		}
		s := strings.TrimRight(string(line[:min(len(line), maxLine)]), "\r\n")
		found := false
		for _, re := range named {
			if m := re.FindStringSubmatch(s); m != nil {
				add(m[1])
				found = true
				break
			}
		}
		if found {
			continue
		}
		if loc := noSuchFile.FindStringIndex(s); loc != nil {
			add(beforeNoSuchFile(s[:loc[0]]))
			continue
		}
		if m := notFound.FindStringSubmatch(s); m != nil {
			add(m[1])
		}
	}
	return out
}

// beforeNoSuchFile takes the name from what precedes ": No such file": the
// last ": "-separated segment, without a leading verb.
func beforeNoSuchFile(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	s = strings.TrimSpace(s)
	for _, v := range verbs {
		if len(s) > len(v) && strings.EqualFold(s[:len(v)], v) {
			s = s[len(v):]
			break
		}
	}
	return s
}

// clean drops quotes around a name and refuses what cannot be one.
func clean(name string) string {
	name = strings.TrimSpace(name)
	name = strings.Trim(name, "`'\"‘’“”")
	switch {
	case name == "" || name == "." || name == "..":
		return ""
	case strings.ContainsAny(name, "\x00\n"):
		return ""
	case strings.Contains(name, " ") && !strings.Contains(name, "/") && !strings.Contains(name, "."):
		// A phrase ("Cannot open", "[Errno 2]"), not a file name.
		return ""
	}
	return name
}
