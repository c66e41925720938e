package core

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/bmatcuk/doublestar/v4"
)

// Project is a repository the server is told about: the unit of trust and
// configuration.
type Project struct {
	ID string
	// Name is the key users and URLs use; it never changes.
	Name string
	// RepoURL is a clone URL or an absolute local path, unique among
	// projects.
	RepoURL string
	// DefaultBranch is the branch runs are made for when none is named.
	// The store gives a project created without one "main".
	DefaultBranch string
	// Protected are doublestar globs of branch names whose pushes are
	// trusted.
	Protected []string
	// Secrets are the names of the secrets its trusted runs may receive.
	Secrets []string
	// UntrustedNetwork is whether jobs of untrusted runs may have network.
	UntrustedNetwork bool
	// Labels are the runs-on labels its jobs may ask for; empty means any.
	Labels []string
	// Public lets anyone, signed in or not, read its runs in the web UI.
	Public bool
	// Forge is where its webhooks come from and its statuses go; its zero
	// value means none.
	Forge     ProjectForge
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ProjectForge ties a project to its repository on a forge.
type ProjectForge struct {
	// Kind is github, gitlab, gitea or forgejo; "" for no forge.
	Kind string `json:"kind,omitempty"`
	// APIURL is the forge API's root; "" means https://api.github.com
	// for github, and is required for the others.
	APIURL string `json:"api_url,omitempty"`
	// Repo is the repository on the forge: owner/name, or a GitLab
	// project's path with its namespace.
	Repo string `json:"repo,omitempty"`
	// TokenSecret names the secret, in the server's secret provider, that
	// holds the forge token statuses are posted with; "" posts none. The
	// token itself is never stored.
	TokenSecret string `json:"token_secret,omitempty"`
	// HookSecret signs (or, on GitLab, is) the webhook deliveries; the
	// server makes it, and only admins read it back.
	HookSecret string `json:"hook_secret,omitempty"`
	// KeepSuperseded keeps a pull request's unfinished run going when a
	// new push to it starts another; by default the older one is canceled.
	KeepSuperseded bool `json:"keep_superseded,omitempty"`
}

// ForgeKinds are the forges a project can name.
var ForgeKinds = []string{"github", "gitlab", "gitea", "forgejo"}

var (
	projectNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	secretNamePattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Validate checks every field a user sets and returns a KindInvalid error
// that names the first bad field, its value and what is allowed.
func (p Project) Validate() error {
	if !projectNamePattern.MatchString(p.Name) {
		return invalidProject("name %q: use 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", p.Name)
	}
	if err := checkRepoURL(p.RepoURL); err != nil {
		return err
	}
	if err := checkBranch(p.DefaultBranch); err != nil {
		return err
	}
	if err := checkList("protected branch pattern", p.Protected, checkProtected); err != nil {
		return err
	}
	if err := checkList("secret", p.Secrets, checkSecretName); err != nil {
		return err
	}
	if err := checkList("label", p.Labels, checkLabel); err != nil {
		return err
	}
	return p.Forge.validate()
}

func (f ProjectForge) validate() error {
	if f.Kind == "" {
		if f != (ProjectForge{KeepSuperseded: f.KeepSuperseded}) {
			return invalidProject("forge settings need a forge kind (one of %s)", strings.Join(ForgeKinds, ", "))
		}
		return nil
	}
	if !slices.Contains(ForgeKinds, f.Kind) {
		return invalidProject("forge %q: use one of %s", f.Kind, strings.Join(ForgeKinds, ", "))
	}
	if f.APIURL == "" && f.Kind != "github" {
		return invalidProject("forge %s needs its API URL (such as https://host/api/v4 for GitLab, https://host/api/v1 for Gitea)", f.Kind)
	}
	if f.APIURL != "" {
		u, err := url.Parse(f.APIURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return invalidProject("forge API URL %q: use an http or https URL with a host and no credentials, query or fragment", f.APIURL)
		}
	}
	switch {
	case f.Repo == "":
		return invalidProject("forge repository is required: owner/name (a GitLab project's path with its namespace)")
	case strings.IndexFunc(f.Repo, isSpaceOrControl) >= 0 || strings.HasPrefix(f.Repo, "/") || strings.HasSuffix(f.Repo, "/") ||
		strings.Contains(f.Repo, "..") || strings.Contains(f.Repo, "//") || !strings.Contains(f.Repo, "/"):
		return invalidProject("forge repository %q: use owner/name (a GitLab project's path with its namespace)", f.Repo)
	case f.Kind != "gitlab" && strings.Count(f.Repo, "/") != 1:
		return invalidProject("forge repository %q: use owner/name", f.Repo)
	}
	if f.TokenSecret != "" {
		if problem := checkSecretName(f.TokenSecret); problem != "" {
			return invalidProject("forge token secret %q: %s", f.TokenSecret, problem)
		}
	}
	return nil
}

func invalidProject(format string, args ...any) error {
	return E(KindInvalid, "project", format, args...)
}

func checkRepoURL(u string) error {
	switch {
	case u == "":
		return invalidProject("repository URL is required: a clone URL or an absolute local path")
	case strings.HasPrefix(u, "-"):
		// git would read it as an option.
		return invalidProject("repository URL %q: must not start with '-'", u)
	case strings.IndexFunc(u, isSpaceOrControl) >= 0:
		return invalidProject("repository URL %q: must not contain whitespace or control characters", u)
	}
	return nil
}

func checkBranch(b string) error {
	var problem string
	switch {
	case b == "":
		problem = "is required"
	case strings.HasPrefix(b, "-"):
		problem = "must not start with '-'"
	case strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/"):
		problem = "must not start or end with '/'"
	case strings.Contains(b, ".."):
		problem = "must not contain '..'"
	case strings.IndexFunc(b, isSpaceOrControl) >= 0:
		problem = "must not contain whitespace or control characters"
	case strings.ContainsAny(b, `:~^?*[\`):
		problem = `must not contain any of : ~ ^ ? * [ \`
	default:
		return nil
	}
	return invalidProject("default branch %q: %s", b, problem)
}

func checkProtected(g string) string {
	if !doublestar.ValidatePattern(g) {
		return "is not a valid glob"
	}
	return ""
}

func checkSecretName(s string) string {
	if !secretNamePattern.MatchString(s) {
		return "use letters, digits and '_', not starting with a digit"
	}
	return ""
}

func checkLabel(l string) string {
	if strings.IndexFunc(l, func(r rune) bool { return r == ',' || isSpaceOrControl(r) }) >= 0 {
		return "must not contain commas, whitespace or control characters"
	}
	return ""
}

// checkList refuses empty and repeated entries, and entries check finds a
// problem with.
func checkList(what string, list []string, check func(string) string) error {
	seen := make(map[string]bool, len(list))
	for _, v := range list {
		if v == "" {
			return invalidProject("%s %q: must not be empty", what, v)
		}
		if seen[v] {
			return invalidProject("%s %q: is listed twice", what, v)
		}
		seen[v] = true
		if problem := check(v); problem != "" {
			return invalidProject("%s %q: %s", what, v, problem)
		}
	}
	return nil
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
