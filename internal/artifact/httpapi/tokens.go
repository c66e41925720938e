package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

// TokenCreate is the body of POST /tokens.
type TokenCreate struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// TokenBody is a token as the API shows it: never its secret, except
// Token in the answer that creates it.
type TokenBody struct {
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	CreatedBy string   `json:"created_by"`
	CreatedAt string   `json:"created_at"`
	RevokedBy string   `json:"revoked_by,omitempty"`
	RevokedAt string   `json:"revoked_at,omitempty"`
	// Token is the secret, in the answer to POST /tokens only.
	Token string `json:"token,omitempty"`
}

// TokenList is the body of GET /tokens.
type TokenList struct {
	Tokens []TokenBody `json:"tokens"`
}

func tokenBody(t eventlog.Token) TokenBody {
	b := TokenBody{Name: t.Name, Scopes: make([]string, len(t.Scopes)), CreatedBy: t.CreatedBy,
		CreatedAt: formatTime(t.CreatedAt), RevokedBy: t.RevokedBy}
	for i, s := range t.Scopes {
		b.Scopes[i] = s.String()
	}
	if t.Revoked() {
		b.RevokedAt = formatTime(t.RevokedAt)
	}
	return b
}

func (b TokenBody) token() (eventlog.Token, error) {
	const op = "decode token"
	t := eventlog.Token{Name: b.Name, CreatedBy: b.CreatedBy, RevokedBy: b.RevokedBy}
	for _, s := range b.Scopes {
		sc, err := eventlog.ParseScope(s)
		if err != nil {
			return eventlog.Token{}, err
		}
		t.Scopes = append(t.Scopes, sc)
	}
	var err error
	if t.CreatedAt, err = parseTime(op, b.CreatedAt); err != nil {
		return eventlog.Token{}, err
	}
	if b.RevokedAt != "" {
		if t.RevokedAt, err = parseTime(op, b.RevokedAt); err != nil {
			return eventlog.Token{}, err
		}
	}
	return t, nil
}

// tokensHere refuses token management on a store that does not
// authenticate with its own tokens: one mounted in a deltaci server, whose
// API tokens are the server's.
func (s *server) tokensHere() error {
	if _, ok := s.auth.(*TokenAuth); !ok {
		return core.E(core.KindNotFound, "tokens", "this store authenticates with the tokens of the server that serves it; manage them there")
	}
	return nil
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request) error {
	if err := s.tokensHere(); err != nil {
		return err
	}
	ts, err := s.meta.Tokens(r.Context())
	if err != nil {
		return err
	}
	out := TokenList{Tokens: make([]TokenBody, len(ts))}
	for i, t := range ts {
		out.Tokens[i] = tokenBody(t)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// createToken makes a token and answers with its secret, once.
func (s *server) createToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.tokensHere(); err != nil {
		return err
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	var req TokenCreate
	if err := decodeJSON(w, r, s.maxJSON, false, &req); err != nil {
		return err
	}
	var scopes eventlog.Scopes
	for _, sc := range req.Scopes {
		p, err := eventlog.ParseScope(sc)
		if err != nil {
			return err
		}
		scopes = append(scopes, p)
	}
	t, secret, err := s.meta.CreateToken(r.Context(), who, req.Name, scopes)
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "API token created", slog.String("token", t.Name), slog.String("scopes", t.Scopes.String()),
		slog.String("by", who))
	out := tokenBody(t)
	out.Token = secret
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if err := s.tokensHere(); err != nil {
		return err
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := eventlog.ValidateTokenName(name); err != nil {
		return err
	}
	if err := s.meta.RevokeToken(r.Context(), who, name); err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "API token revoked", slog.String("token", name), slog.String("by", who))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Tokens lists the server's API tokens, revoked ones too (GET /tokens).
func (c *Client) Tokens(ctx context.Context) ([]eventlog.Token, error) {
	var out TokenList
	if err := c.call(ctx, request{method: http.MethodGet, path: "/tokens", want: []int{http.StatusOK}}, nil, &out); err != nil {
		return nil, err
	}
	ts := make([]eventlog.Token, len(out.Tokens))
	for i, b := range out.Tokens {
		t, err := b.token()
		if err != nil {
			return nil, err
		}
		ts[i] = t
	}
	return ts, nil
}

// CreateToken makes a token on the server (POST /tokens) and returns it
// with its secret, which the server never shows again.
func (c *Client) CreateToken(ctx context.Context, name string, scopes eventlog.Scopes) (eventlog.Token, string, error) {
	in := TokenCreate{Name: name, Scopes: make([]string, len(scopes))}
	for i, s := range scopes {
		in.Scopes[i] = s.String()
	}
	var out TokenBody
	if err := c.call(ctx, request{method: http.MethodPost, path: "/tokens", want: []int{http.StatusCreated}}, in, &out); err != nil {
		return eventlog.Token{}, "", err
	}
	t, err := out.token()
	return t, out.Token, err
}

// RevokeToken revokes a token on the server (DELETE /tokens/{name}).
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: "/tokens/" + url.PathEscape(name),
		want: []int{http.StatusNoContent}}, nil, nil)
}
