package core

import (
	"errors"
	"strings"
	"testing"
)

func TestProjectValidate(t *testing.T) {
	t.Parallel()
	valid := func() Project {
		return Project{
			Name: "web", RepoURL: "https://git.example.com/acme/web.git", DefaultBranch: "main",
			Protected: []string{"main", "release/**"}, Secrets: []string{"DEPLOY_KEY", "_X1"},
			Labels: []string{"linux", "executor:shell"},
		}
	}
	tests := []struct {
		name   string
		change func(*Project)
		want   string // in the message; empty when the project is valid
	}{
		{"OK", func(*Project) {}, ""},
		{"OKLocalPath", func(p *Project) { p.RepoURL = "/srv/git/web" }, ""},
		{"OKNoLists", func(p *Project) { p.Protected, p.Secrets, p.Labels = nil, nil, nil }, ""},
		{"OKLongestName", func(p *Project) { p.Name = "a" + strings.Repeat("b", 62) }, ""},
		{"OKNameWithPunctuation", func(p *Project) { p.Name = "0web.app_v2-x" }, ""},
		{"OKNestedBranch", func(p *Project) { p.DefaultBranch = "team/dev.1" }, ""},
		{"ErrNameRequired", func(p *Project) { p.Name = "" }, `name ""`},
		{"ErrNameUpperCase", func(p *Project) { p.Name = "Web" }, `name "Web"`},
		{"ErrNameLeadingDash", func(p *Project) { p.Name = "-web" }, `name "-web"`},
		{"ErrNameLeadingDot", func(p *Project) { p.Name = ".web" }, `name ".web"`},
		{"ErrNameSlash", func(p *Project) { p.Name = "acme/web" }, `name "acme/web"`},
		{"ErrNameTooLong", func(p *Project) { p.Name = strings.Repeat("a", 64) }, "name \"" + strings.Repeat("a", 64)},
		{"ErrRepoRequired", func(p *Project) { p.RepoURL = "" }, "repository URL is required"},
		{"ErrRepoOption", func(p *Project) { p.RepoURL = "--upload-pack=evil" }, `repository URL "--upload-pack=evil": must not start with '-'`},
		{"ErrRepoSpace", func(p *Project) { p.RepoURL = "/srv/my repo" }, `repository URL "/srv/my repo"`},
		{"ErrRepoNewline", func(p *Project) { p.RepoURL = "/srv/web\n" }, `repository URL "/srv/web\n"`},
		{"ErrBranchRequired", func(p *Project) { p.DefaultBranch = "" }, `default branch "": is required`},
		{"ErrBranchOption", func(p *Project) { p.DefaultBranch = "-f" }, `default branch "-f"`},
		{"ErrBranchDotDot", func(p *Project) { p.DefaultBranch = "a..b" }, `default branch "a..b"`},
		{"ErrBranchColon", func(p *Project) { p.DefaultBranch = "a:b" }, `default branch "a:b"`},
		{"ErrBranchTilde", func(p *Project) { p.DefaultBranch = "a~1" }, `default branch "a~1"`},
		{"ErrBranchCaret", func(p *Project) { p.DefaultBranch = "a^" }, `default branch "a^"`},
		{"ErrBranchQuestion", func(p *Project) { p.DefaultBranch = "a?" }, `default branch "a?"`},
		{"ErrBranchStar", func(p *Project) { p.DefaultBranch = "a*" }, `default branch "a*"`},
		{"ErrBranchBracket", func(p *Project) { p.DefaultBranch = "a[" }, `default branch "a["`},
		{"ErrBranchBackslash", func(p *Project) { p.DefaultBranch = `a\b` }, `default branch "a\\b"`},
		{"ErrBranchSpace", func(p *Project) { p.DefaultBranch = "my branch" }, `default branch "my branch"`},
		{"ErrBranchControl", func(p *Project) { p.DefaultBranch = "a\x7fb" }, `default branch "a\x7fb"`},
		{"ErrBranchLeadingSlash", func(p *Project) { p.DefaultBranch = "/main" }, `default branch "/main"`},
		{"ErrBranchTrailingSlash", func(p *Project) { p.DefaultBranch = "main/" }, `default branch "main/"`},
		{"ErrProtectedEmpty", func(p *Project) { p.Protected = []string{""} }, `protected branch pattern "": must not be empty`},
		{"ErrProtectedBadGlob", func(p *Project) { p.Protected = []string{"release/[x"} }, `protected branch pattern "release/[x": is not a valid glob`},
		{"ErrProtectedTwice", func(p *Project) { p.Protected = []string{"main", "main"} }, `protected branch pattern "main": is listed twice`},
		{"ErrSecretLeadingDigit", func(p *Project) { p.Secrets = []string{"1KEY"} }, `secret "1KEY"`},
		{"ErrSecretDash", func(p *Project) { p.Secrets = []string{"DEPLOY-KEY"} }, `secret "DEPLOY-KEY"`},
		{"ErrSecretEmpty", func(p *Project) { p.Secrets = []string{""} }, `secret "": must not be empty`},
		{"ErrSecretTwice", func(p *Project) { p.Secrets = []string{"A", "A"} }, `secret "A": is listed twice`},
		{"ErrLabelEmpty", func(p *Project) { p.Labels = []string{""} }, `label "": must not be empty`},
		{"ErrLabelComma", func(p *Project) { p.Labels = []string{"linux,gpu"} }, `label "linux,gpu"`},
		{"ErrLabelSpace", func(p *Project) { p.Labels = []string{"big box"} }, `label "big box"`},
		{"ErrLabelTab", func(p *Project) { p.Labels = []string{"a\tb"} }, `label "a\tb"`},
		{"ErrLabelTwice", func(p *Project) { p.Labels = []string{"linux", "linux"} }, `label "linux": is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := valid()
			tt.change(&p)
			err := p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want a KindInvalid error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %q, want it to say %q", err, tt.want)
			}
		})
	}
}
