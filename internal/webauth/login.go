package webauth

import (
	"context"
	"crypto/subtle"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/store"
)

// maxGroups bounds what a session keeps of a group claim.
const maxGroups = 1000

// login starts the code flow: it records the login's nonce and PKCE
// verifier under the state's hash, binds the state to this browser with
// a cookie, and sends the browser to the provider.
func (a *Auth) login(w http.ResponseWriter, r *http.Request) {
	next, err := SafeNext(r.URL.Query().Get("next"))
	if err != nil {
		a.refuse(w, r, http.StatusBadRequest, err.Error())
		return
	}
	a.prune(r.Context())
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	err = a.st.CreateWebLogin(r.Context(), store.WebLogin{
		StateHash: hashID(state), Nonce: nonce, Verifier: verifier, Next: next, ExpiresAt: a.now().Add(loginTTL),
	})
	if err != nil {
		a.log.ErrorContext(r.Context(), "web login not recorded", "err", err)
		a.refuse(w, r, http.StatusServiceUnavailable, "the login could not be started: try again")
		return
	}
	a.setCookie(w, a.loginCookie(), state, loginTTL)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, a.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// callback finishes the code flow. The state must be the one this
// browser's cookie holds and a login under way; the code is redeemed with
// that login's PKCE verifier; the ID token must be the provider's, for
// this client, unexpired and carry that login's nonce. Then a new session
// replaces any the browser had.
func (a *Auth) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Cache-Control", "no-store")
	c, err := r.Cookie(a.loginCookie())
	if err != nil || c.Value == "" {
		a.refuse(w, r, http.StatusBadRequest, "no login is under way in this browser (it expired, or began in another browser): sign in again")
		return
	}
	a.clearCookie(w, a.loginCookie())
	state := q.Get("state")
	if subtle.ConstantTimeCompare([]byte(state), []byte(c.Value)) != 1 {
		a.refuse(w, r, http.StatusForbidden, "the login's state is not the one this browser began: sign in again")
		return
	}
	l, err := a.st.TakeWebLogin(r.Context(), hashID(state))
	if err != nil {
		if core.KindOf(err) != core.KindNotFound {
			a.log.ErrorContext(r.Context(), "web login not read", "err", err)
		}
		a.refuse(w, r, http.StatusBadRequest, "this login was already used or has expired: sign in again")
		return
	}
	if !a.now().Before(l.ExpiresAt) {
		a.refuse(w, r, http.StatusBadRequest, "this login took longer than "+loginTTL.String()+": sign in again")
		return
	}
	if e := q.Get("error"); e != "" {
		a.refuse(w, r, http.StatusForbidden, "the OpenID provider refused the login: "+e+" "+q.Get("error_description"))
		return
	}
	code := q.Get("code")
	if code == "" {
		a.refuse(w, r, http.StatusBadRequest, "the provider sent no authorization code")
		return
	}
	u, err := a.redeem(r.Context(), code, l)
	if err != nil {
		a.refuse(w, r, http.StatusForbidden, "the login was refused: "+err.Error())
		return
	}
	if old, err := r.Cookie(a.sessionCookie()); err == nil && old.Value != "" {
		if err := a.st.DeleteWebSession(r.Context(), hashID(old.Value)); err != nil {
			a.log.WarnContext(r.Context(), "replaced web session not deleted", "err", err)
		}
	}
	id, now := randomToken(), a.now()
	err = a.st.CreateWebSession(r.Context(), store.WebSession{
		IDHash: hashID(id), Subject: u.Subject, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Groups: u.Groups, CreatedAt: now, SeenAt: now, ExpiresAt: now.Add(a.cfg.MaxAge),
	})
	if err != nil {
		a.log.ErrorContext(r.Context(), "web session not recorded", "err", err)
		a.refuse(w, r, http.StatusServiceUnavailable, "the session could not be recorded: sign in again")
		return
	}
	a.setCookie(w, a.sessionCookie(), id, a.cfg.MaxAge)
	a.log.InfoContext(r.Context(), "signed in", "subject", u.Subject, "email", u.Email)
	http.Redirect(w, r, l.Next, http.StatusSeeOther)
}

// redeem exchanges the code (with the login's PKCE verifier) and returns
// the user its ID token names, once the token and its nonce check out.
func (a *Auth) redeem(ctx context.Context, code string, l store.WebLogin) (User, error) {
	ctx = a.clientContext(ctx)
	tok, err := a.oauth.Exchange(ctx, code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		return User{}, fmt.Errorf("redeem the code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return User{}, fmt.Errorf("the provider sent no ID token")
	}
	idt, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		return User{}, fmt.Errorf("ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(l.Nonce)) != 1 {
		return User{}, fmt.Errorf("ID token: its nonce is not this login's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return User{}, fmt.Errorf("ID token claims: %w", err)
	}
	u := a.userFrom(idt.Subject, claims)
	if u.Email == "" || (a.cfg.RoleClaim != "" && u.Groups == nil) {
		// Some providers put these only in userinfo.
		if info, err := a.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil && info.Subject == idt.Subject {
			var more map[string]any
			if err := info.Claims(&more); err == nil {
				for k, v := range more {
					if _, ok := claims[k]; !ok {
						claims[k] = v
					}
				}
				u = a.userFrom(idt.Subject, claims)
			}
		}
	}
	if u.Groups == nil {
		u.Groups = []string{}
	}
	return u, nil
}

// userFrom reads a user out of ID token (and userinfo) claims.
func (a *Auth) userFrom(subject string, claims map[string]any) User {
	u := User{Subject: subject}
	u.Email, _ = claims["email"].(string)
	switch v := claims["email_verified"].(type) {
	case bool:
		u.EmailVerified = v
	case string: // some providers send "true"
		u.EmailVerified, _ = strconv.ParseBool(v)
	}
	u.Name, _ = claims["name"].(string)
	if u.Name == "" {
		u.Name, _ = claims["preferred_username"].(string)
	}
	if a.cfg.RoleClaim != "" {
		u.Groups = groupsOf(claimAt(claims, a.cfg.RoleClaim))
	}
	return u
}

// claimAt follows a dotted claim name into nested objects; a name that is
// a claim of its own wins.
func claimAt(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	head, rest, ok := strings.Cut(name, ".")
	if !ok {
		return nil
	}
	inner, _ := claims[head].(map[string]any)
	if inner == nil {
		return nil
	}
	return claimAt(inner, rest)
}

// groupsOf reads a group claim: a list of strings or one string. It is
// nil when the claim is missing or of another shape.
func groupsOf(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := []string{}
		for _, g := range v {
			if s, ok := g.(string); ok && s != "" && len(out) < maxGroups {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// logout ends the browser's session, for a request CheckCSRF admits.
func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.CheckCSRF(r); err != nil {
		a.refuse(w, r, http.StatusForbidden, err.Error())
		return
	}
	s, _ := SessionFrom(r.Context())
	if err := a.st.DeleteWebSession(r.Context(), s.idHash); err != nil {
		a.log.ErrorContext(r.Context(), "web session not deleted", "err", err)
		a.refuse(w, r, http.StatusServiceUnavailable, "the session could not be ended: try again")
		return
	}
	a.clearCookie(w, a.sessionCookie())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// refuse answers a failed login or logout with a short page that says why
// and links to a new login.
func (a *Auth) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	a.log.WarnContext(r.Context(), "web login refused", "path", r.URL.Path, "status", status, "reason", msg,
		"remote_addr", r.RemoteAddr)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in problem · Delta CI</title></head>"+
		"<body><main><h1>Sign-in problem</h1><p>%s</p><p><a href=\"/login\">Sign in</a></p></main></body></html>\n", html.EscapeString(msg))
}

// prune deletes expired sessions and logins, at most once a minute per
// server.
func (a *Auth) prune(ctx context.Context) {
	now := a.now()
	last := a.lastPrune.Load()
	if now.UnixMilli()-last < time.Minute.Milliseconds() || !a.lastPrune.CompareAndSwap(last, now.UnixMilli()) {
		return
	}
	if _, _, err := a.st.PruneWebAuth(ctx, now, now.Add(-a.cfg.IdleTimeout)); err != nil {
		a.log.WarnContext(ctx, "expired web sessions not pruned", "err", err)
	}
}
