package gitx

import (
	"strings"
	"testing"
)

func TestTransport(t *testing.T) {
	t.Parallel()
	ok := map[string]string{
		"/srv/git/mono":                     "file",
		"file:///srv/git/mono":              "file",
		"https://git.example.com/org/m.git": "https",
		"HTTP://git.example.com/m.git":      "http",
		"ssh://git@git.example.com/m.git":   "ssh",
		"git+ssh://git.example.com/m.git":   "ssh",
		"git@github.com:org/mono.git":       "ssh",
		"git://git.example.com/m.git":       "git",
	}
	for url, want := range ok {
		got, err := Transport(url)
		if err != nil || got != want {
			t.Errorf("Transport(%q) = %q, %v; want %q", url, got, err, want)
		}
	}
	bad := map[string]string{
		"":                           "empty",
		"fd::3":                      "remote helper",
		"ext::sh -c touch% /tmp/pwn": "space",
		"ext::nc%20host":             "remote helper",
		"foo::https://x/y":           "remote helper",
		"-uhttps://x":                "starts with '-'",
		"relative/path":              "absolute path",
		"./mono":                     "absolute path",
		"ftp://example.com/m.git":    "not allowed",
		"https://x/a\nb":             "control",
	}
	for url, want := range bad {
		_, err := Transport(url)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Transport(%q) = %v; want an error saying %q", url, err, want)
		}
	}
}
