package forge_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/forge"
	"github.com/google/go-cmp/cmp"
)

// gitlabHeaders are the headers GitLab documents for a delivery of event.
func gitlabHeaders(event string) http.Header {
	return hookHeaders(
		"X-Gitlab-Event", event,
		"X-Gitlab-Token", hookSecret,
		"X-Gitlab-Instance", "https://gitlab.example.com",
		"X-Gitlab-Webhook-UUID", "02affd2d-2cba-4033-917d-ec22d5dc4b38",
		"X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e",
		"Idempotency-Key", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
		"User-Agent", "GitLab/17.4.0",
	)
}

func readGitLab(t *testing.T, h http.Header, body []byte) (forge.Event, error) {
	t.Helper()
	if err := forge.Verify(forge.GitLab, hookSecret, h, body); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return forge.Read(forge.GitLab, h, body)
}

func TestGitLabPushExample(t *testing.T) {
	t.Parallel()
	body := hookFixture(t, "gitlab", "push.json")
	j := hookJSON(t, body)
	got, err := readGitLab(t, gitlabHeaders("Push Hook"), body)
	if err != nil {
		t.Fatal(err)
	}
	// The head commit's message is that of the commit whose id is
	// checkout_sha, whichever place it has among the commits.
	var message string
	for _, c := range jsonAt(j, "commits").([]any) {
		if jsonString(t, c, "id") == jsonString(t, j, "checkout_sha") {
			message = jsonString(t, c, "message")
		}
	}
	ref := jsonString(t, j, "ref")
	want := forge.Event{
		Delivery: "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
		Type:     forge.EventPush,
		Ref:      ref,
		Branch:   strings.TrimPrefix(ref, "refs/heads/"),
		Before:   jsonString(t, j, "before"),
		Commit:   jsonString(t, j, "after"),
		Message:  message,
		Repo:     jsonString(t, j, "project", "path_with_namespace"),
		Sender:   jsonString(t, j, "user_username"),
	}
	if message == "" {
		t.Fatal("the example's commits hold no head commit")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Read (-want +got):\n%s", diff)
	}
}

func TestGitLabMergeRequestExamples(t *testing.T) {
	t.Parallel()
	runs := []string{"merge_request.open.json", "merge_request.update-code.json"}
	for _, file := range runs {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			body := hookFixture(t, "gitlab", file)
			j := hookJSON(t, body)
			got, err := readGitLab(t, gitlabHeaders("Merge Request Hook"), body)
			if err != nil {
				t.Fatal(err)
			}
			iid := jsonInt(t, j, "object_attributes", "iid")
			want := forge.Event{
				Delivery: "f5e5f430-f57b-4e6e-9fac-d9128cd7232f",
				Type:     forge.EventPullRequest,
				Ref:      fmt.Sprintf("refs/merge-requests/%d/head", iid),
				Branch:   jsonString(t, j, "object_attributes", "source_branch"),
				Target:   jsonString(t, j, "object_attributes", "target_branch"),
				Commit:   jsonString(t, j, "object_attributes", "last_commit", "id"),
				Message:  jsonString(t, j, "object_attributes", "last_commit", "message"),
				Number:   iid,
				Action:   jsonString(t, j, "object_attributes", "action"),
				Fork:     jsonInt(t, j, "object_attributes", "source_project_id") != jsonInt(t, j, "object_attributes", "target_project_id"),
				Repo:     jsonString(t, j, "project", "path_with_namespace"),
				Sender:   jsonString(t, j, "user", "username"),
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
	}
	ignored := map[string]string{
		"merge_request.update-title.json": "did not change its code",
		"merge_request.close.json":        `merge request action "close" is not one`,
	}
	for file, why := range ignored {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			got, err := readGitLab(t, gitlabHeaders("Merge Request Hook"), hookFixture(t, "gitlab", file))
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != forge.EventPullRequest || !strings.Contains(got.Ignore, why) || got.Number != 1 {
				t.Errorf("Read = %+v; want an ignored merge request saying %q", got, why)
			}
		})
	}
	t.Run("Fork", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, hookFixture(t, "gitlab", "merge_request.open.json"), func(m map[string]any) {
			jsonAt(m, "object_attributes").(map[string]any)["source_project_id"] = 99.0
		})
		got, err := readGitLab(t, gitlabHeaders("Merge Request Hook"), body)
		if err != nil || !got.Fork {
			t.Errorf("Read = %+v, %v; want a merge request from a fork", got, err)
		}
	})
	t.Run("SkipCI", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, hookFixture(t, "gitlab", "merge_request.open.json"), func(m map[string]any) {
			jsonAt(m, "object_attributes", "last_commit").(map[string]any)["message"] = "wip [ci skip]"
		})
		got, err := readGitLab(t, gitlabHeaders("Merge Request Hook"), body)
		if err != nil || !strings.Contains(got.Ignore, "skip CI") {
			t.Errorf("Read = %+v, %v; want an ignored merge request", got, err)
		}
	})
}

func TestGitLabTagPushExample(t *testing.T) {
	t.Parallel()
	got, err := readGitLab(t, gitlabHeaders("Tag Push Hook"), hookFixture(t, "gitlab", "tag_push.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != forge.EventPush || !strings.Contains(got.Ignore, "tag") || got.Repo != "jsmith/example" {
		t.Errorf("Read = %+v; want an ignored tag push", got)
	}
}

func TestGitLabPushEdited(t *testing.T) {
	t.Parallel()
	push := hookFixture(t, "gitlab", "push.json")
	t.Run("BranchDeletion", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, push, func(m map[string]any) {
			m["before"], m["after"], m["checkout_sha"] = m["after"], strings.Repeat("0", 40), nil
			m["commits"] = []any{}
		})
		got, err := readGitLab(t, gitlabHeaders("Push Hook"), body)
		if err != nil || got.Ignore != "a branch deletion" {
			t.Errorf("Read = %+v, %v; want an ignored branch deletion", got, err)
		}
	})
	t.Run("SkipCIOnHead", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, push, func(m map[string]any) {
			m["commits"].([]any)[1].(map[string]any)["message"] = "fixed readme [Skip CI]"
		})
		got, err := readGitLab(t, gitlabHeaders("Push Hook"), body)
		if err != nil || !strings.Contains(got.Ignore, "skip CI") {
			t.Errorf("Read = %+v, %v; want an ignored push", got, err)
		}
	})
	t.Run("SkipCIOnAnOlderCommitRuns", func(t *testing.T) {
		t.Parallel()
		body := hookEdit(t, push, func(m map[string]any) {
			m["commits"].([]any)[0].(map[string]any)["message"] = "wip [skip ci]"
		})
		got, err := readGitLab(t, gitlabHeaders("Push Hook"), body)
		if err != nil || got.Ignore != "" || got.Message != "fixed readme" {
			t.Errorf("Read = %+v, %v; want a run of the head commit", got, err)
		}
	})
	t.Run("HeadNotListed", func(t *testing.T) {
		t.Parallel()
		// A branch made without new commits lists none.
		body := hookEdit(t, push, func(m map[string]any) { m["commits"] = []any{} })
		got, err := readGitLab(t, gitlabHeaders("Push Hook"), body)
		if err != nil || got.Ignore != "" || got.Message != "" || got.Commit == "" {
			t.Errorf("Read = %+v, %v; want a run with no message", got, err)
		}
	})
}

// X-Gitlab-Webhook-UUID names the hook, not the delivery: taking it for
// the delivery id would make every later delivery look like a replay.
func TestGitLabDeliveryIDIsNotTheHookID(t *testing.T) {
	t.Parallel()
	body := hookFixture(t, "gitlab", "push.json")

	h := gitlabHeaders("Push Hook")
	h.Del("Idempotency-Key")
	got, err := forge.Read(forge.GitLab, h, body)
	if err != nil || got.Delivery != "13792a34-cac6-4fda-95a8-c58e00a3954e" {
		t.Errorf("before GitLab 17.4: Read = %q, %v; want the X-Gitlab-Event-UUID", got.Delivery, err)
	}

	h.Del("X-Gitlab-Event-UUID")
	_, err = forge.Read(forge.GitLab, h, body)
	if err == nil || !strings.Contains(err.Error(), "no Idempotency-Key or X-Gitlab-Event-UUID header") {
		t.Errorf("with only X-Gitlab-Webhook-UUID: Read error = %v", err)
	}
}

func TestGitLabOtherEvents(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"Issue Hook", "Pipeline Hook", "System Hook"} {
		got, err := forge.Read(forge.GitLab, gitlabHeaders(name), []byte(`{"object_kind":"x"}`))
		if err != nil || got.Type != name || !strings.Contains(got.Ignore, "is not one Delta CI runs for") {
			t.Errorf("%s: Read = %+v, %v", name, got, err)
		}
	}
}
