package api

import (
	"testing"
	"time"
)

func TestLimiterRefillsAndSeparatesAddresses(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	l := newLimiter(2, 3)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _, _ := l.allow("10.0.0.1"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait, first := l.allow("10.0.0.1")
	if ok || !first {
		t.Fatalf("a request past the burst: allowed %v, first refusal %v", ok, first)
	}
	if wait != 500*time.Millisecond {
		t.Fatalf("wait = %s, want 500ms at 2 tokens/s", wait)
	}
	if _, _, first := l.allow("10.0.0.1"); first {
		t.Fatal("a second refusal in a row counts as the first")
	}
	if ok, _, _ := l.allow("10.0.0.2"); !ok {
		t.Fatal("another address shares the first one's bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _, _ := l.allow("10.0.0.1"); !ok {
		t.Fatal("a token did not come back after 1/rate")
	}
	if ok, _, first := l.allow("10.0.0.1"); ok || !first {
		t.Fatalf("after a request was let in: allowed %v, first refusal %v", ok, first)
	}
}

func TestLimiterForgetsOnlyFullBuckets(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	l := newLimiter(1, 2)
	l.now = func() time.Time { return now }
	l.allow("busy")
	l.allow("busy")
	l.buckets["idle"] = &bucket{tokens: 2, last: now}
	l.forgetFull(now)
	if _, ok := l.buckets["idle"]; ok {
		t.Error("a full bucket was kept")
	}
	if _, ok := l.buckets["busy"]; !ok {
		t.Error("an empty bucket was forgotten: its address would get a fresh burst")
	}
}
