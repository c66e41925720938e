package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/api"
	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/protocol"
)

// testContractProjectRoles drives the project's web UI roles and its
// public flag with every status they document, on the project
// "contract". Refused changes are checked to change nothing.
func testContractProjectRoles(t *testing.T, e *contractEnv, tok contractTokens) {
	e = e.on(t)
	ctx, bad := t.Context(), contractUnchecked(t.Context())
	const path = "/api/v1/projects/contract/roles"
	roles := func() []protocol.RoleBinding {
		t.Helper()
		var got protocol.RoleList
		e.json(ctx, http.StatusOK, "GET", path, contractAPIToken, nil).decode(t, &got)
		return got.Roles
	}
	same := func(got []protocol.RoleBinding, want ...string) bool {
		if len(got) != len(want) {
			return false
		}
		for i, b := range got {
			if b.Principal+"="+b.Role != want[i] || b.CreatedAt.IsZero() {
				return false
			}
		}
		return true
	}
	if got := roles(); len(got) != 0 {
		t.Fatalf("a new project has roles: %+v", got)
	}
	e.json(ctx, http.StatusUnauthorized, "GET", path, "", nil)
	if code := e.json(ctx, http.StatusForbidden, "GET", path, tok.viewer, nil).errorDetail(t).Code; code != protocol.CodeForbidden {
		t.Errorf("a viewer reading roles: code %q", code)
	}
	e.json(ctx, http.StatusNotFound, "GET", "/api/v1/projects/nope/roles", contractAPIToken, nil)

	var got protocol.RoleList
	e.json(ctx, http.StatusOK, "PATCH", path, tok.bot, protocol.RolesPatch{Grant: []protocol.RoleBinding{
		{Principal: "Ada@Example.com", Role: "maintainer"}, {Principal: "group:ops", Role: "viewer"}, {Principal: "sub:1234", Role: "admin"},
	}}).decode(t, &got)
	if !same(got.Roles, "ada@example.com=maintainer", "group:ops=viewer", "sub:1234=admin") {
		t.Errorf("roles after granting = %+v", got.Roles)
	}
	e.json(ctx, http.StatusOK, "PATCH", path, contractAPIToken, protocol.RolesPatch{
		Grant: []protocol.RoleBinding{{Principal: "ada@example.com", Role: "admin"}}, Revoke: []string{"group:ops"},
	}).decode(t, &got)
	if !same(got.Roles, "ada@example.com=admin", "sub:1234=admin") {
		t.Errorf("roles after replacing and revoking = %+v", got.Roles)
	}

	// Refused changes change nothing, even the valid parts of them.
	for _, c := range []struct {
		body, says string
		schema     bool // the schema refuses it too
	}{
		{`{}`, "nothing to change", false},
		{`{"grant":[{"principal":"ada","role":"viewer"}]}`, `principal "ada"`, false},
		{`{"grant":[{"principal":"bob@example.com","role":"viewer"}],"revoke":["Bob@example.com"]}`, "named twice", false},
		{`{"revoke":["sub:1234"],"grant":[{"principal":"group: ops","role":"viewer"}]}`, "group:NAME", false},
		{`{"grant":[{"principal":"bob@example.com","role":"owner"}]}`, `role "owner"`, true},
		{`{"grant":[{"principal":"bob@example.com","role":"viewer","created_at":"2024-05-01T00:00:00Z"}]}`, "created_at", true},
		{`{"grant":[{"principal":"","role":"viewer"}]}`, "principal", true},
		{`{"grant":[{"role":"viewer"}]}`, "principal", true},
		{`{"give":["x"]}`, "give", true},
		{`{"grant":`, "", true},
	} {
		cx := ctx
		if c.schema {
			cx = bad
		}
		d := e.json(cx, http.StatusBadRequest, "PATCH", path, contractAPIToken, []byte(c.body)).errorDetail(t)
		if d.Code != string(core.KindInvalid) || !strings.Contains(d.Message, c.says) {
			t.Errorf("changing roles with %s: %+v, want invalid saying %q", c.body, d, c.says)
		}
	}
	valid := protocol.RolesPatch{Grant: []protocol.RoleBinding{{Principal: "bob@example.com", Role: "viewer"}}}
	e.json(ctx, http.StatusUnauthorized, "PATCH", path, "", valid)
	e.json(ctx, http.StatusUnauthorized, "PATCH", path, tok.session, valid)
	if code := e.json(ctx, http.StatusForbidden, "PATCH", path, tok.viewer, valid).errorDetail(t).Code; code != protocol.CodeForbidden {
		t.Errorf("a viewer changing roles: code %q", code)
	}
	e.json(ctx, http.StatusNotFound, "PATCH", "/api/v1/projects/nope/roles", contractAPIToken, valid)
	d := e.json(ctx, http.StatusNotFound, "PATCH", path, contractAPIToken, protocol.RolesPatch{
		Grant: valid.Grant, Revoke: []string{"carol@example.com"},
	}).errorDetail(t)
	if d.Code != string(core.KindNotFound) || !strings.Contains(d.Message, "carol@example.com has no role") {
		t.Errorf("revoking a principal with no role: %+v", d)
	}
	tooBig := bytes.Repeat([]byte(" "), api.DefaultMaxJSONBytes+1)
	e.json(bad, http.StatusRequestEntityTooLarge, "PATCH", path, contractAPIToken, tooBig)
	e.expect(bad, http.StatusUnsupportedMediaType, "PATCH", path, contractHeader(contractAPIToken, "Content-Type", "text/plain"), []byte(`{}`))
	if got := roles(); !same(got, "ada@example.com=admin", "sub:1234=admin") {
		t.Errorf("roles after refused changes = %+v", got)
	}

	// The public flag: off by default, set and cleared by a patch.
	var p protocol.Project
	e.json(ctx, http.StatusOK, "GET", "/api/v1/projects/contract", contractAPIToken, nil).decode(t, &p)
	if p.Public {
		t.Error("a new project is public")
	}
	yes, no := true, false
	e.json(ctx, http.StatusOK, "PATCH", "/api/v1/projects/contract", contractAPIToken, protocol.ProjectPatch{Public: &yes}).decode(t, &p)
	if !p.Public {
		t.Error("the project did not become public")
	}
	e.json(ctx, http.StatusOK, "PATCH", "/api/v1/projects/contract", contractAPIToken, protocol.ProjectPatch{Public: &no}).decode(t, &p)
	if p.Public {
		t.Error("the project stayed public")
	}

	// Leave the project as the later tests expect it: no roles.
	e.json(ctx, http.StatusOK, "PATCH", path, contractAPIToken, protocol.RolesPatch{Revoke: []string{"ada@example.com", "sub:1234"}}).decode(t, &got)
	if len(got.Roles) != 0 {
		t.Errorf("roles after revoking all = %+v", got.Roles)
	}
}
