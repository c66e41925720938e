package forge_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/forge"
)

const (
	goodSHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	oldSHA  = "95790bf891e76fee5e1747ab589903a6a1f80f22"
)

// hostileForge says, for one forge, how a push and a pull request look,
// so that each attack is tried on every forge.
type hostileForge struct {
	kind    forge.Kind
	headers func(event string) http.Header
	push    func(ref, before, after string) []byte
	// pull makes a run-making pull request delivery.
	pull func(number int, head, base, sha string) []byte
	// pushEvent and pullEvent are the forge's event names.
	pushEvent, pullEvent string
}

var hostileForges = []hostileForge{
	{
		kind: forge.GitHub,
		headers: func(event string) http.Header {
			return hookHeaders("X-GitHub-Event", event, "X-GitHub-Delivery", "d-1")
		},
		push: func(ref, before, after string) []byte {
			return fmt.Appendf(nil, `{"ref":%s,"before":%s,"after":%s,"repository":{"full_name":"o/r"},"sender":{"login":"m"}}`, js(ref), js(before), js(after))
		},
		pull: func(n int, head, base, sha string) []byte {
			return fmt.Appendf(nil, `{"action":"opened","number":%d,"pull_request":{"head":{"ref":%s,"sha":%s,"repo":{"id":1}},"base":{"ref":%s,"repo":{"id":1}}},"repository":{"full_name":"o/r"}}`, n, js(head), js(sha), js(base))
		},
		pushEvent: "push", pullEvent: "pull_request",
	},
	{
		kind: forge.GitLab,
		headers: func(event string) http.Header {
			return hookHeaders("X-Gitlab-Event", event, "X-Gitlab-Event-UUID", "d-1")
		},
		push: func(ref, before, after string) []byte {
			return fmt.Appendf(nil, `{"object_kind":"push","ref":%s,"before":%s,"after":%s,"checkout_sha":%s,"project":{"path_with_namespace":"o/r"}}`, js(ref), js(before), js(after), js(after))
		},
		pull: func(n int, head, base, sha string) []byte {
			return fmt.Appendf(nil, `{"object_kind":"merge_request","project":{"path_with_namespace":"o/r"},"object_attributes":{"iid":%d,"action":"open","source_branch":%s,"target_branch":%s,"source_project_id":1,"target_project_id":1,"last_commit":{"id":%s}}}`, n, js(head), js(base), js(sha))
		},
		pushEvent: "Push Hook", pullEvent: "Merge Request Hook",
	},
	{
		kind: forge.Gitea,
		headers: func(event string) http.Header {
			return hookHeaders("X-Gitea-Event", event, "X-Gitea-Delivery", "d-1")
		},
		push: func(ref, before, after string) []byte {
			return fmt.Appendf(nil, `{"ref":%s,"before":%s,"after":%s,"repository":{"full_name":"o/r"}}`, js(ref), js(before), js(after))
		},
		pull: func(n int, head, base, sha string) []byte {
			return fmt.Appendf(nil, `{"action":"opened","number":%d,"pull_request":{"head":{"ref":%s,"sha":%s,"repo_id":1},"base":{"ref":%s,"repo_id":1}},"repository":{"full_name":"o/r"}}`, n, js(head), js(sha), js(base))
		},
		pushEvent: "push", pullEvent: "pull_request",
	},
	{
		kind: forge.Forgejo,
		headers: func(event string) http.Header {
			return hookHeaders("X-Forgejo-Event", event, "X-Forgejo-Delivery", "d-1")
		},
		push: func(ref, before, after string) []byte {
			return fmt.Appendf(nil, `{"ref":%s,"before":%s,"after":%s,"repository":{"full_name":"o/r"}}`, js(ref), js(before), js(after))
		},
		pull: func(n int, head, base, sha string) []byte {
			return fmt.Appendf(nil, `{"action":"opened","number":%d,"pull_request":{"head":{"ref":%s,"sha":%s,"repo_id":1},"base":{"ref":%s,"repo_id":1}},"repository":{"full_name":"o/r"}}`, n, js(head), js(sha), js(base))
		},
		pushEvent: "push", pullEvent: "pull_request",
	},
}

// js is s as a JSON string: hostile values hold bytes Go's %q would
// write in a way JSON does not read.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// mustRefuse fails unless Read refused the delivery with an ErrDelivery
// whose message holds want.
func mustRefuse(t *testing.T, ev forge.Event, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Read accepted a hostile delivery: %+v", ev)
	}
	if !errors.Is(err, forge.ErrDelivery) {
		t.Errorf("error %q does not match ErrDelivery", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestHostileRefIsRefused(t *testing.T) {
	t.Parallel()
	refs := map[string]string{
		"--upload-pack=x":                        "is not refs/heads/<branch>",
		"refs/heads/--upload-pack=touch p":       "begins with '-'",
		"refs/heads/-b":                          "begins with '-'",
		"refs/heads/a..b":                        `holds ".."`,
		"refs/heads/../../etc/passwd":            `holds ".."`,
		"refs/heads/main evil":                   "space or a control character",
		"refs/heads/main\nrefs/heads/x":          "space or a control character",
		"refs/heads/tab\there":                   "space or a control character",
		"refs/heads/nul\x00":                     "space or a control character",
		"refs/heads/":                            "empty",
		"refs/heads/a//b":                        `"//"`,
		"refs/heads/.hidden":                     "begins with '.'",
		"refs/heads/x.lock":                      `".lock"`,
		"refs/heads/x@{1}":                       `"@{"`,
		"refs/heads/a:b":                         "one of ~ ^ : ? * [ \\",
		"refs/heads/a\\b":                        "one of ~ ^ : ? * [ \\",
		"refs/heads/" + strings.Repeat("a", 300): "longer than 255",
		"refs/remotes/origin/main":               "is not refs/heads/<branch>",
		"main":                                   "is not refs/heads/<branch>",
	}
	for _, f := range hostileForges {
		for ref, why := range refs {
			t.Run(string(f.kind)+"/"+ref, func(t *testing.T) {
				t.Parallel()
				ev, err := forge.Read(f.kind, f.headers(f.pushEvent), f.push(ref, oldSHA, goodSHA))
				mustRefuse(t, ev, err, why)
				if err != nil && !strings.HasPrefix(err.Error(), "push delivery: ") {
					t.Errorf("error %q does not begin with the delivery it is about", err)
				}
			})
		}
	}
}

func TestNonHexCommitIsRefused(t *testing.T) {
	t.Parallel()
	bad := []string{
		"xyz",
		"",
		strings.ToUpper(goodSHA),
		goodSHA[:39],
		goodSHA + "0",
		"--upload-pack=x" + goodSHA[15:],
		"g" + goodSHA[1:],
		goodSHA[:20] + " " + goodSHA[21:],
		goodSHA + goodSHA[:23] + "Z",
	}
	for _, f := range hostileForges {
		for _, after := range bad {
			t.Run(string(f.kind)+"/push/"+after, func(t *testing.T) {
				t.Parallel()
				ev, err := forge.Read(f.kind, f.headers(f.pushEvent), f.push("refs/heads/main", oldSHA, after))
				mustRefuse(t, ev, err, fmt.Sprintf("push delivery: after is not a commit id: %q", after))
			})
			t.Run(string(f.kind)+"/pull/"+after, func(t *testing.T) {
				t.Parallel()
				ev, err := forge.Read(f.kind, f.headers(f.pullEvent), f.pull(5, "feature", "main", after))
				mustRefuse(t, ev, err, fmt.Sprintf("head is not a commit id: %q", after))
			})
		}
		t.Run(string(f.kind)+"/push/before", func(t *testing.T) {
			t.Parallel()
			ev, err := forge.Read(f.kind, f.headers(f.pushEvent), f.push("refs/heads/main", "HEAD~1", goodSHA))
			mustRefuse(t, ev, err, `push delivery: before is not a commit id: "HEAD~1"`)
		})
		t.Run(string(f.kind)+"/SHA256", func(t *testing.T) {
			t.Parallel()
			long := goodSHA + goodSHA[:24]
			ev, err := forge.Read(f.kind, f.headers(f.pushEvent), f.push("refs/heads/main", strings.Repeat("0", 64), long))
			if err != nil || ev.Commit != long {
				t.Errorf("a SHA-256 repository's push: %+v, %v", ev, err)
			}
		})
	}
}

func TestHostilePullRequestIsRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, head, base string
		number           int
		why              string
	}{
		{"OptionHead", "--upload-pack=x", "main", 5, "source branch \"--upload-pack=x\": the branch name begins with '-'"},
		{"OptionBase", "feature", "-c core.sshCommand=x", 5, "target branch"},
		{"EmptyHead", "", "main", 5, "source branch \"\": the branch name is empty"},
		{"DotsHead", "a/../b", "main", 5, `holds ".."`},
		{"NewlineHead", "x\ny", "main", 5, "space or a control character"},
		{"TabBase", "feature", "main\t", 5, "space or a control character"},
		{"NoNumber", "feature", "main", 0, "number 0 is not a"},
		{"NegativeNumber", "feature", "main", -3, "number -3 is not a"},
	}
	for _, f := range hostileForges {
		for _, c := range cases {
			t.Run(string(f.kind)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				ev, err := forge.Read(f.kind, f.headers(f.pullEvent), f.pull(c.number, c.head, c.base, goodSHA))
				mustRefuse(t, ev, err, c.why)
			})
		}
		t.Run(string(f.kind)+"/Good", func(t *testing.T) {
			t.Parallel()
			ev, err := forge.Read(f.kind, f.headers(f.pullEvent), f.pull(5, "feature/x-1", "main", goodSHA))
			if err != nil || ev.Branch != "feature/x-1" || ev.Target != "main" || ev.Commit != goodSHA || ev.Number != 5 {
				t.Errorf("Read = %+v, %v", ev, err)
			}
		})
	}
}

func TestMalformedBodyIsRefused(t *testing.T) {
	t.Parallel()
	for _, f := range hostileForges {
		whole := f.push("refs/heads/main", oldSHA, goodSHA)
		bodies := map[string]struct {
			body []byte
			why  string
		}{
			"Truncated":    {whole[:len(whole)/2], "the body is not JSON"},
			"Empty":        {nil, "the body is not JSON"},
			"Array":        {[]byte(`[1,2]`), "the body is a JSON array, not an object"},
			"Null":         {[]byte(`null`), "push delivery: no ref"},
			"FormEncoded":  {[]byte(`payload=%7B%22ref%22%3A%22x%22%7D`), "form-encoded"},
			"RefIsNumber":  {[]byte(`{"ref":5}`), "ref is a JSON number where string was expected"},
			"TrailingJunk": {append(append([]byte{}, whole...), '}'), "the body is not JSON"},
			// Nesting deeper than encoding/json bears must come back as
			// an error, not as a crash.
			"DeepNesting": {[]byte(`{"ref":"refs/heads/main","x":` + strings.Repeat("[", 1<<20) + strings.Repeat("]", 1<<20) + `}`), "the body is not JSON"},
		}
		for name, c := range bodies {
			t.Run(string(f.kind)+"/"+name, func(t *testing.T) {
				t.Parallel()
				ev, err := forge.Read(f.kind, f.headers(f.pushEvent), c.body)
				mustRefuse(t, ev, err, c.why)
			})
		}
	}
}

func TestMissingHeadersAreRefused(t *testing.T) {
	t.Parallel()
	body := []byte(`{}`)
	cases := []struct {
		kind forge.Kind
		h    http.Header
		why  string
	}{
		{forge.GitHub, hookHeaders("X-GitHub-Event", "push"), "no X-GitHub-Delivery header"},
		{forge.GitHub, hookHeaders("X-GitHub-Delivery", "d-1"), "no X-GitHub-Event header"},
		{forge.GitHub, hookHeaders("X-GitHub-Event", "push", "X-GitHub-Delivery", "d-1\r\nX-Evil: 1"), "is not a delivery id"},
		{forge.GitHub, hookHeaders("X-GitHub-Event", "push", "X-GitHub-Delivery", strings.Repeat("d", 200)), "is not a delivery id"},
		{forge.GitHub, hookHeaders("X-GitHub-Event", "push\x00", "X-GitHub-Delivery", "d-1"), "is not an event name"},
		{forge.GitLab, hookHeaders("X-Gitlab-Event", "Push Hook", "X-Gitlab-Webhook-UUID", "hook-1"), "no Idempotency-Key or X-Gitlab-Event-UUID header"},
		{forge.GitLab, hookHeaders("X-Gitlab-Event-UUID", "d-1"), "no X-Gitlab-Event header"},
		{forge.Gitea, hookHeaders("X-Gitea-Event", "push"), "no X-Gitea-Delivery or X-Forgejo-Delivery header"},
		{forge.Forgejo, hookHeaders("X-Forgejo-Event", "push"), "no X-Forgejo-Delivery or X-Gitea-Delivery header"},
		{forge.Gitea, hookHeaders("X-Gitea-Delivery", "d-1", "X-GitHub-Event", "push"), "no X-Gitea-Event or X-Forgejo-Event header"},
		{"bitbucket", hookHeaders(), `unknown forge "bitbucket"`},
	}
	for _, c := range cases {
		ev, err := forge.Read(c.kind, c.h, body)
		t.Run(string(c.kind)+"/"+c.why, func(t *testing.T) { mustRefuse(t, ev, err, c.why) })
	}
}

// An error quotes what was wrong, but never the whole of a large value.
func TestErrorsQuoteAtMostAFewBytes(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("x", 1<<20)
	_, err := forge.Read(forge.GitHub, hostileForges[0].headers("push"), hostileForges[0].push("refs/heads/main", oldSHA, huge))
	if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "(1048576 bytes)") {
		t.Errorf("error = %.300q", err)
	}
}

// Names the forge fills in are shown and logged: a delivery whose
// repository or sender could forge a log line is refused whatever its
// event.
func TestHostileNamesAreRefused(t *testing.T) {
	t.Parallel()
	bodies := map[string]struct {
		event string
		body  string
		why   string
	}{
		"Repo":              {"push", `{"ref":"refs/heads/main","before":"` + oldSHA + `","after":"` + goodSHA + `","repository":{"full_name":"o/r\nlevel=error msg=forged"}}`, `repository name "o/r\nlevel=error msg=forged" is not owner/name`},
		"Sender":            {"push", `{"ref":"refs/heads/main","before":"` + oldSHA + `","after":"` + goodSHA + `","repository":{"full_name":"o/r"},"sender":{"login":"m\u001b[31m"}}`, `sender "m\x1b[31m" is not a user name`},
		"PingRepo":          {"ping", `{"repository":{"full_name":"o r"}}`, `repository name "o r"`},
		"IgnoredPullSender": {"pull_request", `{"action":"closed","number":1,"sender":{"login":"a\u0000b"}}`, "is not a user name"},
		"NoRepo":            {"push", `{"ref":"refs/heads/main","before":"` + oldSHA + `","after":"` + goodSHA + `"}`, "push delivery: no repository name"},
	}
	for name, c := range bodies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev, err := forge.Read(forge.GitHub, hostileForges[0].headers(c.event), []byte(c.body))
			mustRefuse(t, ev, err, c.why)
		})
	}
}

// GitLab's tag hook is a tag push whatever ref its body names.
func TestGitLabTagHookNeverRuns(t *testing.T) {
	t.Parallel()
	body := hostileForges[1].push("refs/heads/main", oldSHA, goodSHA)
	ev, err := forge.Read(forge.GitLab, hostileForges[1].headers("Tag Push Hook"), body)
	if err != nil || ev.Ignore == "" || ev.Commit != "" {
		t.Errorf("Read = %+v, %v; want an ignored tag push", ev, err)
	}
}
