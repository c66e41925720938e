package api

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultContactFlush is how often a replica writes the contacts of the
// runners it heard from.
const DefaultContactFlush = 10 * time.Second

// maxContacts bounds the runners remembered between two flushes.
const maxContacts = 1 << 16

// contacts remembers, between two flushes, when each runner last made a
// request with its token, so that recording a runner's contact costs a
// map write on the request path and one transaction per flush for all
// runners.
type contacts struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (c *contacts) note(id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[string]time.Time)
	}
	if _, ok := c.seen[id]; ok || len(c.seen) < maxContacts {
		c.seen[id] = at
	}
}

func (c *contacts) take() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.seen
	c.seen = nil
	return m
}

// flushContacts writes the contacts noted since the last flush, every
// ContactFlush and once more when ctx ends.
func (s *Server) flushContacts(ctx context.Context) {
	t := time.NewTicker(s.cfg.ContactFlush)
	defer t.Stop()
	flush := func(ctx context.Context) {
		seen := s.contacts.take()
		if len(seen) == 0 {
			return
		}
		if err := s.st.SeeRunners(ctx, seen); err != nil {
			s.log.WarnContext(ctx, "recording runners' contacts failed", slog.Int("runners", len(seen)), slog.Any("err", err))
		}
	}
	for {
		select {
		case <-t.C:
			flush(ctx)
		case <-ctx.Done():
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			flush(ctx)
			cancel()
			return
		}
	}
}
