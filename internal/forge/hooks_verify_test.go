package forge_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deltaci/deltaci/internal/forge"
)

// hookSecret is the secret the tests' hooks share with the forge.
const hookSecret = "9e6c0d2f-webhook-secret"

// hookMAC is the hex HMAC-SHA256 of body under secret, computed here
// rather than by the code under test.
func hookMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// hookHeaders builds a header from name/value pairs.
func hookHeaders(pairs ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Set(pairs[i], pairs[i+1])
	}
	return h
}

// hookFixture reads a file under testdata.
func hookFixture(t *testing.T, path ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{"testdata"}, path...)...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hookJSON decodes body generically, so that expectations are read from
// the payload independently of the structs the code decodes into.
func hookJSON(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// jsonAt walks m along keys; a missing key or a null gives nil.
func jsonAt(m any, keys ...string) any {
	for _, k := range keys {
		o, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = o[k]
	}
	return m
}

func jsonString(t *testing.T, m any, keys ...string) string {
	t.Helper()
	s, ok := jsonAt(m, keys...).(string)
	if !ok {
		t.Fatalf("payload has no string at %s", strings.Join(keys, "."))
	}
	return s
}

func jsonInt(t *testing.T, m any, keys ...string) int {
	t.Helper()
	f, ok := jsonAt(m, keys...).(float64)
	if !ok {
		t.Fatalf("payload has no number at %s", strings.Join(keys, "."))
	}
	return int(f)
}

// hookEdit returns body with edit applied to its decoded form.
func hookEdit(t *testing.T, body []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	m := hookJSON(t, body)
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustNotLeak fails when an error from Verify does not match ErrSignature
// or shows the secret or the signature it expected.
func mustNotLeak(t *testing.T, err error, secret string, body []byte) {
	t.Helper()
	if !errors.Is(err, forge.ErrSignature) {
		t.Errorf("error %q does not match ErrSignature", err)
	}
	msg := err.Error()
	if secret != "" && strings.Contains(msg, secret) {
		t.Errorf("error %q shows the secret", msg)
	}
	if want := hookMAC(secret, body); strings.Contains(strings.ToLower(msg), want[:16]) {
		t.Errorf("error %q shows the expected signature", msg)
	}
}

func TestForgedGitHubDeliveryIsRefused(t *testing.T) {
	t.Parallel()
	body := []byte(`{"ref":"refs/heads/main"}`)
	good := "sha256=" + hookMAC(hookSecret, body)
	cases := []struct {
		name   string
		secret string
		h      http.Header
		body   []byte
		msg    string
	}{
		{"NoHeader", hookSecret, hookHeaders(), body, "no X-Hub-Signature-256 header"},
		{"EmptyHeader", hookSecret, hookHeaders("X-Hub-Signature-256", ""), body, "no X-Hub-Signature-256 header"},
		{"OnlySHA1Header", hookSecret, hookHeaders("X-Hub-Signature", "sha1=0000"), body, "no X-Hub-Signature-256 header"},
		{"NoPrefix", hookSecret, hookHeaders("X-Hub-Signature-256", hookMAC(hookSecret, body)), body, "is not sha256=<hex>"},
		{"SHA1Prefix", hookSecret, hookHeaders("X-Hub-Signature-256", "sha1="+hookMAC(hookSecret, body)), body, "is not sha256=<hex>"},
		{"NotHex", hookSecret, hookHeaders("X-Hub-Signature-256", "sha256=zz"+hookMAC(hookSecret, body)[2:]), body, "does not match"},
		{"Truncated", hookSecret, hookHeaders("X-Hub-Signature-256", good[:len(good)-2]), body, "does not match"},
		{"Zeros", hookSecret, hookHeaders("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64)), body, "does not match"},
		{"OtherBody", hookSecret, hookHeaders("X-Hub-Signature-256", good), []byte(`{"ref":"refs/heads/evil"}`), "does not match"},
		{"OtherSecret", hookSecret, hookHeaders("X-Hub-Signature-256", "sha256="+hookMAC("another secret", body)), body, "does not match"},
		{"EmptySecret", "", hookHeaders("X-Hub-Signature-256", "sha256="+hookMAC("", body)), body, "empty secret never verifies"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := forge.Verify(forge.GitHub, c.secret, c.h, c.body)
			if err == nil {
				t.Fatal("Verify accepted a forged delivery")
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
			mustNotLeak(t, err, c.secret, c.body)
		})
	}
	if err := forge.Verify(forge.GitHub, hookSecret, hookHeaders("X-Hub-Signature-256", good), body); err != nil {
		t.Errorf("a true signature: %v", err)
	}
	upper := "sha256=" + strings.ToUpper(hookMAC(hookSecret, body))
	if err := forge.Verify(forge.GitHub, hookSecret, hookHeaders("X-Hub-Signature-256", upper), body); err != nil {
		t.Errorf("a true signature in upper-case hex: %v", err)
	}
}

func TestForgedGitLabTokenIsRefused(t *testing.T) {
	t.Parallel()
	body := []byte(`{"object_kind":"push"}`)
	cases := []struct {
		name   string
		secret string
		h      http.Header
		msg    string
	}{
		{"NoHeader", hookSecret, hookHeaders(), "no X-Gitlab-Token header"},
		{"Wrong", hookSecret, hookHeaders("X-Gitlab-Token", "guess"), "does not match"},
		{"Prefix", hookSecret, hookHeaders("X-Gitlab-Token", hookSecret[:len(hookSecret)-1]), "does not match"},
		{"Longer", hookSecret, hookHeaders("X-Gitlab-Token", hookSecret+"x"), "does not match"},
		{"OtherCase", hookSecret, hookHeaders("X-Gitlab-Token", strings.ToUpper(hookSecret)), "does not match"},
		{"HMACInstead", hookSecret, hookHeaders("X-Gitlab-Token", hookMAC(hookSecret, body)), "does not match"},
		{"EmptySecretEmptyToken", "", hookHeaders("X-Gitlab-Token", ""), "empty secret never verifies"},
		{"EmptySecret", "", hookHeaders("X-Gitlab-Token", "anything"), "empty secret never verifies"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := forge.Verify(forge.GitLab, c.secret, c.h, body)
			if err == nil {
				t.Fatal("Verify accepted a forged token")
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not say %q", err, c.msg)
			}
			mustNotLeak(t, err, c.secret, body)
		})
	}
	if err := forge.Verify(forge.GitLab, hookSecret, hookHeaders("X-Gitlab-Token", hookSecret), body); err != nil {
		t.Errorf("the true token: %v", err)
	}
}

func TestForgedGiteaDeliveryIsRefused(t *testing.T) {
	t.Parallel()
	body := []byte(`{"ref":"refs/heads/main"}`)
	good := hookMAC(hookSecret, body)
	bad := hookMAC("another secret", body)
	for _, k := range []forge.Kind{forge.Gitea, forge.Forgejo} {
		refused := []struct {
			name string
			h    http.Header
			msg  string
		}{
			{"NoHeader", hookHeaders(), "no X-Gitea-Signature, X-Forgejo-Signature or X-Hub-Signature-256 header"},
			// Gitea sends the headers empty when its hook has no secret.
			{"EmptyHeaders", hookHeaders("X-Gitea-Signature", "", "X-Hub-Signature-256", "sha256="), "no signature header matches"},
			{"GiteaWrong", hookHeaders("X-Gitea-Signature", bad), "no signature header matches"},
			{"ForgejoWrong", hookHeaders("X-Forgejo-Signature", bad), "no signature header matches"},
			{"HubWrong", hookHeaders("X-Hub-Signature-256", "sha256="+bad), "no signature header matches"},
			{"GiteaWithPrefix", hookHeaders("X-Gitea-Signature", "sha256="+good), "no signature header matches"},
			{"AllWrong", hookHeaders("X-Gitea-Signature", bad, "X-Forgejo-Signature", bad, "X-Hub-Signature-256", "sha256="+bad), "no signature header matches"},
		}
		for _, c := range refused {
			t.Run(string(k)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				err := forge.Verify(k, hookSecret, c.h, body)
				if err == nil {
					t.Fatal("Verify accepted a forged delivery")
				}
				if !strings.Contains(err.Error(), c.msg) {
					t.Errorf("error %q does not say %q", err, c.msg)
				}
				mustNotLeak(t, err, hookSecret, body)
			})
		}
		accepted := map[string]http.Header{
			"Gitea":               hookHeaders("X-Gitea-Signature", good),
			"Forgejo":             hookHeaders("X-Forgejo-Signature", good),
			"Hub":                 hookHeaders("X-Hub-Signature-256", "sha256="+good),
			"AsGiteaSendsIt":      hookHeaders("X-Gitea-Signature", good, "X-Gogs-Signature", good, "X-Hub-Signature", "sha1=00", "X-Hub-Signature-256", "sha256="+good),
			"OneTrueAmongForged":  hookHeaders("X-Gitea-Signature", bad, "X-Forgejo-Signature", good),
			"HubTrueGiteaForged":  hookHeaders("X-Gitea-Signature", bad, "X-Hub-Signature-256", "sha256="+good),
			"ForgejoTrueHubEmpty": hookHeaders("X-Forgejo-Signature", good, "X-Hub-Signature-256", ""),
		}
		for name, h := range accepted {
			if err := forge.Verify(k, hookSecret, h, body); err != nil {
				t.Errorf("%s/%s: a true signature: %v", k, name, err)
			}
		}
		err := forge.Verify(k, "", hookHeaders("X-Gitea-Signature", hookMAC("", body)), body)
		if err == nil || !strings.Contains(err.Error(), "empty secret never verifies") {
			t.Errorf("%s: empty secret: %v", k, err)
		}
	}
}

func TestVerifyUnknownForge(t *testing.T) {
	t.Parallel()
	err := forge.Verify("bitbucket", hookSecret, hookHeaders("X-Hub-Signature-256", "sha256=00"), nil)
	if !errors.Is(err, forge.ErrSignature) || !strings.Contains(err.Error(), `unknown forge "bitbucket"`) {
		t.Errorf("Verify(bitbucket) = %v", err)
	}
}
