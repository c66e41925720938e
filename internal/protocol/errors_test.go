package protocol_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/api/apitest"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/gittest"
	"github.com/deltaci/deltaci/internal/protocol"
	"github.com/deltaci/deltaci/internal/store"
)

// TestErrorsSayTheirMessageOnce: a refused request's error names the
// operation and carries the server's message, status and code, each once,
// and keeps the Kind that callers branch on.
func TestErrorsSayTheirMessageOnce(t *testing.T) {
	t.Parallel()
	srv := apitest.Start(t, apitest.Options{})
	ctx := t.Context()
	repo := gittest.Repo(t, map[string]string{".deltaci.yml": "version: 1\njobs:\n  a:\n    run: echo a\n"})
	p := srv.AddProject(t, repo)
	wrongToken := &protocol.Client{BaseURL: srv.URL, Token: func(context.Context) (string, error) { return "not-the-token", nil }}
	cases := []struct {
		name   string
		call   func() error
		kind   core.Kind
		status int
		says   string
	}{
		{"UnknownRef", func() error {
			_, err := srv.User().CreateRun(ctx, protocol.CreateRunRequest{Project: p.Name, Ref: "nosuchbranch"})
			return err
		}, core.KindInvalid, 400, "nosuchbranch"},
		{"RemoveUnknownRunner", func() error {
			return srv.User().RemoveRunner(ctx, store.NewID())
		}, core.KindNotFound, 404, "no runner"},
		{"WrongRegistrationToken", func() error {
			_, err := (&protocol.Client{BaseURL: srv.URL}).Register(ctx, "wrong", protocol.RegisterRequest{Name: "r", ProtocolVersion: protocol.Version})
			return err
		}, core.KindUnauthorized, 401, ""},
		{"WrongAPIToken", func() error {
			_, err := wrongToken.Runners(ctx)
			return err
		}, core.KindUnauthorized, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			var ae *protocol.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) carries no APIError", err, err)
			}
			msg := err.Error()
			if ae.Status != c.status || core.KindOf(err) != c.kind {
				t.Errorf("status %d, kind %s; want %d, %s: %s", ae.Status, core.KindOf(err), c.status, c.kind, msg)
			}
			if ae.Message == "" || !strings.Contains(ae.Message, c.says) {
				t.Errorf("server message %q does not say %q", ae.Message, c.says)
			}
			if n := strings.Count(msg, ae.Message); n != 1 {
				t.Errorf("the message appears %d times in %q, want once", n, msg)
			}
			if n := strings.Count(msg, "(HTTP "); n != 1 {
				t.Errorf("the status appears %d times in %q, want once", n, msg)
			}
		})
	}
}
