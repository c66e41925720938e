package webauth

import (
	"errors"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Principal prefixes of role bindings; a principal without one is an
// e-mail address.
const (
	groupPrefix = "group:"
	subPrefix   = "sub:"
	// maxPrincipal is the longest principal: an OpenID subject may be 255
	// ASCII characters.
	maxPrincipal = 300
)

// ParsePrincipal checks who a role binding names and returns its stored
// form: an e-mail address (lower-cased), "sub:" and an OpenID subject, or
// "group:" and a group of the provider's group claim.
func ParsePrincipal(s string) (string, error) {
	if s == "" {
		return "", errors.New("name an e-mail address, sub:SUBJECT or group:NAME")
	}
	if len(s) > maxPrincipal {
		return "", errors.New("longer than 300 bytes")
	}
	if !utf8.ValidString(s) {
		return "", errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) && r != ' ' {
			return "", errors.New("contains a control character")
		}
	}
	switch {
	case strings.HasPrefix(s, groupPrefix):
		g := s[len(groupPrefix):]
		if g == "" || strings.TrimSpace(g) != g {
			return "", errors.New("group:NAME needs a name without leading or trailing spaces")
		}
		return s, nil
	case strings.HasPrefix(s, subPrefix):
		sub := s[len(subPrefix):]
		if sub == "" || strings.ContainsRune(sub, ' ') {
			return "", errors.New("sub:SUBJECT needs a subject without spaces")
		}
		return s, nil
	}
	local, domain, ok := strings.Cut(s, "@")
	switch {
	case !ok || local == "" || domain == "":
		return "", errors.New("not an e-mail address (or sub:SUBJECT, group:NAME)")
	case strings.ContainsAny(s, " <>()[],;:\\\""):
		return "", errors.New("an e-mail address without a display name, spaces or brackets is needed")
	case strings.Contains(domain, "@") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, ".."):
		return "", errors.New("the e-mail address's domain is malformed")
	}
	return strings.ToLower(s), nil
}

// SafeNext checks where a login returns to: a path of this site, never
// another host ("//host", "/\host", "https://host"). "" means "/".
func SafeNext(next string) (string, error) {
	if next == "" {
		return "/", nil
	}
	if len(next) > 2048 {
		return "", errors.New("next: longer than 2048 bytes")
	}
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "", errors.New("next: give a path of this site, starting with one /")
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "", errors.New("next: control characters and backslashes are not allowed")
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "", errors.New("next: give a path of this site, starting with one /")
	}
	return next, nil
}
