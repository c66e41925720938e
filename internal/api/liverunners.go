package api

import (
	"context"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
)

// liveFor is how long a runner found registered is taken to still be: a
// runner removed on another replica loses its tokens there within it.
const liveFor = 30 * time.Second

// liveRunners remembers which runners were found registered, and when,
// so that checking a token's runner costs a read only now and then.
type liveRunners struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (l *liveRunners) recent(id string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.seen[id]
	return ok && now.Sub(at) < liveFor
}

func (l *liveRunners) saw(id string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil || len(l.seen) >= 4096 {
		l.seen = make(map[string]time.Time)
	}
	l.seen[id] = now
}

func (l *liveRunners) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, id)
}

// checkRunner refuses the tokens of a runner that was removed, and notes
// the runner's contact for the next flush (contact.go).
func (s *Server) checkRunner(ctx context.Context, id string) error {
	now := time.Now()
	s.contacts.note(id, now)
	if s.live.recent(id, now) {
		return nil
	}
	_, err := s.st.Runner(ctx, id)
	if core.KindOf(err) == core.KindNotFound {
		return core.E(core.KindUnauthorized, "runner token", "runner %s was removed; register it again", id)
	}
	if err != nil {
		return err
	}
	s.live.saw(id, now)
	return nil
}

// verify checks a runner's session or job token and that its runner is
// still registered.
func (s *Server) verify(ctx context.Context, tok, audience string) (auth.Claims, error) {
	c, err := s.cfg.Keys.Verify(tok, audience)
	if err != nil {
		return auth.Claims{}, err
	}
	if err := s.checkRunner(ctx, c.Subject); err != nil {
		return auth.Claims{}, err
	}
	return c, nil
}
