package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/artifact/httpapi"
	"github.com/deltaci/deltaci/internal/artifact/registry"
	"github.com/deltaci/deltaci/internal/core"
)

// contractLeases drives the GC lease operations.
func contractLeases(t *testing.T, e *env) {
	ctx, bad := e.ctx, unchecked(e.ctx)
	d := sha(t, []byte("leased against GC"))
	r := e.expect(ctx, http.StatusCreated, "POST", "/api/v1/gc/leases", jsonCT, []byte(`{"digests":["`+d.String()+`"],"ttl":"1m"}`))
	var l httpapi.LeaseBody
	if err := json.Unmarshal(r.body, &l); err != nil || l.ID == "" {
		t.Fatalf("lease = %s, %v", r.body, err)
	}
	if loc := r.header.Get("Location"); loc != "/api/v1/gc/leases/"+l.ID {
		t.Errorf("lease Location = %q", loc)
	}
	path := "/api/v1/gc/leases/" + l.ID
	e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/gc/leases", jsonCT, []byte(`{"digests":[]}`))
	e.expect(bad, http.StatusBadRequest, "POST", "/api/v1/gc/leases", jsonCT, []byte(`{"digests":["`+d.String()+`"],"ttl":"2h"}`))
	e.expect(bad, http.StatusUnsupportedMediaType, "POST", "/api/v1/gc/leases", hdr("Content-Type", "text/plain"), []byte(`{}`))
	e.expect(ctx, http.StatusOK, "PUT", path, jsonCT, []byte(`{"ttl":"2m"}`))
	e.expect(ctx, http.StatusOK, "PUT", path, nil, nil)
	e.expect(bad, http.StatusBadRequest, "PUT", path, jsonCT, []byte(`{"ttl":"0s"}`))
	e.expect(bad, http.StatusUnsupportedMediaType, "PUT", path, hdr("Content-Type", "text/plain"), []byte(`{}`))
	e.expect(bad, http.StatusBadRequest, "PUT", "/api/v1/gc/leases/NOT-A-LEASE", nil, nil)
	e.expect(ctx, http.StatusNoContent, "DELETE", path, nil, nil)
	e.expect(ctx, http.StatusNoContent, "DELETE", path, nil, nil)
	e.expect(ctx, http.StatusNotFound, "PUT", path, nil, nil)
	e.expect(bad, http.StatusBadRequest, "DELETE", "/api/v1/gc/leases/NOT-A-LEASE", nil, nil)
}

// TestRemoteLeaseKeepsBlobsFromGC: what a client leased over the API, GC
// with a zero grace window does not take; once released, it does.
func TestRemoteLeaseKeepsBlobsFromGC(t *testing.T) {
	t.Parallel()
	e := setup(t)
	content := []byte("uploaded, not referenced yet")
	d := sha(t, content)
	if _, err := e.client.Upload(e.ctx, "", digest.SHA256, d, strings.NewReader(string(content)), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	l, err := e.client.TakeLease(e.ctx, []digest.Digest{d}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.set(time.Now().Add(30 * time.Second))
	if _, err := e.client.RenewLease(e.ctx, l.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.client.GC(e.ctx, 0); err != nil || rep.Blobs != 0 {
		t.Fatalf("GC at grace 0 under a lease = %+v, %v", rep, err)
	}
	if err := e.client.ReleaseLease(e.ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.RenewLease(e.ctx, l.ID, time.Minute); core.KindOf(err) != core.KindNotFound {
		t.Errorf("renewing a released lease: %v", err)
	}
	e.clock.set(time.Now().Add(time.Minute))
	if rep, err := e.client.GC(e.ctx, 0); err != nil || rep.Blobs != 1 {
		t.Errorf("GC at grace 0 after the release = %+v, %v; want the blob", rep, err)
	}
}

// TestPushGoesOnWhereLeasesAreRefused pushes through a server older than
// leases (404) and through one that lets the credential upload but not
// lease (403, as a deltaci server's store treats a runner): the push goes
// on without a lease.
func TestPushGoesOnWhereLeasesAreRefused(t *testing.T) {
	t.Parallel()
	e := setup(t)
	for _, refusal := range []struct {
		status int
		code   string
	}{{http.StatusNotFound, "not_found"}, {http.StatusForbidden, "forbidden"}} {
		t.Run(refusal.code, func(t *testing.T) {
			refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/api/v1/gc/leases") {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(refusal.status)
					fmt.Fprintf(w, `{"error":{"code":%q,"message":"no leases here"}}`, refusal.code)
					return
				}
				e.srv.Config.Handler.ServeHTTP(w, r)
			}))
			t.Cleanup(refusing.Close)
			c := &httpapi.Client{BaseURL: refusing.URL, Token: e.tokens["alice"]}
			tr := &registry.Transfer{Data: c, Catalog: httpapi.Catalog{C: c}}
			src := t.TempDir()
			if err := os.WriteFile(filepath.Join(src, "f"), []byte("pushed without a lease, "+refusal.code), 0o644); err != nil {
				t.Fatal(err)
			}
			ref := "ns/unleased:" + refusal.code
			res, err := tr.Push(e.ctx, "", src, ref, registry.PushOptions{})
			if err != nil {
				t.Fatalf("push where leases are refused: %v", err)
			}
			if got, err := e.client.GetRef(e.ctx, ref); err != nil || got.Manifest != res.Manifest {
				t.Errorf("ref %s = %+v, %v; want %s", ref, got, err, res.Manifest)
			}
		})
	}
}

// pushRounds counts the rounds pushes lost to GC.
type pushRounds struct{ lost atomic.Int64 }

func (p *pushRounds) Enabled(context.Context, slog.Level) bool { return true }

func (p *pushRounds) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "push raced with GC") {
		p.lost.Add(1)
	}
	return nil
}

func (p *pushRounds) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *pushRounds) WithGroup(string) slog.Handler      { return p }

// TestRemotePushesRacingGCNeverFail pushes through the API, as a runner
// does, while GC with a zero grace window runs back to back. A remote push
// commits its manifest and sets its ref in two requests; its lease keeps
// GC off the manifest in between, and off its blobs from the moment it
// looked for them. No push fails, none loses a round, no blob is lost.
func TestRemotePushesRacingGCNeverFail(t *testing.T) {
	t.Parallel()
	cycles := 100
	if testing.Short() {
		cycles = 30
	}
	for _, eng := range []engine{sqliteFS, postgresMinIO} {
		t.Run(string(eng), func(t *testing.T) {
			t.Parallel()
			e := setup(t, on(eng))
			rounds := &pushRounds{}
			tr := &registry.Transfer{Data: e.client, Catalog: httpapi.Catalog{C: e.client}, Log: slog.New(rounds),
				Lease: registry.LeaseTerms{TTL: time.Minute, Renew: 20 * time.Millisecond}}
			ctx, cancel := context.WithCancel(e.ctx)
			defer cancel()
			var pushes atomic.Int64
			errc := make(chan error, 4)
			tokens := make(chan struct{})
			var wg sync.WaitGroup
			for w := 0; w < 2; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 5))
					for i := 0; ; i++ {
						select {
						case <-tokens:
						case <-ctx.Done():
							return
						}
						src := filepath.Join(t.TempDir(), fmt.Sprint(i))
						for f := 0; f < 3; f++ {
							os.MkdirAll(src, 0o755)
							if err := os.WriteFile(filepath.Join(src, fmt.Sprint("f", f)), []byte(fmt.Sprint("content-", rng.IntN(10))), 0o644); err != nil {
								errc <- err
								return
							}
						}
						_, err := tr.Push(ctx, "", src, fmt.Sprintf("ns/w%d:%d", w, rng.IntN(3)), registry.PushOptions{Parallel: 2})
						switch {
						case err == nil:
							pushes.Add(1)
						case ctx.Err() != nil:
							return
						default:
							errc <- fmt.Errorf("push %d of writer %d: %w", i, w, err)
							return
						}
						if rng.IntN(3) == 0 {
							err := e.client.DeleteRef(ctx, fmt.Sprintf("ns/w%d:%d", w, rng.IntN(3)))
							if err != nil && core.KindOf(err) != core.KindNotFound && ctx.Err() == nil {
								errc <- err
								return
							}
						}
					}
				}(w)
			}
			failed := false
			for c := 0; c < cycles && !failed; c++ {
				if _, err := e.reg.GC(e.ctx, "gc", 0); err != nil {
					t.Errorf("GC cycle %d: %v", c, err)
					break
				}
				select {
				case tokens <- struct{}{}:
				case err := <-errc:
					t.Error(err)
					failed = true
				case <-time.After(time.Minute):
					t.Errorf("no writer took a push for a minute (cycle %d)", c)
					failed = true
				}
			}
			cancel()
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Error(err)
			}
			t.Logf("%d GC cycles at grace 0, %d remote pushes, %d rounds lost to GC", cycles, pushes.Load(), rounds.lost.Load())
			if n := rounds.lost.Load(); n != 0 {
				t.Errorf("%d push rounds lost to GC despite the lease", n)
			}
			refs, err := e.meta.Refs(e.ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range refs {
				dest := filepath.Join(t.TempDir(), "pull")
				if _, err := tr.Pull(e.ctx, r.String(), dest, nil); err != nil {
					t.Errorf("pull %s: %v", r, err)
				}
			}
			if rp, err := e.meta.Replay(e.ctx); err != nil || !rp.Match() {
				t.Errorf("replay: %+v, %v", rp, err)
			}
		})
	}
}
