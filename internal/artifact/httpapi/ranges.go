package httpapi

import (
	"math"
	"strconv"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// byteRange is bytes [start, start+length) of a blob.
type byteRange struct {
	start, length int64
}

// parseRange resolves a Range request header (RFC 9110 section 14.2)
// against a blob of size bytes. It supports one range per request:
// partial is false, and the whole blob is served, when there is no header,
// the unit is not bytes, or several ranges are asked for (the RFC lets a
// server ignore a Range it does not want to serve). A malformed header is
// a KindInvalid error and a range no byte satisfies is a *rangeError (416).
func parseRange(header string, size int64) (r byteRange, partial bool, err error) {
	const op = "Range header"
	if header == "" {
		return byteRange{}, false, nil
	}
	unit, set, ok := strings.Cut(header, "=")
	if !ok {
		return byteRange{}, false, core.E(core.KindInvalid, op, "%.100q is not unit=ranges", header)
	}
	if !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return byteRange{}, false, nil
	}
	if strings.Contains(set, ",") {
		return byteRange{}, false, nil
	}
	spec := strings.TrimSpace(set)
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return byteRange{}, false, core.E(core.KindInvalid, op, "%.100q has no '-'", header)
	}
	if first == "" {
		// A suffix range: the last n bytes.
		n, ok := digits(last)
		if !ok {
			return byteRange{}, false, core.E(core.KindInvalid, op, "%.100q: suffix length is not a number", header)
		}
		if n == 0 || size == 0 {
			return byteRange{}, false, &rangeError{size: size}
		}
		n = min(n, size)
		return byteRange{start: size - n, length: n}, true, nil
	}
	start, ok := digits(first)
	if !ok {
		return byteRange{}, false, core.E(core.KindInvalid, op, "%.100q: first position is not a number", header)
	}
	end := int64(math.MaxInt64)
	if last != "" {
		if end, ok = digits(last); !ok {
			return byteRange{}, false, core.E(core.KindInvalid, op, "%.100q: last position is not a number", header)
		}
		if end < start {
			return byteRange{}, false, core.E(core.KindInvalid, op, "%.100q: last position before first", header)
		}
	}
	if start >= size {
		return byteRange{}, false, &rangeError{size: size}
	}
	end = min(end, size-1)
	return byteRange{start: start, length: end - start + 1}, true, nil
}

// parseContentRange reads the Content-Range of an upload chunk: "bytes
// a-b", optionally followed by "/total" or "/*", or the bare "a-b" that
// Docker registry clients send. It returns the chunk's first byte and
// length. Errors are KindInvalid.
func parseContentRange(header string) (start, length int64, err error) {
	const op = "Content-Range header"
	bad := func(why string) (int64, int64, error) {
		return 0, 0, core.E(core.KindInvalid, op, "%.100q: %s; write \"bytes first-last\"", header, why)
	}
	spec := strings.TrimSpace(header)
	if unit, rest, ok := strings.Cut(spec, " "); ok {
		if !strings.EqualFold(unit, "bytes") {
			return bad("the unit is not bytes")
		}
		spec = strings.TrimSpace(rest)
	}
	spec, total, hasTotal := strings.Cut(spec, "/")
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return bad("no '-'")
	}
	a, ok1 := digits(first)
	b, ok2 := digits(last)
	if !ok1 || !ok2 || a == math.MaxInt64 || b == math.MaxInt64 {
		return bad("positions are not numbers below 2^63-1")
	}
	if b < a {
		return bad("last position before first")
	}
	if hasTotal && total != "*" {
		n, ok := digits(total)
		if !ok || n <= b {
			return bad("the total length is not a number past the chunk")
		}
	}
	return a, b - a + 1, nil
}

// digits parses a non-empty run of ASCII digits (no sign, no spaces); a
// value past int64 saturates at math.MaxInt64, which is past any blob.
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// formatContentRange is the Content-Range of a 206 response.
func formatContentRange(r byteRange, size int64) string {
	return "bytes " + strconv.FormatInt(r.start, 10) + "-" + strconv.FormatInt(r.start+r.length-1, 10) + "/" + strconv.FormatInt(size, 10)
}

// parseOffset reads the ?offset= query parameter of a chunk.
func parseOffset(s string) (int64, error) {
	n, ok := digits(s)
	if !ok || n == math.MaxInt64 {
		return 0, core.E(core.KindInvalid, "offset", "offset %.40q is not a non-negative integer", s)
	}
	return n, nil
}
