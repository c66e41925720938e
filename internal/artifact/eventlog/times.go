package eventlog

import (
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// TimeLayout is how the store prints a time, in the API and the CLI alike:
// RFC 3339 in UTC with exactly three fraction digits, the milliseconds the
// store keeps. One spelling per instant, sortable as text.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FormatTime prints t in TimeLayout.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseSince reads the start of an audit query, for the API and the CLI
// alike: an RFC 3339 time (2026-01-02T15:04:05Z), or a duration back from
// now (24h, 90m). Errors are core.KindInvalid.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, core.E(core.KindInvalid, "since", "since %.40q: give a duration back from now, such as 24h, not a negative one", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, core.E(core.KindInvalid, "since", "since %.40q: give an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back from now (24h)", s)
	}
	return t.UTC(), nil
}
