package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestDocsNameRealCommands reads every deltaci and artifactstore command
// line in README.md and docs/*.md, in fenced code blocks and inline code
// spans, and checks that each subcommand and flag it names exists in the
// binaries' command trees. A renamed flag fails here, naming the file and
// line of each stale mention.
func TestDocsNameRealCommands(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../../README.md"}, files...)
	trees := docTrees()
	var lines int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(filepath.ToSlash(f), "../../")
		for _, cl := range docCommandLines(string(b)) {
			lines++
			if problem := checkCommandLine(trees, cl.text); problem != "" {
				t.Errorf("%s:%d: %s\n\t%s", name, cl.line, problem, cl.text)
			}
		}
	}
	// The docs are full of commands; finding few means the reader broke.
	if lines < 100 {
		t.Errorf("found only %d command lines in %d files", lines, len(files))
	}
}

// TestDocsCheckerCatchesStaleCommands: the reader finds commands however
// the docs write them, and the checker names what does not exist.
func TestDocsCheckerCatchesStaleCommands(t *testing.T) {
	t.Parallel()
	doc := "Run `deltaci plan --bsae main` first.\n\n" +
		"```sh\n" +
		"$ DELTACI_SERVER=http://x bin/deltaci runners ls --json | jq . # list them\n" +
		"go run ./cmd/deltaci trigger \\\n" +
		"    --server http://x --folow &\n" +
		"deltaci runners list\n" +
		"artifactstore --store ./s gc --grace=1h -x\n" +
		"deltaci: this line is output, not a command --nonsense\n" +
		"echo deltaci --not-in-command-position\n" +
		"deltaci projects ── /api/v1/projects ─┐\n" +
		"```\n" +
		"```text\n" +
		"deltaci dev 4231 go1.26 linux/amd64\n" +
		"```\n" +
		"And `deltaci server --listen 0.0.0.0:8080` with `deltaci run -v --jobs build`.\n"
	cls := docCommandLines(doc)
	var got []string
	for _, cl := range cls {
		got = append(got, fmt.Sprintf("%d: %s", cl.line, checkCommandLine(docTrees(), cl.text)))
	}
	want := []string{
		`1: unknown flag --bsae for "deltaci plan"`,
		`4: `,
		`5: unknown flag --folow for "deltaci trigger"`,
		`7: unknown command "list" for "deltaci runners"`,
		`8: unknown flag -x for "artifactstore gc"`,
		`9: `,
		`10: `,
		`11: `,
		`16: `,
		`16: `,
	}
	if !slices.Equal(got, want) {
		t.Errorf("checked:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// docTrees are the command trees of the two binaries, by program name.
func docTrees() map[string]*cobra.Command {
	roots := map[string]*cobra.Command{
		"deltaci":       newRoot(env{}),
		"artifactstore": newArtifactStoreRoot(env{}),
	}
	for _, r := range roots {
		r.InitDefaultHelpCmd()
		r.InitDefaultCompletionCmd()
	}
	return roots
}

// docLine is a command line found in a document, at its first line.
type docLine struct {
	line int
	text string
}

var (
	fence      = regexp.MustCompile("^\\s*(```+|~~~+)")
	inlineCode = regexp.MustCompile("`([^`\n]+)`")
	// programs are the ways the docs start the two binaries.
	program = regexp.MustCompile(`^(?:(?:\./|\S*/)?(?:bin/)?(deltaci|artifactstore)|go run \./cmd/(deltaci|artifactstore))$`)
)

// docCommandLines returns the text of every code line and inline code
// span that may hold a command, with continuation lines joined. Fenced
// blocks whose info string is "text" hold output and are skipped.
func docCommandLines(doc string) []docLine {
	var out []docLine
	inFence, output := false, false
	var pending *docLine
	for i, l := range strings.Split(doc, "\n") {
		n := i + 1
		if m := fence.FindStringSubmatch(l); m != nil {
			inFence = !inFence
			// A block marked text is a program's output.
			output = inFence && strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), m[1])) == "text"
			pending = nil
			continue
		}
		if output {
			continue
		}
		if !inFence {
			for _, m := range inlineCode.FindAllStringSubmatch(l, -1) {
				if strings.Contains(m[1], "deltaci") || strings.Contains(m[1], "artifactstore") {
					out = append(out, docLine{n, m[1]})
				}
			}
			continue
		}
		text := strings.TrimSpace(l)
		if pending != nil {
			pending.text += " " + text
		} else {
			pending = &docLine{n, text}
		}
		if strings.HasSuffix(pending.text, "\\") {
			pending.text = strings.TrimSuffix(pending.text, "\\")
			continue
		}
		if strings.Contains(pending.text, "deltaci") || strings.Contains(pending.text, "artifactstore") {
			out = append(out, *pending)
		}
		pending = nil
	}
	return out
}

// checkCommandLine checks every command of a shell line that starts one
// of the binaries, and returns the first problem, or "".
func checkCommandLine(trees map[string]*cobra.Command, line string) string {
	line = strings.TrimPrefix(strings.TrimSpace(line), "$ ")
	for _, seg := range shellSegments(line) {
		// Environment assignments and wrappers before the command.
		for len(seg) > 0 && (isAssignment(seg[0]) || seg[0] == "sudo" || seg[0] == "exec" || seg[0] == "time" || seg[0] == "env" || seg[0] == "nohup") {
			if seg[0] == "sudo" && len(seg) > 2 && seg[1] == "-u" {
				seg = seg[2:]
			}
			seg = seg[1:]
		}
		if len(seg) >= 3 && seg[0] == "go" && seg[1] == "run" {
			seg = append([]string{"go run " + seg[2]}, seg[3:]...)
		}
		if len(seg) == 0 {
			continue
		}
		m := program.FindStringSubmatch(seg[0])
		if m == nil {
			continue
		}
		if problem := checkDocArgs(trees[m[1]+m[2]], seg[1:]); problem != "" {
			return problem
		}
	}
	return ""
}

// checkDocArgs walks args down cmd's tree.
func checkDocArgs(cmd *cobra.Command, args []string) string {
	positional := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if isPlaceholder(a) {
			return "" // "deltaci <command> …": nothing more to check
		}
		if a == "--" {
			return ""
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			name, hasValue := strings.CutPrefix(a, "--")
			var fl *pflag.Flag
			if hasValue {
				name, _, hasValue = strings.Cut(name, "=")
				fl = lookupFlag(cmd, name, false)
				if fl == nil {
					return fmt.Sprintf("unknown flag --%s for %q", name, cmd.CommandPath())
				}
			} else {
				// Short flags, possibly several (-vq) or with a value (-j4).
				shorts := a[1:]
				for j := 0; j < len(shorts); j++ {
					fl = lookupFlag(cmd, shorts[j:j+1], true)
					if fl == nil {
						return fmt.Sprintf("unknown flag -%s for %q", shorts[j:j+1], cmd.CommandPath())
					}
					if fl.NoOptDefVal == "" {
						hasValue = j < len(shorts)-1
						break
					}
				}
			}
			if fl.NoOptDefVal == "" && !hasValue {
				i++ // the flag's value
			}
			continue
		}
		if positional {
			continue
		}
		if sub := findSub(cmd, a); sub != nil {
			cmd = sub
			continue
		}
		if cmd.HasAvailableSubCommands() && !cmd.Runnable() {
			return fmt.Sprintf("unknown command %q for %q", a, cmd.CommandPath())
		}
		positional = true
	}
	return ""
}

// lookupFlag finds a flag of cmd or a persistent flag of its parents.
func lookupFlag(cmd *cobra.Command, name string, short bool) *pflag.Flag {
	if name == "help" || (short && name == "h") {
		return &pflag.Flag{Name: "help", NoOptDefVal: "true"}
	}
	find := func(fs *pflag.FlagSet) *pflag.Flag {
		if short {
			return fs.ShorthandLookup(name)
		}
		return fs.Lookup(name)
	}
	if fl := find(cmd.Flags()); fl != nil {
		return fl
	}
	for c := cmd; c != nil; c = c.Parent() {
		if fl := find(c.PersistentFlags()); fl != nil {
			return fl
		}
	}
	return nil
}

func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || slices.Contains(c.Aliases, name) {
			return c
		}
	}
	return nil
}

// isPlaceholder reports whether a word stands for something the reader
// fills in: <name>, [flags], …, ..., {a|b}.
// A word that starts with a drawing character (a diagram's arrow) ends
// the command too.
func isPlaceholder(w string) bool {
	return strings.HasPrefix(w, "<") || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "{") ||
		strings.HasPrefix(w, "…") || strings.HasPrefix(w, "...") || (w[0] >= 0x80 && strings.IndexFunc(w, unicode.IsLetter) != 0)
}

func isAssignment(w string) bool {
	k, _, ok := strings.Cut(w, "=")
	return ok && k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	}) < 0
}

// shellSegments splits a line into the words of each simple command:
// at pipes, &&, ||, ;, &, parentheses and $( ), with quotes kept
// together and a comment dropped.
func shellSegments(line string) [][]string {
	var segs [][]string
	var words []string
	var w strings.Builder
	inWord := false
	flushWord := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	flushSeg := func() {
		flushWord()
		if len(words) > 0 {
			segs = append(segs, words)
		}
		words = nil
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				end = len(line) - i - 1
			}
			w.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case c == '#' && !inWord:
			flushSeg()
			return segs
		case c == ' ' || c == '\t':
			flushWord()
		case c == '|' || c == '&' || c == ';' || c == '(' || c == ')' || c == '`':
			flushSeg()
		case c == '$' && i+1 < len(line) && line[i+1] == '(':
			flushSeg()
			i++
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flushSeg()
	return segs
}
