package forge_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/forge"
	"github.com/google/go-cmp/cmp"
)

// readGitHub signs body as GitHub does, and runs it through Verify and
// Read.
func readGitHub(t *testing.T, event string, body []byte) (forge.Event, error) {
	t.Helper()
	h := hookHeaders(
		"X-GitHub-Event", event,
		"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"X-Hub-Signature-256", "sha256="+hookMAC(hookSecret, body),
		"Content-Type", "application/json",
	)
	if err := forge.Verify(forge.GitHub, hookSecret, h, body); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return forge.Read(forge.GitHub, h, body)
}

// githubPullEvent is the Event a pull request example should read as,
// with its values taken from the payload itself.
func githubPullEvent(t *testing.T, j map[string]any) forge.Event {
	t.Helper()
	n := jsonInt(t, j, "number")
	return forge.Event{
		Delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		Type:     forge.EventPullRequest,
		Ref:      fmt.Sprintf("refs/pull/%d/head", n),
		Branch:   jsonString(t, j, "pull_request", "head", "ref"),
		Target:   jsonString(t, j, "pull_request", "base", "ref"),
		Commit:   jsonString(t, j, "pull_request", "head", "sha"),
		Number:   n,
		Action:   jsonString(t, j, "action"),
		Fork:     jsonInt(t, j, "pull_request", "head", "repo", "id") != jsonInt(t, j, "pull_request", "base", "repo", "id"),
		Repo:     jsonString(t, j, "repository", "full_name"),
		Sender:   jsonString(t, j, "sender", "login"),
	}
}

func TestGitHubExamplesThatRun(t *testing.T) {
	t.Parallel()
	t.Run("PushBranchCreated", func(t *testing.T) {
		t.Parallel()
		body := hookFixture(t, "github-webhooks", "push.branch-created.json")
		j := hookJSON(t, body)
		got, err := readGitHub(t, "push", body)
		if err != nil {
			t.Fatal(err)
		}
		ref := jsonString(t, j, "ref")
		want := forge.Event{
			Delivery: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			Type:     forge.EventPush,
			Ref:      ref,
			Branch:   strings.TrimPrefix(ref, "refs/heads/"),
			Before:   jsonString(t, j, "before"),
			Commit:   jsonString(t, j, "after"),
			Message:  jsonString(t, j, "head_commit", "message"),
			Repo:     jsonString(t, j, "repository", "full_name"),
			Sender:   jsonString(t, j, "sender", "login"),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Read (-want +got):\n%s", diff)
		}
	})
	for _, action := range []string{"opened", "synchronize", "reopened"} {
		t.Run("PullRequest/"+action, func(t *testing.T) {
			t.Parallel()
			body := hookFixture(t, "github-webhooks", "pull_request."+action+".json")
			got, err := readGitHub(t, "pull_request", body)
			if err != nil {
				t.Fatal(err)
			}
			want := githubPullEvent(t, hookJSON(t, body))
			if want.Action != action {
				t.Fatalf("the example's action is %q", want.Action)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGitHubExamplesThatMakeNoRun(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file, event string
		typ, ignore string
		repo        string
	}{
		{"push.tag-created.json", "push", forge.EventPush, "tag", "Codertocat/Hello-World"},
		{"push.tag-deleted.json", "push", forge.EventPush, "tag", "Codertocat/Hello-World"},
		{"pull_request.closed.json", "pull_request", forge.EventPullRequest, `action "closed" is not one`, "Codertocat/Hello-World"},
		{"pull_request.labeled.json", "pull_request", forge.EventPullRequest, `action "labeled" is not one`, "Codertocat/Hello-World"},
		{"ping.json", "ping", forge.EventPing, "ping", "Octocoders/Hello-World"},
		{"ping.organization.json", "ping", forge.EventPing, "ping", ""},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			got, err := readGitHub(t, c.event, hookFixture(t, "github-webhooks", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != c.typ || !strings.Contains(got.Ignore, c.ignore) || got.Repo != c.repo {
				t.Errorf("Read = Type %q, Ignore %q, Repo %q; want %q, one with %q, %q", got.Type, got.Ignore, got.Repo, c.typ, c.ignore, c.repo)
			}
			if got.Commit != "" || got.Branch != "" || got.Ref != "" {
				t.Errorf("an ignored delivery carries a run's ref: %+v", got)
			}
		})
	}
}

// The examples have no branch deletion, no "[skip ci]" and no pull request
// from a fork: these cases change the named fields of an example.
func TestGitHubExamplesEdited(t *testing.T) {
	t.Parallel()
	push := hookFixture(t, "github-webhooks", "push.branch-created.json")
	pr := hookFixture(t, "github-webhooks", "pull_request.opened.json")

	t.Run("BranchDeletion", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, push, func(m map[string]any) {
			m["before"], m["after"] = m["after"], strings.Repeat("0", 40)
			m["created"], m["deleted"] = false, true
			m["head_commit"], m["commits"] = nil, []any{}
		})
		got, err := readGitHub(t, "push", body)
		if err != nil || got.Type != forge.EventPush || got.Ignore != "a branch deletion" {
			t.Errorf("Read = %+v, %v; want an ignored branch deletion", got, err)
		}
	})
	t.Run("DeletedFlagAlone", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, push, func(m map[string]any) { m["deleted"] = true })
		got, err := readGitHub(t, "push", body)
		if err != nil || got.Ignore != "a branch deletion" {
			t.Errorf("Read = %+v, %v; want an ignored branch deletion", got, err)
		}
	})
	for _, msg := range []string{"fix typo [skip ci]", "[CI SKIP] docs", "Docs\n\n[Skip CI]"} {
		t.Run("SkipCI/"+msg, func(t *testing.T) {
			t.Parallel()
			body := hookEdit(t, push, func(m map[string]any) {
				m["head_commit"].(map[string]any)["message"] = msg
			})
			got, err := readGitHub(t, "push", body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.Ignore, "skip CI") || got.Message != msg || got.Commit == "" {
				t.Errorf("Read = %+v; want an ignored push that still names its commit", got)
			}
		})
	}
	t.Run("SkipCIElsewhereRuns", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, push, func(m map[string]any) {
			m["head_commit"].(map[string]any)["message"] = "skip ci next time"
		})
		got, err := readGitHub(t, "push", body)
		if err != nil || got.Ignore != "" {
			t.Errorf("Read = %+v, %v; want a run", got, err)
		}
	})
	t.Run("ForkPullRequest", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, pr, func(m map[string]any) {
			head := jsonAt(m, "pull_request", "head", "repo").(map[string]any)
			head["id"], head["full_name"] = 4242.0, "mallory/Hello-World"
		})
		got, err := readGitHub(t, "pull_request", body)
		if err != nil || !got.Fork {
			t.Errorf("Read = %+v, %v; want a pull request from a fork", got, err)
		}
	})
	t.Run("DeletedForkPullRequest", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, pr, func(m map[string]any) {
			jsonAt(m, "pull_request", "head").(map[string]any)["repo"] = nil
		})
		got, err := readGitHub(t, "pull_request", body)
		if err != nil || !got.Fork {
			t.Errorf("Read = %+v, %v; want a pull request from a fork", got, err)
		}
	})
	t.Run("OtherEvent", func(t *testing.T) {
		t.Parallel()
		got, err := readGitHub(t, "issues", []byte(`{"action":"opened"}`))
		if err != nil || got.Type != "issues" || got.Ignore != `event "issues" is not one Delta CI runs for` {
			t.Errorf("Read = %+v, %v", got, err)
		}
	})
}
