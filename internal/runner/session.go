package runner

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
)

// Identity is a registered runner's id and credential, kept in the runner's
// work directory so that a restarted runner is the same runner.
type Identity struct {
	RunnerID   string `json:"runner_id"`
	Credential string `json:"credential"`
	Server     string `json:"server"`
	// Labels are those registered: the server leases by them, so a runner
	// started with others (another --executor) registers anew.
	Labels []string `json:"labels"`
}

// IdentityFile is the name of the identity file in the work directory.
const IdentityFile = "runner.json"

// Session holds a runner's identity and its current session token, renewed
// before it expires and after the server forgets it.
type Session struct {
	Client *protocol.Client
	// Register is what a new identity is registered as.
	Register protocol.RegisterRequest
	// RegistrationToken is needed only when there is no identity yet.
	RegistrationToken string
	// Dir holds the identity file.
	Dir string

	mu      sync.Mutex
	id      Identity
	token   string
	expires time.Time
}

// Open loads the identity from Dir, or registers and saves a new one.
func (s *Session) Open(ctx context.Context) (Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := filepath.Join(s.Dir, IdentityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &s.id); err != nil || s.id.RunnerID == "" {
			return Identity{}, core.E(core.KindInvalid, "runner identity", "%s is damaged; remove it to register again", path)
		}
		if s.id.Server == s.Client.BaseURL && slices.Equal(s.id.Labels, s.Register.Labels) {
			return s.id, nil
		}
		// Registered with another server, or with other labels: register
		// as what this runner is now.
	case !errors.Is(err, fs.ErrNotExist):
		return Identity{}, core.Wrap(core.KindInternal, "runner identity", err)
	}
	return s.register(ctx, path)
}

func (s *Session) register(ctx context.Context, path string) (Identity, error) {
	if s.RegistrationToken == "" {
		return Identity{}, core.E(core.KindInvalid, "register runner", "this runner is not registered yet: give --registration-token (or DELTACI_REGISTRATION_TOKEN)")
	}
	req := s.Register
	req.ProtocolVersion = protocol.Version
	resp, err := s.Client.Register(ctx, s.RegistrationToken, req)
	if err != nil {
		return Identity{}, err
	}
	s.id = Identity{RunnerID: resp.RunnerID, Credential: resp.Credential, Server: s.Client.BaseURL, Labels: req.Labels}
	b, _ := json.MarshalIndent(s.id, "", "  ")
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return Identity{}, core.Wrap(core.KindInternal, "runner identity", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return Identity{}, core.Wrap(core.KindInternal, "runner identity", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return Identity{}, core.Wrap(core.KindInternal, "runner identity", err)
	}
	s.token, s.expires = "", time.Time{}
	return s.id, nil
}

// Token returns a session token valid for at least another minute; it is
// the Client's Token function.
func (s *Session) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && time.Until(s.expires) > time.Minute {
		return s.token, nil
	}
	resp, err := s.Client.Session(ctx, protocol.SessionRequest{RunnerID: s.id.RunnerID, Credential: s.id.Credential, ProtocolVersion: protocol.Version})
	if core.KindOf(err) == core.KindUnauthorized && s.RegistrationToken != "" {
		// The server no longer knows this runner (a new database): register anew.
		if _, err := s.register(ctx, filepath.Join(s.Dir, IdentityFile)); err != nil {
			return "", err
		}
		resp, err = s.Client.Session(ctx, protocol.SessionRequest{RunnerID: s.id.RunnerID, Credential: s.id.Credential, ProtocolVersion: protocol.Version})
	}
	if err != nil {
		return "", err
	}
	s.token, s.expires = resp.Token, resp.ExpiresAt
	return s.token, nil
}

// Invalidate drops the session token, so the next call gets a new one; it
// is the Client's OnUnauthorized function.
func (s *Session) Invalidate() {
	s.mu.Lock()
	s.token = ""
	s.mu.Unlock()
}
