// Package eventlogtest is the conformance suite of the artifact store's
// metadata engines. Each engine's tests call Run.
package eventlogtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// Harness is what an engine gives the suite: a fresh store on a settable
// clock, and raw SQL access for tampering tests.
type Harness struct {
	Store *eventlog.Store
	// Exec runs raw SQL on the engine, bypassing the store.
	Exec func(ctx context.Context, query string, args ...any) error
	// AllowTamper disables the append-only guard on store_events so a test
	// can alter a row the way an attacker with database access could.
	AllowTamper func(ctx context.Context) error
}

// Opener opens a fresh, empty store whose clock is now.
type Opener func(t *testing.T, now func() time.Time) Harness

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type bundle struct {
	Harness
	s     *eventlog.Store
	clock *clock
	ctx   context.Context
}

func setup(t *testing.T, open Opener) bundle {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	h := open(t, c.now)
	return bundle{Harness: h, s: h.Store, clock: c, ctx: context.Background()}
}

func blob(t *testing.T, content string) digest.Digest {
	t.Helper()
	d, err := digest.FromBytes(digest.SHA256, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantKind(t *testing.T, err error, k core.Kind, contains string) {
	t.Helper()
	if err == nil || core.KindOf(err) != k {
		t.Fatalf("got %v, want kind %s", err, k)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not mention %q", err, contains)
	}
}

// pushed adds a blob, commits a manifest over it and tags it.
func pushed(t *testing.T, b bundle, ref string, content string) (digest.Digest, digest.Digest) {
	t.Helper()
	bd := blob(t, content)
	must(t, b.s.AddBlob(b.ctx, "alice", bd, int64(len(content))))
	body := []byte("manifest of " + content)
	md := blob(t, string(body))
	must(t, b.s.CommitManifest(b.ctx, "alice", md, body, []digest.Digest{bd}))
	r, err := eventlog.ParseRef(ref)
	must(t, err)
	must(t, b.s.SetRef(b.ctx, "alice", r, md))
	return bd, md
}

func replayMatches(t *testing.T, b bundle) eventlog.ReplayReport {
	t.Helper()
	rep, err := b.s.Replay(b.ctx)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if !rep.Match() {
		t.Fatalf("replayed state %s differs from live state %s", rep.StateDigest, rep.LiveDigest)
	}
	return rep
}

// Run runs the whole suite against one engine.
func Run(t *testing.T, open Opener) {
	runTokens(t, open)
	t.Run("PushTagAndRead", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		bd, md := pushed(t, b, "outputs/build:v1", "hello")
		got, err := b.s.Blob(b.ctx, bd)
		must(t, err)
		if got.State != eventlog.StateLive || got.Size != 5 {
			t.Errorf("blob = %+v", got)
		}
		m, err := b.s.Manifest(b.ctx, md)
		must(t, err)
		if string(m.Body) != "manifest of hello" {
			t.Errorf("manifest body = %q", m.Body)
		}
		r, err := b.s.Ref(b.ctx, eventlog.RefName{Namespace: "outputs", Name: "build", Tag: "v1"})
		must(t, err)
		if r.Manifest != md {
			t.Errorf("ref -> %s, want %s", r.Manifest, md)
		}
		evs, err := b.s.Events(b.ctx, 0, 100)
		must(t, err)
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, string(e.Kind))
		}
		if strings.Join(kinds, ",") != "blob.added,manifest.committed,ref.set" {
			t.Errorf("events = %v", kinds)
		}
		other := blob(t, "other")
		missing, err := b.s.Missing(b.ctx, []digest.Digest{other, bd, md, other})
		must(t, err)
		if len(missing) != 3 || missing[0] != other || missing[1] != md || missing[2] != other {
			t.Errorf("missing = %v (a manifest is not a blob; order and repeats kept)", missing)
		}
		// Idempotent commands write nothing.
		must(t, b.s.AddBlob(b.ctx, "bob", bd, 5))
		must(t, b.s.CommitManifest(b.ctx, "bob", md, m.Body, []digest.Digest{bd}))
		must(t, b.s.SetRef(b.ctx, "bob", r.RefName, md))
		if h, _ := b.s.Head(b.ctx); h.Seq != 3 {
			t.Errorf("no-op commands appended events: head %d", h.Seq)
		}
		replayMatches(t, b)
	})

	t.Run("NamespaceBytes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		pushed(t, b, "outputs/a:v1", "12345")   // 5 bytes
		pushed(t, b, "outputs/b:v1", "1234567") // 7 bytes
		pushed(t, b, "logs/a:latest", "12345")  // the same blob as outputs/a
		_, md := pushed(t, b, "logs/b:latest", "xyz")
		r, err := eventlog.ParseRef("logs/c:latest")
		must(t, err)
		must(t, b.s.SetRef(b.ctx, "alice", r, md)) // a blob reached twice counts once
		got, err := b.s.NamespaceBytes(b.ctx)
		must(t, err)
		if len(got) != 2 || got["outputs"] != 12 || got["logs"] != 8 {
			t.Errorf("NamespaceBytes = %v, want outputs 12, logs 8", got)
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		missing := blob(t, "missing")
		_, err := b.s.Blob(b.ctx, missing)
		wantKind(t, err, core.KindNotFound, "")
		err = b.s.CommitManifest(b.ctx, "a", blob(t, "m"), []byte("m"), []digest.Digest{missing})
		wantKind(t, err, core.KindNotFound, missing.String())
		r, _ := eventlog.ParseRef("ns/x:y")
		err = b.s.SetRef(b.ctx, "a", r, missing)
		wantKind(t, err, core.KindNotFound, "push it before tagging")
		wantKind(t, b.s.DeleteRef(b.ctx, "a", r, ""), core.KindNotFound, "ns/x:y")
		wantKind(t, b.s.PinRef(b.ctx, "a", r, true), core.KindNotFound, "ns/x:y")
		wantKind(t, b.s.DeletePolicy(b.ctx, "a", "ns", "*"), core.KindNotFound, "")
		if h, _ := b.s.Head(b.ctx); h.Seq != 0 {
			t.Errorf("failed commands appended events: head %d", h.Seq)
		}
	})

	t.Run("RefMovesPinsAndDeletes", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, m1 := pushed(t, b, "ns/app:latest", "one")
		_, m2 := pushed(t, b, "ns/app:v2", "two")
		r := eventlog.RefName{Namespace: "ns", Name: "app", Tag: "latest"}
		before, _ := b.s.Ref(b.ctx, r)
		b.clock.add(time.Minute)
		must(t, b.s.PinRef(b.ctx, "carol", r, true))
		if pinned, _ := b.s.Ref(b.ctx, r); !pinned.Pinned || !pinned.UpdatedAt.Equal(before.UpdatedAt) {
			t.Errorf("pin changed updated_at (%v -> %v) or did not pin", before.UpdatedAt, pinned.UpdatedAt)
		}
		must(t, b.s.SetRef(b.ctx, "carol", r, m2))
		got, _ := b.s.Ref(b.ctx, r)
		if got.Manifest != m2 || !got.Pinned {
			t.Errorf("moved ref = %+v (pin must survive a move)", got)
		}
		evs, _ := b.s.Audit(b.ctx, eventlog.AuditFilter{Subject: "ns/app:latest"})
		var p eventlog.RefPayload
		must(t, evs[len(evs)-1].Decode(&p))
		if p.Previous != m1.String() || p.Manifest != m2.String() {
			t.Errorf("ref.set payload = %+v", p)
		}
		must(t, b.s.DeleteRef(b.ctx, "carol", r, "retention: keep_last 1"))
		_, err := b.s.Ref(b.ctx, r)
		wantKind(t, err, core.KindNotFound, "")
		refs, _ := b.s.Refs(b.ctx, "ns")
		if len(refs) != 1 || refs[0].Tag != "v2" {
			t.Errorf("refs = %+v", refs)
		}
		replayMatches(t, b)
	})

	t.Run("ParseRef", func(t *testing.T) {
		t.Parallel()
		for in, want := range map[string]string{"a/b:c": "a/b:c", "a/b": "a/b:latest", "logs/x/y:1": "logs/x/y:1"} {
			r, err := eventlog.ParseRef(in)
			if err != nil || r.String() != want {
				t.Errorf("ParseRef(%q) = %v, %v", in, r, err)
			}
		}
		for _, bad := range []string{"", "a", "/b:c", "a/:c", "a/b:", "a/../b:c", "a/b c:d", "a/b:c:d/e"} {
			if _, err := eventlog.ParseRef(bad); core.KindOf(err) != core.KindInvalid {
				t.Errorf("ParseRef(%q) = %v, want invalid", bad, err)
			}
		}
	})

	t.Run("Policies", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		must(t, b.s.SetPolicy(b.ctx, "ops", eventlog.Policy{Namespace: "logs", Selector: "**", KeepLast: 10, KeepWithin: 72 * time.Hour, KeepPinned: true}))
		must(t, b.s.SetPolicy(b.ctx, "ops", eventlog.Policy{Namespace: "logs", Selector: "**", KeepLast: 5}))
		ps, err := b.s.Policies(b.ctx, "logs")
		must(t, err)
		if len(ps) != 1 || ps[0].KeepLast != 5 || ps[0].KeepWithin != 0 || ps[0].KeepPinned {
			t.Errorf("policies = %+v", ps)
		}
		wantKind(t, b.s.SetPolicy(b.ctx, "ops", eventlog.Policy{Namespace: "logs", Selector: "[", KeepLast: 1}), core.KindInvalid, "selector")
		wantKind(t, b.s.SetPolicy(b.ctx, "ops", eventlog.Policy{Namespace: "logs", Selector: "*"}), core.KindInvalid, "keeps nothing")
		must(t, b.s.DeletePolicy(b.ctx, "ops", "logs", "**"))
		ps, _ = b.s.Policies(b.ctx, "")
		if len(ps) != 0 {
			t.Errorf("policies after delete = %+v", ps)
		}
		replayMatches(t, b)
	})

	t.Run("GCSerializesWithCommit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		bd, md := pushed(t, b, "ns/a:1", "shared")
		cut := func() time.Time { return b.clock.now().Add(-time.Hour) }
		b.clock.add(2 * time.Hour)
		if ok, err := b.s.MarkDeleting(b.ctx, "gc", bd, cut()); err != nil || ok {
			t.Fatalf("referenced blob marked: %v %v", ok, err)
		}
		must(t, b.s.DeleteRef(b.ctx, "gc", eventlog.RefName{Namespace: "ns", Name: "a", Tag: "1"}, "test"))
		ms, err := b.s.CollectableManifests(b.ctx, cut(), 10)
		must(t, err)
		if len(ms) != 1 || ms[0] != md {
			t.Fatalf("collectable manifests = %v", ms)
		}
		if ok, err := b.s.DeleteManifest(b.ctx, "gc", md, cut()); err != nil || !ok {
			t.Fatalf("delete manifest: %v %v", ok, err)
		}
		bs, _ := b.s.CollectableBlobs(b.ctx, cut(), 10)
		if len(bs) != 1 || bs[0] != bd {
			t.Fatalf("collectable blobs = %v", bs)
		}
		if ok, err := b.s.MarkDeleting(b.ctx, "gc", bd, cut()); err != nil || !ok {
			t.Fatalf("mark deleting: %v %v", ok, err)
		}
		// While deleting, nothing may resurrect or reference the blob.
		wantKind(t, b.s.AddBlob(b.ctx, "alice", bd, 6), core.KindConflict, "garbage-collected")
		wantKind(t, b.s.CommitManifest(b.ctx, "alice", blob(t, "m2"), []byte("m2"), []digest.Digest{bd}), core.KindConflict, bd.String())
		must(t, b.s.MarkGone(b.ctx, "gc", bd))
		wantKind(t, b.s.CommitManifest(b.ctx, "alice", blob(t, "m2"), []byte("m2"), []digest.Digest{bd}), core.KindNotFound, bd.String())
		// A re-upload brings it back.
		must(t, b.s.AddBlob(b.ctx, "alice", bd, 6))
		must(t, b.s.CommitManifest(b.ctx, "alice", blob(t, "m2"), []byte("m2"), []digest.Digest{bd}))
		got, _ := b.s.Blob(b.ctx, bd)
		if got.State != eventlog.StateLive {
			t.Errorf("re-uploaded blob is %s", got.State)
		}
		replayMatches(t, b)
	})

	t.Run("GCGraceAndUploads", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		young, pending := blob(t, "young"), blob(t, "pending")
		must(t, b.s.AddBlob(b.ctx, "a", young, 5))
		must(t, b.s.AddBlob(b.ctx, "a", pending, 7))
		if _, err := b.s.CreateSession(b.ctx, digest.SHA256, pending, 3*time.Hour); err != nil {
			t.Fatal(err)
		}
		cut := b.clock.now().Add(-time.Hour)
		if ok, _ := b.s.MarkDeleting(b.ctx, "gc", young, cut); ok {
			t.Error("blob younger than the grace window was marked")
		}
		b.clock.add(2 * time.Hour)
		cut = b.clock.now().Add(-time.Hour)
		if ok, _ := b.s.MarkDeleting(b.ctx, "gc", pending, cut); ok {
			t.Error("blob under an active upload session was marked")
		}
		if ok, _ := b.s.MarkDeleting(b.ctx, "gc", young, cut); !ok {
			t.Error("old unreferenced blob was not marked")
		}
		b.clock.add(2 * time.Hour)
		if ok, _ := b.s.MarkDeleting(b.ctx, "gc", pending, b.clock.now().Add(-time.Hour)); !ok {
			t.Error("blob of an expired session was not marked")
		}
	})

	t.Run("ErrBytesGoneRecordsNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		d := blob(t, "vanishing")
		gone := func(context.Context) (bool, error) { return false, nil }
		err := b.s.AddStoredBlob(b.ctx, "a", d, 9, gone)
		if !errors.Is(err, eventlog.ErrBytesGone) {
			t.Fatalf("AddStoredBlob with the bytes gone: %v", err)
		}
		if _, err := b.s.Blob(b.ctx, d); core.KindOf(err) != core.KindNotFound {
			t.Errorf("blob recorded anyway: %v", err)
		}
		present := func(context.Context) (bool, error) { return true, nil }
		must(t, b.s.AddStoredBlob(b.ctx, "a", d, 9, present))
		// Live blobs are not asked again: their bytes are GC's to remove.
		must(t, b.s.AddStoredBlob(b.ctx, "a", d, 9, gone))
	})

	t.Run("ReAddRefreshesGrace", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		d := blob(t, "again")
		must(t, b.s.AddBlob(b.ctx, "a", d, 5))
		b.clock.add(2 * time.Hour)
		must(t, b.s.AddBlob(b.ctx, "a", d, 5)) // an upload about to reference it
		if ok, _ := b.s.MarkDeleting(b.ctx, "gc", d, b.clock.now().Add(-time.Hour)); ok {
			t.Error("a blob re-added a moment ago was marked for deletion")
		}
		if h, _ := b.s.Head(b.ctx); h.Seq != 2 {
			t.Errorf("head = %d, want 2 (one refresh event)", h.Seq)
		}
		replayMatches(t, b)
	})

	t.Run("Sessions", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		s, err := b.s.CreateSession(b.ctx, digest.BLAKE3, digest.Digest{}, time.Hour)
		must(t, err)
		must(t, b.s.AdvanceSession(b.ctx, s.ID, 0, 100, time.Hour))
		wantKind(t, b.s.AdvanceSession(b.ctx, s.ID, 0, 50, time.Hour), core.KindConflict, "offset 0")
		got, err := b.s.Session(b.ctx, s.ID)
		must(t, err)
		if got.Received != 100 || got.Algorithm != digest.BLAKE3 {
			t.Errorf("session = %+v", got)
		}
		b.clock.add(2 * time.Hour)
		_, err = b.s.Session(b.ctx, s.ID)
		wantKind(t, err, core.KindNotFound, "expired")
		exp, _ := b.s.ExpiredSessions(b.ctx)
		if len(exp) != 1 {
			t.Errorf("expired = %+v", exp)
		}
		must(t, b.s.DeleteSession(b.ctx, s.ID))
		_, err = b.s.Session(b.ctx, s.ID)
		wantKind(t, err, core.KindNotFound, "")
	})

	t.Run("AuditFilters", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		pushed(t, b, "ns/a:1", "a")
		b.clock.add(time.Hour)
		since := b.clock.now()
		must(t, b.s.PinRef(b.ctx, "bob", eventlog.RefName{Namespace: "ns", Name: "a", Tag: "1"}, true))
		must(t, b.s.RecordGC(b.ctx, "", eventlog.GCPayload{}))
		byBob, _ := b.s.Audit(b.ctx, eventlog.AuditFilter{Actor: "bob"})
		if len(byBob) != 1 || byBob[0].Kind != eventlog.RefPinned {
			t.Errorf("bob's events = %+v", byBob)
		}
		recent, _ := b.s.Audit(b.ctx, eventlog.AuditFilter{Since: since.UnixMilli()})
		if len(recent) != 1 {
			t.Errorf("events since %v = %+v (system events have no actor and are not audit)", since, recent)
		}
		all, _ := b.s.Audit(b.ctx, eventlog.AuditFilter{})
		if len(all) != 4 {
			t.Errorf("audit = %d events, want 4", len(all))
		}
	})

	t.Run("ConcurrentWritersKeepChain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					c := fmt.Sprintf("w%d-%d", w, i)
					d, _ := digest.FromBytes(digest.SHA256, []byte(c))
					if err := b.s.AddBlob(b.ctx, fmt.Sprint("w", w), d, int64(len(c))); err != nil {
						errs <- err
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		h, err := b.s.Verify(b.ctx)
		must(t, err)
		if h.Seq != 80 {
			t.Errorf("head = %d, want 80", h.Seq)
		}
		replayMatches(t, b)
	})

	t.Run("ErrTamperedEventNamed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		pushed(t, b, "ns/a:1", "a")
		pushed(t, b, "ns/b:1", "b")
		if _, err := b.s.Verify(b.ctx); err != nil {
			t.Fatal(err)
		}
		must(t, b.AllowTamper(b.ctx))
		must(t, b.Exec(b.ctx, "UPDATE store_events SET actor = 'mallory' WHERE seq = 4"))
		_, err := b.s.Verify(b.ctx)
		wantKind(t, err, core.KindConflict, "event 4 (blob.added")
		_, err = b.s.Replay(b.ctx)
		wantKind(t, err, core.KindConflict, "event 4")
	})

	t.Run("ErrRemovedEventNamed", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		pushed(t, b, "ns/a:1", "a")
		must(t, b.AllowTamper(b.ctx))
		must(t, b.Exec(b.ctx, "DELETE FROM store_events WHERE seq = 3"))
		_, err := b.s.Verify(b.ctx)
		wantKind(t, err, core.KindConflict, "event 3")
	})

	t.Run("ErrProjectionDrift", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		_, md := pushed(t, b, "ns/a:1", "a")
		_, other := pushed(t, b, "ns/b:1", "b")
		must(t, b.Exec(b.ctx, "UPDATE refs SET manifest_digest = '"+other.String()+"' WHERE name = 'a'"))
		rep, err := b.s.Replay(b.ctx)
		must(t, err)
		if rep.Match() {
			t.Errorf("replay did not notice a ref changed outside the log (was %s)", md)
		}
		if rep.Events != 6 {
			t.Errorf("replayed %d events", rep.Events)
		}
	})

	t.Run("EventsAppendOnly", func(t *testing.T) {
		t.Parallel()
		b := setup(t, open)
		pushed(t, b, "ns/a:1", "a")
		if err := b.Exec(b.ctx, "UPDATE store_events SET actor = 'x'"); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("update of store_events: %v", err)
		}
		if err := b.Exec(b.ctx, "DELETE FROM store_events"); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("delete from store_events: %v", err)
		}
	})
}
