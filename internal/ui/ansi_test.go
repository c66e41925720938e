package ui

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/deltaci/deltaci/internal/protocol"
)

func TestRenderANSI(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"Plain", "hello", "hello"},
		{"Escaped", `<b onclick="x">&'`, "&lt;b onclick=&#34;x&#34;&gt;&amp;&#39;"},
		{"Red", "\x1b[31mred\x1b[0m plain", `<span class="f1">red</span> plain`},
		{"BoldBrightOnBlue", "\x1b[1;92;44mok", `<span class="f10 g4 ab">ok</span>`},
		{"Palette", "\x1b[38;5;208mx", `<span class="f208">x</span>`},
		{"TrueColour", "\x1b[38;2;255;0;0mx", `<span class="f196">x</span>`},
		{"ResetFg", "\x1b[33ma\x1b[39mb", `<span class="f3">a</span>b`},
		{"CursorMovesDropped", "a\x1b[2Kb\x1b[1Gc", "abc"},
		{"OSCDropped", "\x1b]0;title\x07text", "text"},
		{"OSCWithST", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"CarriageReturnOverwrites", "10%\r50%\r\x1b[32m100%", `<span class="f2">100%</span>`},
		{"ControlsDropped", "a\x00b\x07c\td", "abc\td"},
		{"InvalidUTF8", "a\xffb", "a\uFFFDb"},
		{"Truncated", "ab\x1b[3", "ab"},
		{"BadColour", "\x1b[38;5;999mx", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			st := plain
			renderANSI(&b, []byte(tc.in), &st)
			if b.String() != tc.want {
				t.Errorf("renderANSI(%q) = %q, want %q", tc.in, b.String(), tc.want)
			}
		})
	}
}

func TestStyleCarriesAcrossLines(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	renderLines(&b, []byte("\x1b[31mred\nstill red\x1b[0m\nplain\n"), 100, nil)
	out := b.String()
	for _, want := range []string{`id="o100"`, `id="o109"`, `id="o123"`, `<span class="f1">still red</span>`, `<span class="t">plain</span>`} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered lines lack %q:\n%s", want, out)
		}
	}
}

func TestSectionsAreClassified(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	t0 := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	// The second chunk arrived 1.5 s later and starts inside the line at
	// 26: that line keeps the first chunk's time, the next has the second's.
	times := arrivals{{Offset: 0, At: t0}, {Offset: 30, At: t0.Add(1500 * time.Millisecond)}}
	renderLines(&b, []byte("::group::Install <deps>\nx\n::endgroup::\n--- Build\n+++ Test\n~~~ Quiet\n"), 0, times)
	out := b.String()
	for _, want := range []string{
		`class="l h hg"`, `aria-expanded="true">Install &lt;deps&gt;</button>`, `class="l he"`,
		`class="l h hs" id="o39"`, `class="l h hs ho"`, `>Quiet</button>`,
		`id="o0" data-at="12:00:00.000"`, `id="o26" data-at="12:00:00.000"`, `id="o39" data-at="12:00:01.500"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rendered sections lack %q:\n%s", want, out)
		}
	}
}

func TestLineStart(t *testing.T) {
	t.Parallel()
	data := []byte("abc\ndef\nghi")
	for _, tc := range []struct {
		base, from, want int64
		ok               bool
	}{
		{0, 0, 0, true}, {10, 10, 14, true}, {10, 14, 14, true}, {10, 15, 18, true}, {10, 19, 0, false},
	} {
		got, ok := lineStart(data, tc.base, tc.from)
		if got != tc.want || ok != tc.ok {
			t.Errorf("lineStart(base %d, from %d) = %d, %v; want %d, %v", tc.base, tc.from, got, ok, tc.want, tc.ok)
		}
	}
}

var tagRE = regexp.MustCompile(`<span class="[a-z0-9 ]*">|</span>`)

// FuzzRenderANSI checks that no input escapes the text: once the spans
// renderANSI makes are taken out, no markup is left, and the output is
// valid UTF-8 whatever the input.
func FuzzRenderANSI(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31mred\x1b[0m", "<script>", "\x1b[38;2;1;2;3m\x1b]0;t\x07x", "a\rb", "\x1b[", "\xff\xfe"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var b bytes.Buffer
		st := plain
		renderANSI(&b, in, &st)
		out := b.String()
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", in)
		}
		text := tagRE.ReplaceAllString(out, "")
		if strings.ContainsAny(text, `<>"'`) {
			t.Fatalf("markup escaped from %q: %q", in, out)
		}
		if strings.Count(out, "<span") != strings.Count(out, "</span>") {
			t.Fatalf("unbalanced spans from %q: %q", in, out)
		}
		var lines bytes.Buffer
		renderLines(&lines, in, 0, nil)
		if strings.Count(lines.String(), "<div") != strings.Count(lines.String(), "</div>") {
			t.Fatalf("unbalanced lines from %q", in)
		}
	})
}

func TestLayoutPutsEachJobAfterWhatItNeeds(t *testing.T) {
	t.Parallel()
	jobs := []protocol.Job{
		{Name: "lint"}, {Name: "build"}, {Name: "test", Needs: []string{"build"}},
		{Name: "deploy", Needs: []string{"test", "lint"}}, {Name: "docs", Needs: []string{"build"}},
	}
	g := layout("r", jobs)
	layer := map[string]int{}
	x := map[string]int{}
	for _, n := range g.Nodes {
		layer[n.Name], x[n.Name] = n.Layer, n.X
	}
	want := map[string]int{"lint": 0, "build": 0, "test": 1, "docs": 1, "deploy": 2}
	for name, l := range want {
		if layer[name] != l {
			t.Errorf("job %s in layer %d, want %d", name, layer[name], l)
		}
	}
	if !(x["build"] < x["test"] && x["test"] < x["deploy"]) {
		t.Errorf("positions do not follow the needs: %v", x)
	}
	if len(g.Edges) != 4 {
		t.Errorf("%d edges, want 4", len(g.Edges))
	}
	for _, n := range g.Nodes {
		if n.X+nodeW > g.Width || n.Y+nodeH > g.Height {
			t.Errorf("job %s at (%d,%d) outside the %dx%d graph", n.Name, n.X, n.Y, g.Width, g.Height)
		}
	}
}

func TestWaterfallMarksTheCriticalPath(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { v := t0.Add(time.Duration(s) * time.Second); return &v }
	att := func(q, s, e int) []protocol.Attempt {
		return []protocol.Attempt{{Number: 1, State: "succeeded", QueuedAt: *at(q), StartedAt: at(s), FinishedAt: at(e)}}
	}
	run := protocol.Run{ID: "r", CreatedAt: t0, FinishedAt: at(100), Jobs: []protocol.Job{
		{Name: "a", Attempts: att(0, 5, 30), FinishedAt: at(30)},
		{Name: "b", Attempts: att(0, 1, 10), FinishedAt: at(10)},
		{Name: "c", Needs: []string{"a", "b"}, Attempts: att(30, 40, 100), FinishedAt: at(100)},
		{Name: "d", State: "reused"},
	}}
	w := makeWaterfall(run, t0.Add(time.Hour))
	crit := map[string]bool{}
	for _, r := range w.Rows {
		crit[r.Name] = r.Critical
	}
	if !crit["a"] || crit["b"] || !crit["c"] || crit["d"] {
		t.Errorf("critical path %v, want a and c", crit)
	}
	c := w.Rows[2]
	if len(c.Segs) != 2 || c.Segs[0].Kind != "wait" || c.Segs[1].Kind != "run" {
		t.Fatalf("job c's segments: %+v", c.Segs)
	}
	if c.Segs[0].X != fallLabel+fallBar*30/100 || c.Segs[1].X+c.Segs[1].W != fallLabel+fallBar {
		t.Errorf("job c's bars are not on the run's time axis: %+v", c.Segs)
	}
	if w.Rows[3].Note != "reused" {
		t.Errorf("the reused job's row says %q", w.Rows[3].Note)
	}
}
