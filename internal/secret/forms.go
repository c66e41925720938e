package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
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

// maxWrappedLen bounds the values whose hex and wrapped base64 are masked:
// those forms about double a value's automaton (a 64 KiB value would take
// some 45 MiB). A private key in PEM, the longest secret commonly printed
// wrapped, is a few KiB.
const maxWrappedLen = 16 << 10

// Wrapped encodings: programs that print base64 or hex break it into lines
// of a fixed width: base64 (GNU coreutils) at 76 columns, openssl base64
// and PEM at 64, xxd -p at 60.
var base64Widths = []int{64, 76}

const hexWidth = 60

// Pieces of wrapped lines shorter than this many bytes of encoded data (8
// base64 characters, 12 hex digits) are not masked. Where a secret's
// encoding starts or ends, the line break can leave a piece of one to a
// few characters, like the "Zw==" that ends many encodings: so short a
// string occurs in ordinary output (other base64, hashes, identifiers) and
// masking it would ruin lines that hold no secret. Six bytes make a piece
// specific enough, and a shorter piece shows at most five bytes' worth of
// a secret's encoding (a 48-bit guess is still needed for the rest).
const minWrappedBytes = 6

// forms returns the byte strings the Masker replaces for value v, without
// duplicates: the value itself, then, when it has at least MinFormLen bytes
// (the encodings only up to maxEncodedLen bytes):
//
//   - its standard and URL-alphabet base64 at offsets 0, 1 and 2 (see
//     base64Core); padded and raw encodings share these substrings;
//   - up to maxWrappedLen bytes, its standard base64 wrapped at 64 and 76
//     columns: each line, for each offset, of the encoding of v after 0, 1
//     or 2 bytes at the start of the encoded stream (what
//     `printf %s "$SECRET" | base64` prints, or the same with a byte or two
//     before the secret): the whole line, and its part made of v's bits
//     only (see wrappedLines). A secret further into a wrapped encoding
//     lands elsewhere on its lines, which are not masked;
//   - up to maxWrappedLen bytes, its hex, lower and upper case, whole and
//     wrapped at 60 columns (xxd -p, and xxd -p -u);
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
		if len(v) <= maxWrappedLen {
			out = append(out, wrappedBase64(v)...)
			for _, h := range []string{hex.EncodeToString([]byte(v)), strings.ToUpper(hex.EncodeToString([]byte(v)))} {
				out = append(out, h)
				out = append(out, wrappedLines(h, 0, len(h), hexWidth, 2*minWrappedBytes)...)
			}
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

// wrappedBase64 returns the lines of v's standard base64 wrapped at each of
// base64Widths, as a stream that starts with off bytes before v (0, 1 or
// 2) is encoded and wrapped: the parts of lines made of v's bits only,
// long enough to mask, and, for off 0, the whole lines, which also show
// the padding when v ends the stream.
func wrappedBase64(v string) []string {
	var out []string
	for _, width := range base64Widths {
		whole := base64.StdEncoding.EncodeToString([]byte(v))
		out = append(out, wrappedLines(whole, 0, len(whole), width, base64Len(minWrappedBytes))...)
		for off := 0; off < 3; off++ {
			buf := make([]byte, off+len(v))
			copy(buf[off:], v)
			e := base64.StdEncoding.EncodeToString(buf)
			// The characters made of v's bits only, as in base64Core.
			from, to := (8*off+5)/6, 8*(off+len(v))/6
			out = append(out, wrappedLines(e, from, to, width, base64Len(minWrappedBytes))...)
		}
	}
	return out
}

// base64Len is the length of the base64 encoding of n bytes, unpadded.
func base64Len(n int) int { return (8*n + 5) / 6 }

// wrappedLines returns the parts of enc[from:to] between the line breaks
// that a program wrapping enc at width would print, that have at least
// least characters.
func wrappedLines(enc string, from, to, width, least int) []string {
	var out []string
	for start := from; start < to; {
		end := min((start/width+1)*width, to)
		if end-start >= least {
			out = append(out, enc[start:end])
		}
		start = end
	}
	return out
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
