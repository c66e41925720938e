package webauth_test

import (
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/deltaci/deltaci/internal/webauth"
)

func TestParsePrincipal(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want, err string }{
		{"Ada@Example.COM", "ada@example.com", ""},
		{"group:CI Admins", "group:CI Admins", ""},
		{"sub:00u1x2y3", "sub:00u1x2y3", ""},
		{"", "", "name an e-mail address"},
		{"ada", "", "not an e-mail address"},
		{"@example.com", "", "not an e-mail address"},
		{"Ada <ada@example.com>", "", "without a display name"},
		{"ada@example.com\n", "", "control character"},
		{"ada@.example.com", "", "domain is malformed"},
		{"ada@example..com", "", "domain is malformed"},
		{"group:", "", "group:NAME needs a name"},
		{"group: ops", "", "group:NAME needs a name"},
		{"sub:", "", "sub:SUBJECT needs a subject"},
		{"sub:a b", "", "sub:SUBJECT needs a subject"},
		{"group:" + strings.Repeat("x", 300), "", "longer than 300"},
	} {
		got, err := webauth.ParsePrincipal(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePrincipal(%q) = %q, %v; want an error saying %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePrincipal(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParsePrincipal: what it accepts is stored as it returns it, so its
// result must be accepted again unchanged, and hold no control character.
func FuzzParsePrincipal(f *testing.F) {
	for _, s := range []string{"ada@example.com", "group:ops", "sub:1", "Ada <a@b>", "group: x", "a@b..c", "\x00@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := webauth.ParsePrincipal(s)
		if err != nil {
			return
		}
		if again, err := webauth.ParsePrincipal(p); err != nil || again != p {
			t.Fatalf("ParsePrincipal(%q) = %q, but that parses as %q, %v", s, p, again, err)
		}
		for _, r := range p {
			if unicode.IsControl(r) {
				t.Fatalf("ParsePrincipal(%q) = %q, with a control character", s, p)
			}
		}
	})
}

// FuzzSafeNext: whatever it accepts, a browser resolves against the UI's
// own origin and stays there.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/runs?x=1#a", "//evil", "/\\evil", "https://evil/", "/%2F%2Fevil", "/a/../../b", " /x", "/\t/evil"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://ci.example.com/login")
	f.Fuzz(func(t *testing.T, s string) {
		next, err := webauth.SafeNext(s)
		if err != nil {
			return
		}
		u, err := base.Parse(next)
		if err != nil {
			t.Fatalf("SafeNext(%q) = %q, which does not parse: %v", s, next, err)
		}
		if u.Scheme != "https" || u.Host != "ci.example.com" || u.User != nil {
			t.Fatalf("SafeNext(%q) = %q leads to %s", s, next, u)
		}
		if strings.ContainsAny(next, "\\\r\n\t") {
			t.Fatalf("SafeNext(%q) = %q keeps a character browsers strip or fold", s, next)
		}
	})
}
