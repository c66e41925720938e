package auth_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/deltaci/deltaci/internal/auth"
	"github.com/deltaci/deltaci/internal/core"
)

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

func keyset(t *testing.T) (*auth.Keyset, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ks, err := auth.NewKeyset(c.now)
	if err != nil {
		t.Fatal(err)
	}
	return ks, c
}

func unauthorized(t *testing.T, err error, contains string) {
	t.Helper()
	if core.KindOf(err) != core.KindUnauthorized || !strings.Contains(err.Error(), contains) {
		t.Fatalf("got %v, want unauthorized mentioning %q", err, contains)
	}
}

func TestRegistrationAndCredentials(t *testing.T) {
	t.Parallel()
	if err := auth.CheckRegistrationToken("s3cret", "s3cret"); err != nil {
		t.Fatal(err)
	}
	unauthorized(t, auth.CheckRegistrationToken("s3cret", "guess"), "refused")
	unauthorized(t, auth.CheckRegistrationToken("", ""), "refused")
	cred, hash := auth.NewCredential()
	if strings.Contains(hash, cred) || len(cred) < 40 {
		t.Errorf("credential %q / hash %q", cred, hash)
	}
	if err := auth.CheckCredential(hash, cred); err != nil {
		t.Fatal(err)
	}
	other, _ := auth.NewCredential()
	unauthorized(t, auth.CheckCredential(hash, other), "refused")
}

func TestSessionTokens(t *testing.T) {
	t.Parallel()
	ks, c := keyset(t)
	tok, exp, err := ks.IssueSession("runner-1", []string{"linux"})
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(c.now().Add(auth.SessionTTL)) {
		t.Errorf("expires %v", exp)
	}
	claims, err := ks.Verify(tok, auth.AudienceRunner)
	if err != nil || claims.Subject != "runner-1" || claims.Labels[0] != "linux" {
		t.Fatalf("verify = %+v, %v", claims, err)
	}
	_, err = ks.Verify(tok, auth.AudienceJob)
	unauthorized(t, err, "not for this use")
	c.add(auth.SessionTTL + time.Minute)
	_, err = ks.Verify(tok, auth.AudienceRunner)
	unauthorized(t, err, "expired")
}

func TestRotationKeepsLiveSessions(t *testing.T) {
	t.Parallel()
	ks, _ := keyset(t)
	old, _, _ := ks.IssueSession("r", nil)
	if err := ks.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(old, auth.AudienceRunner); err != nil {
		t.Fatalf("token of the previous key refused after one rotation: %v", err)
	}
	if err := ks.Rotate(); err != nil {
		t.Fatal(err)
	}
	_, err := ks.Verify(old, auth.AudienceRunner)
	unauthorized(t, err, "refused")
}

func TestJobTokensAreScoped(t *testing.T) {
	t.Parallel()
	ks, c := keyset(t)
	tok, err := ks.IssueJobToken("runner-1", "run-1", "attempt-1", c.now().Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifyJob(tok, "attempt-1"); err != nil {
		t.Fatal(err)
	}
	_, err = ks.VerifyJob(tok, "attempt-2")
	unauthorized(t, err, "another attempt")
	_, err = ks.Verify(tok, auth.AudienceRunner)
	unauthorized(t, err, "not for this use")
	c.add(time.Minute)
	_, err = ks.VerifyJob(tok, "attempt-1")
	unauthorized(t, err, "expired")
}

func TestForgedTokensRefused(t *testing.T) {
	t.Parallel()
	ks, c := keyset(t)
	other, _ := auth.NewKeyset(c.now)
	foreign, _, _ := other.IssueSession("intruder", nil)
	_, err := ks.Verify(foreign, auth.AudienceRunner)
	unauthorized(t, err, "refused")
	// alg=none and HMAC tokens are never accepted.
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": "deltaci", "aud": "deltaci-runner", "exp": c.now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	_, err = ks.Verify(none, auth.AudienceRunner)
	unauthorized(t, err, "refused")
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "deltaci", "aud": "deltaci-runner", "exp": c.now().Add(time.Hour).Unix()}).
		SignedString([]byte("guessable"))
	_, err = ks.Verify(hs, auth.AudienceRunner)
	unauthorized(t, err, "refused")
	tok, _, _ := ks.IssueSession("r", nil)
	tampered := tok[:len(tok)-4] + "AAAA"
	_, err = ks.Verify(tampered, auth.AudienceRunner)
	unauthorized(t, err, "refused")
}

// FuzzVerify: no input makes Verify panic or accept a token it did not sign.
func FuzzVerify(f *testing.F) {
	ks, _ := auth.NewKeyset(nil)
	good, _, _ := ks.IssueSession("r", []string{"x"})
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ks.Verify(tok, auth.AudienceRunner)
		if err == nil && tok != good && c.Subject != "r" {
			t.Fatalf("accepted a token it did not sign: %q", tok)
		}
	})
}

func TestAcceptedKeyVerifiesButNeverSigns(t *testing.T) {
	t.Parallel()
	seedOld, seedNew := make([]byte, 32), make([]byte, 32)
	seedNew[0] = 1
	old, err := auth.KeysetFromSeed(seedOld, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := old.IssueSession("r", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The next key signs; the old one is accepted until it is dropped.
	next, err := auth.KeysetFromSeed(seedNew, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := next.Verify(tok, auth.AudienceRunner); err == nil {
		t.Fatal("a token of another key verified")
	}
	if err := next.Accept(seedOld); err != nil {
		t.Fatal(err)
	}
	if c, err := next.Verify(tok, auth.AudienceRunner); err != nil || c.Subject != "r" {
		t.Fatalf("token of the accepted key: %+v, %v", c, err)
	}
	// What next signs, old does not verify: next signs with its own key.
	fresh, _, _ := next.IssueSession("r", nil)
	_, err = old.Verify(fresh, auth.AudienceRunner)
	unauthorized(t, err, "refused")
	if err := next.Accept([]byte("short")); core.KindOf(err) != core.KindInvalid {
		t.Fatalf("a short seed: %v", err)
	}
}
