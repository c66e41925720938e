package registry

import "context"

// ScrubIfDue runs one check of s's schedule: it begins a scrub if one is
// due on this process.
func ScrubIfDue(ctx context.Context, s *Scrubber) {
	s.init()
	s.due(ctx)
}
