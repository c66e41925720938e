package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// MinFormLen is the shortest value, or line of a value, whose derived forms
// the Masker looks for. A value of any length is masked where it appears
// verbatim; below MinFormLen bytes its encodings and lines are left alone,
// because a 1–3 byte pattern (the base64 of "ab", a line "}") occurs
// everywhere in ordinary output and masking it would ruin the log while
// protecting little: such a value is guessable anyway.
const MinFormLen = 4

// maxEncodedLen bounds the values whose encodings are masked. The automaton
// grows by some 30 bytes per pattern byte, and the encodings multiply a
// value's size by about ten: a 64 KiB value already costs some 12 MiB.
// Longer values (a secret is rarely one) are masked verbatim and by line.
const maxEncodedLen = 64 << 10

// forms returns the byte strings the Masker replaces for value v, without
// duplicates: the value itself, then, when it has at least MinFormLen bytes
// (the encodings only up to maxEncodedLen bytes):
//
//   - its standard and URL-alphabet base64 at offsets 0, 1 and 2 (see
//     base64Core); padded and raw encodings share these substrings;
//   - url.QueryEscape and url.PathEscape;
//   - its JSON string escaping without the quotes, both as json.Marshal
//     writes it (<, >, & as \u003c…) and without HTML escaping, as most
//     other encoders write it;
//   - each line, split at '\n' and trimmed of surrounding blanks and '\r',
//     that has at least MinFormLen bytes: programs print multi-line secrets
//     line by line, and a trailing newline is often stripped.
func forms(v string) []string {
	if v == "" {
		return nil
	}
	out := []string{v}
	if len(v) < MinFormLen {
		return out
	}
	if len(v) <= maxEncodedLen {
		for off := 0; off < 3; off++ {
			out = append(out,
				base64Core(base64.StdEncoding, v, off),
				base64Core(base64.URLEncoding, v, off))
		}
		out = append(out, url.QueryEscape(v), url.PathEscape(v))
		out = append(out, jsonString(v, true), jsonString(v, false))
	}
	for _, line := range strings.Split(v, "\n") {
		if line = strings.Trim(line, " \t\r"); len(line) >= MinFormLen {
			out = append(out, line)
		}
	}
	return dedupe(out)
}

// base64Core returns the part of the base64 encoding of v that is the same
// whatever surrounds v, when v starts at byte offset off (0, 1 or 2) of a
// 3-byte group of the encoded data.
//
// Base64 turns each 6-bit group of the input into one character. With v at
// byte offset off, its bits occupy [8·off, 8·(off+n)) of the stream, and
// character j covers bits [6j, 6j+6). Only characters whose 6 bits all come
// from v are stable: j from ceil(8·off/6) (0, 2 or 3) up to, not including,
// floor(8·(off+n)/6). The characters at either edge mix in bits of the
// neighbouring bytes, or of padding, and differ from one occurrence to the
// next; they reveal at most 4 bits of v's first or last byte. Padding '='
// only ever follows the stable part, so raw (unpadded) encodings contain the
// same stable substring as padded ones.
func base64Core(enc *base64.Encoding, v string, off int) string {
	n := len(v)
	// Zero bytes stand in for the unknown prefix: the characters kept do
	// not depend on them.
	buf := make([]byte, off+n)
	copy(buf[off:], v)
	e := enc.EncodeToString(buf)
	from := (8*off + 5) / 6
	to := 8 * (off + n) / 6
	return e[from:to]
}

// jsonString returns v as a JSON string body, without the quotes.
func jsonString(v string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(v) // a string always encodes
	s := strings.TrimSuffix(b.String(), "\n")
	return s[1 : len(s)-1]
}

func dedupe(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, s := range list {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
