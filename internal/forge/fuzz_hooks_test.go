package forge_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/deltaci/deltaci/internal/forge"
)

// fuzzHeaderNames are, per forge, the event and delivery headers Read
// looks at: the fuzzer sets each from its inputs.
var fuzzHeaderNames = map[forge.Kind][2][]string{
	forge.GitHub:  {{"X-GitHub-Event"}, {"X-GitHub-Delivery"}},
	forge.GitLab:  {{"X-Gitlab-Event"}, {"Idempotency-Key", "X-Gitlab-Event-UUID"}},
	forge.Gitea:   {{"X-Gitea-Event", "X-Forgejo-Event"}, {"X-Gitea-Delivery", "X-Forgejo-Delivery"}},
	forge.Forgejo: {{"X-Forgejo-Event", "X-Gitea-Event"}, {"X-Forgejo-Delivery", "X-Gitea-Delivery"}},
}

// An accepted Event is checked with these, written apart from the code
// under test.
var (
	fuzzCommitID = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	fuzzPullRef  = regexp.MustCompile(`^refs/(pull|merge-requests)/[1-9][0-9]*/head$`)
)

func fuzzBranchOK(b string) bool {
	return b != "" && b[0] != '-' && !strings.Contains(b, "..") &&
		!strings.ContainsFunc(b, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

func FuzzRead(f *testing.F) {
	for i := range forge.Kinds {
		f.Add(byte(i), "push", "d-1", []byte(`{"ref":"refs/heads/main","before":"`+strings.Repeat("0", 40)+`","after":"`+goodSHA+`","repository":{"full_name":"o/r"},"project":{"path_with_namespace":"o/r"}}`))
		f.Add(byte(i), "pull_request", "d-2", []byte(`{"action":"opened","number":1,"pull_request":{"head":{"ref":"--upload-pack=x","sha":"`+goodSHA+`"},"base":{"ref":"main"}}}`))
	}
	f.Add(byte(1), "Merge Request Hook", "d-3", []byte(`{"object_attributes":{"iid":2,"action":"update","oldrev":"x","source_branch":"a","target_branch":"b","last_commit":{"id":"`+goodSHA+`","message":"[ci skip]"}},"project":{"path_with_namespace":"g/p"}}`))
	f.Add(byte(2), "pull_request", "d-4", []byte(`{"action":"synchronized","number":9,"pull_request":{"head":{"ref":"f","sha":"`+goodSHA+`","repo_id":2},"base":{"ref":"main","repo_id":1}},"repository":{"full_name":"o/r"}}`))
	fuzzSeedFiles(f)

	f.Fuzz(func(t *testing.T, kind byte, event, delivery string, body []byte) {
		k := forge.Kinds[int(kind)%len(forge.Kinds)]
		names := fuzzHeaderNames[k]
		h := http.Header{}
		// The input's kind byte also picks which of the forge's header
		// names carry the values.
		h.Set(names[0][int(kind/4)%len(names[0])], event)
		h.Set(names[1][int(kind/8)%len(names[1])], delivery)

		ev, err := forge.Read(k, h, body)
		if err != nil {
			if !errors.Is(err, forge.ErrDelivery) {
				t.Fatalf("error %q does not match ErrDelivery", err)
			}
			if len(err.Error()) > 600 {
				t.Fatalf("error of %d bytes: %.200q", len(err.Error()), err)
			}
			return
		}
		if ev.Delivery == "" || ev.Type == "" {
			t.Fatalf("accepted without a delivery id or type: %+v", ev)
		}
		if ev.Ignore == "" && ev.Type != forge.EventPush && ev.Type != forge.EventPullRequest {
			t.Fatalf("a %q delivery makes a run: %+v", ev.Type, ev)
		}
		if ev.Ignore == "" || ev.Commit != "" {
			checkRunnable(t, ev)
		}
	})
}

// checkRunnable fails unless ev names what a run can safely use.
func checkRunnable(t *testing.T, ev forge.Event) {
	t.Helper()
	if !fuzzCommitID.MatchString(ev.Commit) || strings.Trim(ev.Commit, "0") == "" {
		t.Fatalf("commit %q is not a commit id: %+v", ev.Commit, ev)
	}
	if !fuzzBranchOK(ev.Branch) {
		t.Fatalf("branch %q is not safe: %+v", ev.Branch, ev)
	}
	if ev.Repo == "" {
		t.Fatalf("no repository: %+v", ev)
	}
	switch ev.Type {
	case forge.EventPush:
		if ev.Ref != "refs/heads/"+ev.Branch {
			t.Fatalf("ref %q is not the branch %q", ev.Ref, ev.Branch)
		}
		if !fuzzCommitID.MatchString(ev.Before) || len(ev.Before) != len(ev.Commit) {
			t.Fatalf("before %q is not a commit id", ev.Before)
		}
	case forge.EventPullRequest:
		if !fuzzPullRef.MatchString(ev.Ref) || !strings.Contains(ev.Ref, fmt.Sprintf("/%d/", ev.Number)) {
			t.Fatalf("ref %q is not the pull request %d's", ev.Ref, ev.Number)
		}
		if !fuzzBranchOK(ev.Target) {
			t.Fatalf("target %q is not safe", ev.Target)
		}
	default:
		t.Fatalf("type %q has a commit", ev.Type)
	}
}

// fuzzSeedFiles adds the recorded examples, each under the forge and event
// it came from.
func fuzzSeedFiles(f *testing.F) {
	f.Helper()
	seeds := []struct {
		kind        byte
		event, file string
	}{
		{0, "push", "github-webhooks/push.branch-created.json"},
		{0, "push", "github-webhooks/push.tag-deleted.json"},
		{0, "pull_request", "github-webhooks/pull_request.synchronize.json"},
		{0, "ping", "github-webhooks/ping.organization.json"},
		{1, "Push Hook", "gitlab/push.json"},
		{1, "Tag Push Hook", "gitlab/tag_push.json"},
		{1, "Merge Request Hook", "gitlab/merge_request.update-code.json"},
	}
	for _, s := range seeds {
		body, err := os.ReadFile(filepath.Join("testdata", filepath.FromSlash(s.file)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.kind, s.event, "d-1", body)
	}
}

// fuzzSignatureHeader is the header a forge of kind k signs body with.
func fuzzSignatureHeader(k forge.Kind, secret string, body []byte) http.Header {
	switch k {
	case forge.GitHub:
		return hookHeaders("X-Hub-Signature-256", "sha256="+hookMAC(secret, body))
	case forge.GitLab:
		return hookHeaders("X-Gitlab-Token", secret)
	case forge.Forgejo:
		return hookHeaders("X-Forgejo-Signature", hookMAC(secret, body))
	default:
		return hookHeaders("X-Gitea-Signature", hookMAC(secret, body))
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(byte(0), "s3cret", []byte(`{"ref":"refs/heads/main"}`), "sha256=00")
	f.Add(byte(1), "token", []byte(`{}`), "toke")
	f.Add(byte(2), "", []byte(`{}`), "")
	f.Add(byte(3), "k", []byte(nil), strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, kind byte, secret string, body []byte, forged string) {
		k := forge.Kinds[int(kind)%len(forge.Kinds)]
		if strings.ContainsAny(secret, "\r\n") {
			// No forge can send such a token in a header.
			return
		}

		err := forge.Verify(k, secret, fuzzSignatureHeader(k, secret, body), body)
		switch {
		case secret == "" && err == nil:
			t.Fatal("an empty secret verified")
		case secret != "" && err != nil:
			t.Fatalf("a true signature was refused: %v", err)
		}

		// The same signature over another body.
		if k != forge.GitLab && secret != "" {
			other := append([]byte{'x'}, body...)
			err := forge.Verify(k, secret, fuzzSignatureHeader(k, secret, body), other)
			if err == nil {
				t.Fatal("a signature verified another body")
			}
			checkQuiet(t, err, secret, other)
		}

		// A value the fuzzer made up, in every header Verify reads.
		h := hookHeaders("X-Hub-Signature-256", forged, "X-Gitlab-Token", forged,
			"X-Gitea-Signature", forged, "X-Forgejo-Signature", forged)
		if err := forge.Verify(k, secret, h, body); err == nil {
			if !fuzzForgedIsTrue(k, secret, body, forged) {
				t.Fatalf("a forged %q verified", forged)
			}
		} else {
			checkQuiet(t, err, secret, body)
		}
	})
}

// fuzzForgedIsTrue reports whether the made-up value is in fact the true
// signature (or token), which the fuzzer may stumble on for tiny secrets.
func fuzzForgedIsTrue(k forge.Kind, secret string, body []byte, forged string) bool {
	mac := hookMAC(secret, body)
	v := strings.ToLower(strings.TrimSpace(forged))
	switch k {
	case forge.GitHub:
		return v == "sha256="+mac
	case forge.GitLab:
		return forged == secret
	default:
		return v == mac || v == "sha256="+mac
	}
}

// checkQuiet fails when a Verify error does not match ErrSignature or
// shows the secret or the expected signature.
func checkQuiet(t *testing.T, err error, secret string, body []byte) {
	t.Helper()
	if !errors.Is(err, forge.ErrSignature) {
		t.Fatalf("error %q does not match ErrSignature", err)
	}
	msg := err.Error()
	// A short secret may be a word of any message.
	if len(secret) >= 6 && strings.Contains(msg, secret) {
		t.Fatalf("error %q shows the secret", msg)
	}
	if strings.Contains(strings.ToLower(msg), hookMAC(secret, body)[:12]) {
		t.Fatalf("error %q shows the expected signature", msg)
	}
}
