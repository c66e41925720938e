package forge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/forge"
	"github.com/google/go-cmp/cmp"
)

// Payloads shaped by Gitea's documented webhook structs (PushPayload,
// PullRequestPayload and PRBranchInfo in Gitea's modules/structs), with
// the fields a receiver sees and the repository objects cut to their
// names. Recorded deliveries, when testdata/gitea holds them, are read by
// TestGiteaRecordedDeliveries.
const (
	giteaHead   = "b2f5c1d8e4a7f09c3d6e8b1a4c7f0e3d6b9a2c5f"
	giteaBefore = "1c2a3b4d5e6f708192a3b4c5d6e7f8091a2b3c4d"
	giteaBase   = "7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f"
)

func giteaPush(ref, before, after, message string) []byte {
	return fmt.Appendf(nil, `{
  "ref": %q,
  "before": %q,
  "after": %q,
  "compare_url": "https://gitea.example.com/alice/demo/compare/%s...%s",
  "commits": [
    {
      "id": %q,
      "message": %q,
      "url": "https://gitea.example.com/alice/demo/commit/%s",
      "author": {"name": "Alice", "email": "alice@example.com", "username": "alice"},
      "committer": {"name": "Alice", "email": "alice@example.com", "username": "alice"},
      "verification": null,
      "timestamp": "2024-05-01T10:00:00Z",
      "added": [], "removed": [], "modified": ["README.md"]
    }
  ],
  "total_commits": 1,
  "head_commit": {
    "id": %q,
    "message": %q,
    "url": "https://gitea.example.com/alice/demo/commit/%s",
    "author": {"name": "Alice", "email": "alice@example.com", "username": "alice"},
    "committer": {"name": "Alice", "email": "alice@example.com", "username": "alice"},
    "verification": null,
    "timestamp": "2024-05-01T10:00:00Z",
    "added": [], "removed": [], "modified": ["README.md"]
  },
  "repository": {"id": 1, "name": "demo", "full_name": "alice/demo", "default_branch": "main"},
  "pusher": {"id": 1, "login": "alice", "username": "alice"},
  "sender": {"id": 1, "login": "alice", "username": "alice"}
}`, ref, before, after, before, after, after, message, after, after, message, after)
}

func giteaPull(action string, number int, headRef, headSHA string, headRepoID int64) []byte {
	return fmt.Appendf(nil, `{
  "action": %q,
  "number": %d,
  "pull_request": {
    "id": 7,
    "url": "https://gitea.example.com/alice/demo/pulls/%d",
    "number": %d,
    "user": {"id": 2, "login": "bob", "username": "bob"},
    "title": "Faster builds",
    "body": "",
    "state": "open",
    "head": {"label": %q, "ref": %q, "sha": %q, "repo_id": %d, "repo": {"id": %d, "full_name": "bob/demo"}},
    "base": {"label": "main", "ref": "main", "sha": %q, "repo_id": 1, "repo": {"id": 1, "full_name": "alice/demo"}},
    "merge_base": %q,
    "merged": false
  },
  "requested_reviewer": null,
  "repository": {"id": 1, "name": "demo", "full_name": "alice/demo", "default_branch": "main"},
  "sender": {"id": 2, "login": "bob", "username": "bob"},
  "commit_id": "",
  "review": null
}`, action, number, number, number, headRef, headRef, headSHA, headRepoID, headRepoID, giteaBase, giteaBase)
}

// giteaHeaders are the headers Gitea sends (Forgejo adds X-Forgejo-*).
func giteaHeaders(k forge.Kind, event, eventType string, body []byte) http.Header {
	sig := hookMAC(hookSecret, body)
	h := hookHeaders(
		"X-Gitea-Delivery", "2f6a8b3c-1d4e-4f5a-9b6c-7d8e9f0a1b2c",
		"X-Gitea-Event", event,
		"X-Gitea-Event-Type", eventType,
		"X-Gitea-Signature", sig,
		"X-Gogs-Delivery", "2f6a8b3c-1d4e-4f5a-9b6c-7d8e9f0a1b2c",
		"X-Gogs-Event", event,
		"X-Gogs-Signature", sig,
		"X-GitHub-Delivery", "2f6a8b3c-1d4e-4f5a-9b6c-7d8e9f0a1b2c",
		"X-GitHub-Event", event,
		"X-Hub-Signature-256", "sha256="+sig,
	)
	if k == forge.Forgejo {
		h.Set("X-Forgejo-Delivery", "2f6a8b3c-1d4e-4f5a-9b6c-7d8e9f0a1b2c")
		h.Set("X-Forgejo-Event", event)
		h.Set("X-Forgejo-Event-Type", eventType)
		h.Set("X-Forgejo-Signature", sig)
	}
	return h
}

func readGitea(t *testing.T, k forge.Kind, h http.Header, body []byte) (forge.Event, error) {
	t.Helper()
	if err := forge.Verify(k, hookSecret, h, body); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return forge.Read(k, h, body)
}

func TestGiteaDeliveries(t *testing.T) {
	t.Parallel()
	for _, k := range []forge.Kind{forge.Gitea, forge.Forgejo} {
		t.Run(string(k)+"/Push", func(t *testing.T) {
			t.Parallel()
			body := giteaPush("refs/heads/main", giteaBefore, giteaHead, "Speed up the build\n")
			got, err := readGitea(t, k, giteaHeaders(k, "push", "push", body), body)
			if err != nil {
				t.Fatal(err)
			}
			want := forge.Event{
				Delivery: "2f6a8b3c-1d4e-4f5a-9b6c-7d8e9f0a1b2c",
				Type:     forge.EventPush,
				Ref:      "refs/heads/main",
				Branch:   "main",
				Before:   giteaBefore,
				Commit:   giteaHead,
				Message:  "Speed up the build\n",
				Repo:     "alice/demo",
				Sender:   "alice",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Read (-want +got):\n%s", diff)
			}
		})
		for action, eventType := range map[string]string{
			"opened":       "pull_request",
			"synchronized": "pull_request_sync",
			"reopened":     "pull_request",
		} {
			t.Run(string(k)+"/PullRequest/"+action, func(t *testing.T) {
				t.Parallel()
				body := giteaPull(action, 3, "faster", giteaHead, 1)
				got, err := readGitea(t, k, giteaHeaders(k, "pull_request", eventType, body), body)
				if err != nil {
					t.Fatal(err)
				}
				want := forge.Event{
					Delivery: "2f6a8b3c-1d4e-4f5a-9b6c-7d8e9f0a1b2c",
					Type:     forge.EventPullRequest,
					Ref:      "refs/pull/3/head",
					Branch:   "faster",
					Target:   "main",
					Commit:   giteaHead,
					Number:   3,
					Action:   action,
					Repo:     "alice/demo",
					Sender:   "bob",
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Read (-want +got):\n%s", diff)
				}
			})
		}
		t.Run(string(k)+"/Fork", func(t *testing.T) {
			t.Parallel()
			body := giteaPull("opened", 4, "main", giteaHead, 9)
			got, err := readGitea(t, k, giteaHeaders(k, "pull_request", "pull_request", body), body)
			if err != nil || !got.Fork || got.Branch != "main" {
				t.Errorf("Read = %+v, %v; want a pull request from a fork", got, err)
			}
		})
		ignored := []struct {
			name, event, eventType string
			body                   []byte
			typ, why               string
		}{
			{"Closed", "pull_request", "pull_request", giteaPull("closed", 3, "faster", giteaHead, 1), forge.EventPullRequest, `action "closed" is not one`},
			{"Labeled", "pull_request", "pull_request_label", giteaPull("label_updated", 3, "faster", giteaHead, 1), forge.EventPullRequest, `action "label_updated" is not one`},
			{"Edited", "pull_request", "pull_request", giteaPull("edited", 3, "faster", giteaHead, 1), forge.EventPullRequest, `action "edited" is not one`},
			{"Tag", "push", "push", giteaPush("refs/tags/v1.0.0", strings.Repeat("0", 40), giteaHead, "Release"), forge.EventPush, "tag"},
			{"BranchDeletion", "push", "push", giteaPush("refs/heads/old", giteaHead, strings.Repeat("0", 40), ""), forge.EventPush, "branch deletion"},
			{"SkipCI", "push", "push", giteaPush("refs/heads/main", giteaBefore, giteaHead, "Docs only [skip ci]"), forge.EventPush, "skip CI"},
			{"Delete", "delete", "delete", []byte(`{"ref":"old","ref_type":"branch"}`), "delete", `event "delete" is not one`},
			{"Create", "create", "create", []byte(`{"ref":"new","ref_type":"branch"}`), "create", `event "create" is not one`},
		}
		for _, c := range ignored {
			t.Run(string(k)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				got, err := readGitea(t, k, giteaHeaders(k, c.event, c.eventType, c.body), c.body)
				if err != nil {
					t.Fatal(err)
				}
				if got.Type != c.typ || !strings.Contains(got.Ignore, c.why) {
					t.Errorf("Read = Type %q, Ignore %q; want %q, one with %q", got.Type, got.Ignore, c.typ, c.why)
				}
			})
		}
	}
}

// Forgejo sends both X-Forgejo-* and X-Gitea-*; a Forgejo hook read as
// Forgejo takes its own names first, and one with only the Gitea names
// (a Forgejo that dropped nothing, or a proxy that did) still reads.
func TestForgejoHeaderNames(t *testing.T) {
	t.Parallel()
	body := giteaPush("refs/heads/main", giteaBefore, giteaHead, "x")
	h := giteaHeaders(forge.Forgejo, "push", "push", body)
	h.Set("X-Forgejo-Delivery", "forgejo-id")
	h.Set("X-Gitea-Delivery", "gitea-id")
	if got, err := forge.Read(forge.Forgejo, h, body); err != nil || got.Delivery != "forgejo-id" {
		t.Errorf("Forgejo: Delivery = %q, %v; want forgejo-id", got.Delivery, err)
	}
	if got, err := forge.Read(forge.Gitea, h, body); err != nil || got.Delivery != "gitea-id" {
		t.Errorf("Gitea: Delivery = %q, %v; want gitea-id", got.Delivery, err)
	}
	h.Del("X-Gitea-Delivery")
	h.Del("X-Gitea-Event")
	if got, err := forge.Read(forge.Gitea, h, body); err != nil || got.Delivery != "forgejo-id" || got.Type != forge.EventPush {
		t.Errorf("Gitea kind with Forgejo's names only: %+v, %v", got, err)
	}
}

// giteaFixtureSecret is the secret of the hook the deliveries under
// testdata/gitea were recorded from, as the README there says.
const giteaFixtureSecret = "deltaci-gitea-fixture-secret"

// TestGiteaRecordedDeliveries verifies and reads deliveries recorded from
// a real Gitea (testdata/gitea/NAME.json with its headers in
// NAME.headers.json), and checks the Event against the payload's own
// values.
func TestGiteaRecordedDeliveries(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "gitea", "*.headers.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("testdata/gitea holds no recorded deliveries yet")
	}
	for _, hf := range files {
		name := strings.TrimSuffix(filepath.Base(hf), ".headers.json")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := recordedHeaders(t, hf)
			body, err := os.ReadFile(filepath.Join("testdata", "gitea", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			k := forge.Gitea
			if h.Get("X-Forgejo-Event") != "" {
				k = forge.Forgejo
			}
			if err := forge.Verify(k, giteaFixtureSecret, h, body); err != nil {
				t.Errorf("Verify of Gitea's own signature: %v", err)
			}
			tampered := append(append([]byte{}, body...), ' ')
			if err := forge.Verify(k, giteaFixtureSecret, h, tampered); err == nil {
				t.Error("Verify accepted the recorded signature over another body")
			}
			got, err := forge.Read(k, h, body)
			if err != nil {
				t.Fatal(err)
			}
			checkRecorded(t, h, hookJSON(t, body), got)
		})
	}
}

// recordedHeaders reads a header file: an object of names to a value or a
// list of values.
func recordedHeaders(t *testing.T, path string) http.Header {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			h.Add(k, v)
		case []any:
			for _, s := range v {
				if s, ok := s.(string); ok {
					h.Add(k, s)
				}
			}
		}
	}
	return h
}

func checkRecorded(t *testing.T, h http.Header, j map[string]any, got forge.Event) {
	t.Helper()
	if want := h.Get("X-Gitea-Delivery"); got.Delivery != want && got.Delivery != h.Get("X-Forgejo-Delivery") {
		t.Errorf("Delivery = %q, want %q", got.Delivery, want)
	}
	event := h.Get("X-Gitea-Event")
	switch {
	case event == "push":
		ref := jsonString(t, j, "ref")
		after := jsonString(t, j, "after")
		if !strings.HasPrefix(ref, "refs/heads/") || strings.Trim(after, "0") == "" {
			if got.Ignore == "" {
				t.Errorf("a tag push or a deletion makes a run: %+v", got)
			}
			return
		}
		want := forge.Event{
			Delivery: got.Delivery, Type: forge.EventPush, Ignore: got.Ignore,
			Ref: ref, Branch: strings.TrimPrefix(ref, "refs/heads/"),
			Before: jsonString(t, j, "before"), Commit: after, Message: got.Message,
			Repo: jsonString(t, j, "repository", "full_name"), Sender: jsonString(t, j, "sender", "login"),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Read (-want +got):\n%s", diff)
		}
		if head, ok := jsonAt(j, "head_commit", "message").(string); ok && got.Message != head {
			t.Errorf("Message = %q, want head_commit's %q", got.Message, head)
		}
	case event == "pull_request":
		action := jsonString(t, j, "action")
		switch action {
		case "opened", "synchronized", "reopened":
		default:
			if got.Ignore == "" {
				t.Errorf("pull request action %q makes a run", action)
			}
			return
		}
		n := jsonInt(t, j, "number")
		want := forge.Event{
			Delivery: got.Delivery, Type: forge.EventPullRequest,
			Ref:    fmt.Sprintf("refs/pull/%d/head", n),
			Branch: jsonString(t, j, "pull_request", "head", "ref"),
			Target: jsonString(t, j, "pull_request", "base", "ref"),
			Commit: jsonString(t, j, "pull_request", "head", "sha"),
			Number: n, Action: action,
			Fork: jsonInt(t, j, "pull_request", "head", "repo_id") != jsonInt(t, j, "pull_request", "base", "repo_id"),
			Repo: jsonString(t, j, "repository", "full_name"), Sender: jsonString(t, j, "sender", "login"),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Read (-want +got):\n%s", diff)
		}
	default:
		if got.Type != event || got.Ignore == "" {
			t.Errorf("event %q: Read = %+v, want it ignored under its own name", event, got)
		}
	}
}
