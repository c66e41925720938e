package eventlog_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/artifact/eventlog"
	"github.com/deltaci/deltaci/internal/core"
)

func TestParseScopes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string // want "" means refused
	}{
		{"outputs:write", "outputs:write"},
		{"*:admin", "*:admin"},
		{" logs:read , outputs:write ", "logs:read,outputs:write"},
		{"outputs:read,outputs:admin,outputs:write", "outputs:admin"},
		{"z:read,*:read,a.b-c_d:write", "*:read,a.b-c_d:write,z:read"},
		{"", ""},
		{",", ""},
		{"outputs", ""},
		{"outputs:", ""},
		{":read", ""},
		{"outputs:owner", ""},
		{"outputs:READ", ""},
		{"out/puts:read", ""},
		{"**:read", ""},
		{"-x:read", ""},
		{"outputs:read:write", ""},
		{"outputs:read,", ""},
		{strings.Repeat("n", 129) + ":read", ""},
	} {
		got, err := eventlog.ParseScopes(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParseScopes(%q) = %s, want an error", tc.in, got)
		case tc.want == "" && !errors.Is(err, core.ErrInvalid):
			t.Errorf("ParseScopes(%q) error %v is not KindInvalid", tc.in, err)
		case tc.want != "" && (err != nil || got.String() != tc.want):
			t.Errorf("ParseScopes(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	var many []string
	for i := range 65 {
		many = append(many, "ns"+strings.Repeat("x", i)+":read")
	}
	if _, err := eventlog.ParseScopes(strings.Join(many, ",")); !errors.Is(err, core.ErrInvalid) {
		t.Errorf("65 scopes: %v", err)
	}
}

func TestScopesAllow(t *testing.T) {
	t.Parallel()
	ss, err := eventlog.ParseScopes("outputs:write,logs:read")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := eventlog.ParseScopes("*:admin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scopes eventlog.Scopes
		ns     string
		role   eventlog.Role
		want   bool
	}{
		{ss, "outputs", eventlog.RoleRead, true},
		{ss, "outputs", eventlog.RoleWrite, true},
		{ss, "outputs", eventlog.RoleAdmin, false},
		{ss, "logs", eventlog.RoleRead, true},
		{ss, "logs", eventlog.RoleWrite, false},
		{ss, "results", eventlog.RoleRead, false},
		{ss, eventlog.AllNamespaces, eventlog.RoleRead, false},
		{ss, "", eventlog.RoleRead, false},
		{admin, "anything", eventlog.RoleAdmin, true},
		{admin, eventlog.AllNamespaces, eventlog.RoleAdmin, true},
		{ss, "outputs", "owner", false},
	} {
		if got := tc.scopes.Allows(tc.ns, tc.role); got != tc.want {
			t.Errorf("%s allows %s on %q = %v, want %v", tc.scopes, tc.role, tc.ns, got, tc.want)
		}
	}
	if !ss.AllowsAny(eventlog.RoleWrite) || ss.AllowsAny(eventlog.RoleAdmin) || !admin.AllowsAny(eventlog.RoleAdmin) {
		t.Error("AllowsAny")
	}
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 19, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time // zero: refused
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"0s", now},
		{"2026-11-20T10:00:00Z", time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)},
		{"2026-11-20T11:00:00.123+01:00", time.Date(2026, 11, 20, 10, 0, 0, 123e6, time.UTC)},
		{"-24h", time.Time{}},
		{"yesterday", time.Time{}},
		{"2026-11-20", time.Time{}},
		{"", time.Time{}},
	} {
		got, err := eventlog.ParseSince(tc.in, now)
		if tc.want.IsZero() {
			if !errors.Is(err, core.ErrInvalid) {
				t.Errorf("ParseSince(%q) = %v, %v; want KindInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatTimeIsMilliseconds(t *testing.T) {
	t.Parallel()
	for in, want := range map[time.Time]string{
		time.Date(2026, 11, 23, 19, 20, 35, 0, time.UTC):                      "2026-11-23T19:20:35.000Z",
		time.Date(2026, 11, 23, 19, 20, 35, 685_999_999, time.UTC):            "2026-11-23T19:20:35.685Z",
		time.Date(2026, 11, 23, 20, 20, 35, 5e6, time.FixedZone("CET", 3600)): "2026-11-23T19:20:35.005Z",
	} {
		if got := eventlog.FormatTime(in); got != want {
			t.Errorf("FormatTime(%v) = %s, want %s", in, got, want)
		}
	}
}

func TestAuditSubject(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		"logs/attempt-7":         "logs/attempt-7:latest",
		"logs/attempt-7:latest":  "logs/attempt-7:latest",
		"outputs/build/linux:v1": "outputs/build/linux:v1",
		"outputs/build/linux":    "outputs/build/linux:latest",
		d:                        d,
		"retention:logs/**":      "retention:logs/**",
		"gc":                     "gc",
		"":                       "",
		"not a ref/x":            "not a ref/x",
	} {
		if got := eventlog.AuditSubject(in); got != want {
			t.Errorf("AuditSubject(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseScopes checks that ParseScopes never panics, refuses with
// KindInvalid only, and that what it accepts is canonical: it parses back
// to itself and grants what each of its scopes says. The seed corpus is in
// testdata/fuzz/FuzzParseScopes.
func FuzzParseScopes(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		ss, err := eventlog.ParseScopes(s)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) || ss != nil {
				t.Fatalf("ParseScopes(%q) = %v, %v", s, ss, err)
			}
			return
		}
		again, err := eventlog.ParseScopes(ss.String())
		if err != nil || again.String() != ss.String() {
			t.Fatalf("ParseScopes(%q) = %s, which parses back as %s, %v", s, ss, again, err)
		}
		seen := map[string]bool{}
		for _, sc := range ss {
			if seen[sc.Namespace] {
				t.Fatalf("ParseScopes(%q) = %s names %q twice", s, ss, sc.Namespace)
			}
			seen[sc.Namespace] = true
			if !ss.Allows(sc.Namespace, sc.Role) || !ss.AllowsAny(sc.Role) {
				t.Fatalf("%s does not grant its own %s", ss, sc)
			}
		}
	})
}

// FuzzParseSince checks that ParseSince never panics, refuses with
// KindInvalid only, and never answers a time after now for a duration.
// The seed corpus is in testdata/fuzz/FuzzParseSince.
func FuzzParseSince(f *testing.F) {
	now := time.Date(2026, 11, 23, 19, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := eventlog.ParseSince(s, now)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("ParseSince(%q) error %v is not KindInvalid", s, err)
			}
			return
		}
		if _, derr := time.ParseDuration(s); derr == nil && got.After(now) {
			t.Fatalf("ParseSince(%q) = %v, after now", s, got)
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseSince(%q) = %v, not UTC", s, got)
		}
	})
}
