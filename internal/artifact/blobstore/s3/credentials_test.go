package s3

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/deltaci/deltaci/internal/artifact/digest"
	"github.com/deltaci/deltaci/internal/core"
)

// TestCredentials: temporary keys with their session token, and keys from
// a profile of a shared credentials file, open the bucket and store a
// blob; an incomplete set or a bad profile is refused at Open, by name.
func TestCredentials(t *testing.T) {
	t.Parallel()
	srv := server.Server(t)
	url := "s3://" + srv.Bucket + "/creds"
	works := func(t *testing.T, o Options) {
		t.Helper()
		o.Endpoint = srv.Endpoint
		s, err := Open(t.Context(), url, o)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		body := []byte("credentials " + t.Name())
		d, err := digest.FromBytes(digest.SHA256, body)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Put(t.Context(), d, bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	refused := func(t *testing.T, o Options, kind core.Kind, says string) {
		t.Helper()
		o.Endpoint = srv.Endpoint
		s, err := Open(t.Context(), url, o)
		if err == nil {
			s.Close()
			t.Fatal("Open worked")
		}
		if core.KindOf(err) != kind || !strings.Contains(err.Error(), says) {
			t.Fatalf("Open: %v (kind %s); want kind %s saying %q", err, core.KindOf(err), kind, says)
		}
	}

	t.Run("SessionToken", func(t *testing.T) {
		t.Parallel()
		sts, err := credentials.NewSTSAssumeRole(srv.Endpoint, credentials.STSAssumeRoleOptions{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		v, err := sts.GetWithContext(&credentials.CredContext{Client: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatalf("temporary keys: %v", err)
		}
		works(t, Options{AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey, SessionToken: v.SessionToken})
		o := Options{Endpoint: srv.Endpoint, AccessKey: v.AccessKeyID, SecretKey: v.SecretAccessKey}
		if s, err := Open(t.Context(), url, o); err == nil {
			s.Close()
			t.Fatal("temporary keys worked without their session token")
		}
	})
	t.Run("Profile", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "credentials")
		text := "[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong\n\n" +
			"[ci]\naws_access_key_id = " + srv.AccessKey + "\naws_secret_access_key = " + srv.SecretKey + "\n\n" +
			"[half]\naws_access_key_id = " + srv.AccessKey + "\n\n[empty]\nregion = x\n"
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		works(t, Options{ProfileFile: file, Profile: "ci"})
		refused(t, Options{ProfileFile: file, Profile: "nope"}, core.KindInvalid, `profile "nope"`)
		refused(t, Options{ProfileFile: file, Profile: "half"}, core.KindInvalid, `profile "half"`)
		refused(t, Options{ProfileFile: file, Profile: "empty"}, core.KindInvalid, "gives no keys")
		refused(t, Options{ProfileFile: filepath.Join(t.TempDir(), "missing")}, core.KindInvalid, "credentials file")
		// Keys given directly win over the file.
		works(t, Options{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, ProfileFile: file})
	})
	t.Run("Incomplete", func(t *testing.T) {
		t.Parallel()
		refused(t, Options{AccessKey: srv.AccessKey}, core.KindInvalid, "needs its secret key")
		refused(t, Options{SecretKey: srv.SecretKey}, core.KindInvalid, "access key")
		refused(t, Options{SessionToken: "t"}, core.KindInvalid, "session token needs")
	})
}

func TestEnvCredentials(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	withFile := t.TempDir()
	if err := os.MkdirAll(filepath.Join(withFile, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(withFile, ".aws", "credentials"), []byte("[default]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Options
	}{
		{"Keys", map[string]string{"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t", "AWS_PROFILE": "p", "HOME": withFile},
			Options{AccessKey: "k", SecretKey: "s", SessionToken: "t"}},
		{"HalfKeysGoToOpen", map[string]string{"AWS_ACCESS_KEY_ID": "k", "HOME": withFile}, Options{AccessKey: "k"}},
		{"Anonymous", map[string]string{"HOME": home}, Options{}},
		{"DefaultFile", map[string]string{"HOME": withFile}, Options{ProfileFile: filepath.Join(withFile, ".aws", "credentials")}},
		{"Profile", map[string]string{"HOME": home, "AWS_PROFILE": "ci"}, Options{ProfileFile: filepath.Join(home, ".aws", "credentials"), Profile: "ci"}},
		{"NamedFile", map[string]string{"HOME": home, "AWS_SHARED_CREDENTIALS_FILE": "/etc/ci/credentials"}, Options{ProfileFile: "/etc/ci/credentials"}},
		{"NoHome", map[string]string{}, Options{}},
	} {
		got := EnvCredentials(Options{Region: "r"}, func(k string) string { return tc.env[k] })
		tc.want.Region = "r"
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
