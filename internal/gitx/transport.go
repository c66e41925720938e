package gitx

import (
	"strings"
	"unicode"

	"github.com/deltaci/deltaci/internal/core"
)

// Transport returns the git transport a clone URL uses, named as
// GIT_ALLOW_PROTOCOL names them: file (an absolute path or file://), http,
// https, ssh (ssh:// or user@host:path) or git. Anything else is refused:
// remote helpers (ext::, fd::, <helper>::) run commands or read
// descriptors, and a relative path would depend on the server's working
// directory.
func Transport(url string) (string, error) {
	const op = "repository URL"
	switch {
	case url == "":
		return "", core.E(core.KindInvalid, op, "the repository URL is empty")
	case strings.HasPrefix(url, "-"):
		return "", core.E(core.KindInvalid, op, "%q starts with '-'", url)
	case strings.IndexFunc(url, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return "", core.E(core.KindInvalid, op, "%q has a space or control character", url)
	case strings.HasPrefix(url, "/"):
		return "file", nil
	}
	if h := strings.Index(url, "::"); h >= 0 && (h < strings.Index(url, "://") || !strings.Contains(url, "://")) {
		return "", core.E(core.KindInvalid, op, "%q: remote helper transports (%s::) are not allowed", url, url[:h])
	}
	if scheme, _, ok := strings.Cut(url, "://"); ok {
		switch strings.ToLower(scheme) {
		case "file", "http", "https", "ssh", "git":
			return strings.ToLower(scheme), nil
		case "git+ssh", "ssh+git":
			return "ssh", nil
		}
		return "", core.E(core.KindInvalid, op, "%q: transport %s:// is not allowed; use https, http, ssh, git, file or an absolute path", url, scheme)
	}
	// scp-like user@host:path, with the colon before any slash.
	if i := strings.IndexByte(url, ':'); i > 0 && !strings.Contains(url[:i], "/") {
		return "ssh", nil
	}
	return "", core.E(core.KindInvalid, op, "%q: a local repository must be an absolute path", url)
}

// allowProtocol is the GIT_ALLOW_PROTOCOL setting for fetching url: its
// own transport only (and https after an http redirect).
func allowProtocol(url string) (string, error) {
	t, err := Transport(url)
	if err != nil {
		return "", err
	}
	if t == "http" {
		return "GIT_ALLOW_PROTOCOL=http:https", nil
	}
	return "GIT_ALLOW_PROTOCOL=" + t, nil
}
