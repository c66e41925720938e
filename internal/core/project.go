package core

import (
	"regexp"
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
	Labels    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

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
	return checkList("label", p.Labels, checkLabel)
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
