package cli

import (
	"io"
	"log/slog"
)

// newJSONLogger returns the logger of the long-running commands (server,
// runner, artifactstore serve): one JSON object a line. A duration is
// written as a number of milliseconds under its key with "_ms" added
// ({"in_ms":1500}), not as slog's default count of nanoseconds.
func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: durationMillis}))
}

// durationMillis rewrites a duration attribute as milliseconds.
func durationMillis(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	return slog.Float64(a.Key+"_ms", float64(a.Value.Duration())/1e6)
}
