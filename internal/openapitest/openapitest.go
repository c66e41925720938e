// Package openapitest holds what the contract tests of the two HTTP APIs
// (the server's and the artifact store's) share: the validating transport,
// the record of which documented answers a test produced, and the mark of
// a request that breaks the contract on purpose.
package openapitest

import (
	"context"
	"slices"
	"sync"
)

// Coverage records which (operation, status) pairs a server produced, so a
// contract test can fail on a documented answer it never exercised.
type Coverage struct {
	mu   sync.Mutex
	seen map[string]map[int]bool
}

// Add records one answer.
func (c *Coverage) Add(op string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]map[int]bool{}
	}
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][status] = true
}

// Has reports whether op answered status.
func (c *Coverage) Has(op string, status int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[op][status]
}

// Operations lists, sorted, the operations that answered anything.
func (c *Coverage) Operations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := make([]string, 0, len(c.seen))
	for op := range c.seen {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	return ops
}

type uncheckedKey struct{}

// Unchecked marks a request that breaks the contract on purpose (hostile
// input): the request need not validate; its response still must.
func Unchecked(ctx context.Context) context.Context {
	return context.WithValue(ctx, uncheckedKey{}, true)
}

// IsUnchecked reports whether ctx carries the Unchecked mark.
func IsUnchecked(ctx context.Context) bool { return ctx.Value(uncheckedKey{}) != nil }
