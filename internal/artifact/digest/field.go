package digest

import (
	"encoding/base64"
	"encoding/hex"
)

// FieldValue returns d as the value of an RFC 9530 Repr-Digest or
// Content-Digest header field: the IANA name of the algorithm and the
// digest as a structured-field byte sequence, such as
// "sha-256=:LCa0a2j/xo/5m0U8HTBBNBNCLXBkg7+g+YpeiGJm564=:". ok is false for
// an algorithm the IANA registry does not name (BLAKE3), which such a
// field cannot carry.
func FieldValue(d Digest) (value string, ok bool) {
	if d.alg != SHA256 {
		return "", false
	}
	raw, err := hex.DecodeString(d.hex)
	if err != nil {
		return "", false // unreachable: a Digest's hex is always valid
	}
	return "sha-256=:" + base64.StdEncoding.EncodeToString(raw) + ":", true
}
