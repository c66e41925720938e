package eventlog

// AuditSubject is the subject an audit query means. A ref written without
// its tag is the ref's :latest, as everywhere else (ParseRef); digests,
// refs with a tag, retention:… and gc are kept as written.
func AuditSubject(s string) string {
	if r, err := ParseRef(s); err == nil {
		return r.String()
	}
	return s
}
