package orchestrator

import "sync"

// Notifier wakes in-process waiters (runner slots, long-polls) when the
// orchestrator queues work or ends a run. A wake-up carries no data: waiters
// re-read the store, so a missed or spurious signal is harmless.
type Notifier struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// NewNotifier returns a Notifier with no subscribers.
func NewNotifier() *Notifier { return &Notifier{subs: map[chan struct{}]struct{}{}} }

// Subscribe returns a channel that receives after each Broadcast, and a
// function that unsubscribes it.
func (n *Notifier) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// Broadcast wakes every subscriber without blocking.
func (n *Notifier) Broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
