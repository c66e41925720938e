package ui

import (
	"context"

	"github.com/deltaci/deltaci/internal/webauth"
)

// WithWebLogin returns cfg with the web login as its authority: its
// sessions, roles and CSRF tokens, and its login page. The caller serves
// the login's routes ((*webauth.Auth).Routes) and wraps them and the
// pages in (*webauth.Auth).Middleware, which loads the session.
func WithWebLogin(cfg Config, a *webauth.Auth) Config {
	cfg.Auth, cfg.LoginURL = a, a.LoginURL
	cfg.Middleware = nil
	cfg.Session = WebSession
	return cfg
}

// WebSession is the actor and CSRF token of a web login's session: the
// actor is the user's verified e-mail address, or else their subject at
// the provider.
func WebSession(ctx context.Context) (actor, csrf string) {
	s, ok := webauth.SessionFrom(ctx)
	if !ok {
		return "", ""
	}
	if s.User.EmailVerified && s.User.Email != "" {
		return "user:" + s.User.Email, s.CSRF
	}
	return "user:sub:" + s.User.Subject, s.CSRF
}
