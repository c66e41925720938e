// Package auth holds the runner identities of the lease protocol (DESIGN.md
// sections 6 and 12): a shared registration token gives a runner a
// long-lived credential, the credential buys short-lived EdDSA JWT session
// tokens, and each leased attempt carries a job token scoped to that one
// attempt. Keys rotate: tokens signed by the previous key stay valid until
// they expire.
package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/deltaci/deltaci/internal/core"
)

// Token lifetimes.
const (
	// SessionTTL is how long a runner session token is valid.
	SessionTTL = 15 * time.Minute
	issuer     = "deltaci"
)

// Audiences keep the two kinds of token apart: a job token is never a
// session token, and the other way round.
const (
	AudienceRunner = "deltaci-runner"
	AudienceJob    = "deltaci-job"
)

// CheckRegistrationToken compares a presented registration token with the
// configured one in constant time. An empty configured token refuses all.
func CheckRegistrationToken(configured, presented string) error {
	if configured == "" || subtle.ConstantTimeCompare([]byte(configured), []byte(presented)) != 1 {
		return core.E(core.KindUnauthorized, "register runner", "registration token refused")
	}
	return nil
}

// NewCredential returns a random runner credential and the hash to store;
// the credential itself is shown to the runner once and never stored.
func NewCredential() (credential, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand does not fail on Linux
	credential = "dcr_" + base64.RawURLEncoding.EncodeToString(b)
	return credential, HashCredential(credential)
}

// HashCredential is the stored form of a credential.
func HashCredential(credential string) string {
	sum := sha256.Sum256([]byte(credential))
	return hex.EncodeToString(sum[:])
}

// CheckCredential compares a presented credential with a stored hash in
// constant time.
func CheckCredential(storedHash, presented string) error {
	got := HashCredential(presented)
	if subtle.ConstantTimeCompare([]byte(storedHash), []byte(got)) != 1 {
		return core.E(core.KindUnauthorized, "runner session", "runner credential refused")
	}
	return nil
}

// key is one signing key and its id.
type key struct {
	id   string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func newKey() (key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return key{}, core.Wrap(core.KindInternal, "generate signing key", err)
	}
	sum := sha256.Sum256(pub)
	return key{id: hex.EncodeToString(sum[:8]), priv: priv, pub: pub}, nil
}

// Keyset signs with its current key and verifies with the current and the
// previous one, so a rotation does not end sessions that are still valid.
type Keyset struct {
	mu       sync.RWMutex
	current  key
	previous *key
	now      func() time.Time

	// verified remembers tokens whose signature checked out: a runner
	// sends the same session token with every request, and an EdDSA
	// verification costs more than the rest of a lease's handling.
	cacheMu  sync.Mutex
	verified map[string]verifiedToken
}

// verifiedCap bounds the verified-token cache; it starts over when full.
const verifiedCap = 4096

// verifiedToken is a token whose signature was checked with key kid.
type verifiedToken struct {
	claims Claims
	kid    string
}

// NewKeyset returns a keyset with a fresh key. now may be nil (time.Now).
func NewKeyset(now func() time.Time) (*Keyset, error) {
	k, err := newKey()
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Keyset{current: k, now: now}, nil
}

// Rotate makes a new current key; the old one still verifies until the
// next rotation. Rotate at most once per SessionTTL.
func (ks *Keyset) Rotate() error {
	k, err := newKey()
	if err != nil {
		return err
	}
	ks.mu.Lock()
	old := ks.current
	ks.previous, ks.current = &old, k
	ks.mu.Unlock()
	return nil
}

// Claims are what a token says.
type Claims struct {
	jwt.RegisteredClaims
	// Labels of the runner (session tokens).
	Labels []string `json:"labels,omitempty"`
	// AttemptID and RunID scope a job token to one attempt.
	AttemptID string `json:"attempt,omitempty"`
	RunID     string `json:"run,omitempty"`
}

// IssueSession signs a session token for a runner.
func (ks *Keyset) IssueSession(runnerID string, labels []string) (string, time.Time, error) {
	exp := ks.now().Add(SessionTTL)
	tok, err := ks.sign(Claims{RegisteredClaims: ks.registered(runnerID, AudienceRunner, exp), Labels: labels})
	return tok, exp, err
}

// IssueJobToken signs a token that lets a job read and write only its own
// attempt's logs and outputs; it expires with the lease.
func (ks *Keyset) IssueJobToken(runnerID, runID, attemptID string, expires time.Time) (string, error) {
	return ks.sign(Claims{RegisteredClaims: ks.registered(runnerID, AudienceJob, expires), RunID: runID, AttemptID: attemptID})
}

func (ks *Keyset) registered(subject, audience string, exp time.Time) jwt.RegisteredClaims {
	now := ks.now()
	return jwt.RegisteredClaims{
		Issuer: issuer, Subject: subject, Audience: jwt.ClaimStrings{audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
	}
}

func (ks *Keyset) sign(c Claims) (string, error) {
	ks.mu.RLock()
	k := ks.current
	ks.mu.RUnlock()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.id
	s, err := t.SignedString(k.priv)
	if err != nil {
		return "", core.Wrap(core.KindInternal, "sign token", err)
	}
	return s, nil
}

// claimChecks are the checks of a token's claims besides its signature.
func (ks *Keyset) claimChecks(audience string) []jwt.ParserOption {
	return []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer), jwt.WithAudience(audience), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(ks.now), jwt.WithLeeway(5 * time.Second),
	}
}

// keyKnown reports whether kid is the current or the previous key.
func (ks *Keyset) keyKnown(kid string) bool {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return kid == ks.current.id || (ks.previous != nil && kid == ks.previous.id)
}

// Verify checks a token's signature (by its key id), issuer, audience and
// times, and returns its claims. Any failure is core.KindUnauthorized.
// A token seen before skips the signature check, never the others, and
// only while its key is still in the keyset.
func (ks *Keyset) Verify(token, audience string) (Claims, error) {
	checks := ks.claimChecks(audience)
	ks.cacheMu.Lock()
	v, hit := ks.verified[token]
	ks.cacheMu.Unlock()
	if hit && ks.keyKnown(v.kid) {
		if err := jwt.NewValidator(checks...).Validate(v.claims); err != nil {
			return Claims{}, &core.Error{Kind: core.KindUnauthorized, Op: "verify token", Msg: tokenProblem(err), Err: err}
		}
		return ks.scoped(v.claims, audience)
	}
	var c Claims
	var kid string
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		ks.mu.RLock()
		defer ks.mu.RUnlock()
		switch {
		case kid == ks.current.id:
			return ks.current.pub, nil
		case ks.previous != nil && kid == ks.previous.id:
			return ks.previous.pub, nil
		}
		return nil, fmt.Errorf("unknown signing key %q", kid)
	}, checks...)
	if err != nil {
		return Claims{}, &core.Error{Kind: core.KindUnauthorized, Op: "verify token", Msg: tokenProblem(err), Err: err}
	}
	ks.cacheMu.Lock()
	if ks.verified == nil || len(ks.verified) >= verifiedCap {
		ks.verified = make(map[string]verifiedToken)
	}
	ks.verified[token] = verifiedToken{claims: c, kid: kid}
	ks.cacheMu.Unlock()
	return ks.scoped(c, audience)
}

// scoped refuses a job token that names no attempt.
func (ks *Keyset) scoped(c Claims, audience string) (Claims, error) {
	if audience == AudienceJob && c.AttemptID == "" {
		return Claims{}, core.E(core.KindUnauthorized, "verify token", "job token names no attempt")
	}
	return c, nil
}

// VerifyJob checks a job token and that it is scoped to attemptID.
func (ks *Keyset) VerifyJob(token, attemptID string) (Claims, error) {
	c, err := ks.Verify(token, AudienceJob)
	if err != nil {
		return Claims{}, err
	}
	if subtle.ConstantTimeCompare([]byte(c.AttemptID), []byte(attemptID)) != 1 {
		return Claims{}, core.E(core.KindUnauthorized, "verify token", "job token is for another attempt")
	}
	return c, nil
}

func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired: get a new session"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token is not for this use"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token signature refused"
	}
	return "token refused"
}

// Accept makes the key of an ed25519 seed verify tokens too, without
// signing any: the previous key of a rotation done across server restarts,
// or the next one while replicas are told about it. It replaces a key
// accepted before; the signing key's own seed changes nothing.
func (ks *Keyset) Accept(seed []byte) error {
	k, err := keyFromSeed(seed)
	if err != nil {
		return err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if k.id != ks.current.id {
		ks.previous = &k
	}
	return nil
}

func keyFromSeed(seed []byte) (key, error) {
	if len(seed) != ed25519.SeedSize {
		return key{}, core.E(core.KindInvalid, "signing key", "a signing key seed is %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	return key{id: hex.EncodeToString(sum[:8]), priv: priv, pub: pub}, nil
}

// KeysetFromSeed returns a keyset whose current key is derived from an
// ed25519 seed (ed25519.SeedSize bytes), so that server replicas, and a
// server after a restart, sign and verify with one key. now may be nil.
func KeysetFromSeed(seed []byte, now func() time.Time) (*Keyset, error) {
	k, err := keyFromSeed(seed)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Keyset{current: k, now: now}, nil
}
