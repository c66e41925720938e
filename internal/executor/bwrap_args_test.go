//go:build linux

package executor

import (
	"slices"
	"strings"
	"testing"
)

// The sandbox's promises that show in bwrap's options themselves; the
// sandbox tests check the same promises from inside a job.
func TestBwrapArgs(t *testing.T) {
	t.Parallel()
	s := &Sandbox{system: systemMounts(), readOnly: []string{"/opt/toolchain"}, limits: Limits{}.withDefaults()}
	const dir = "/srv/ci/ws"
	spec := Spec{Script: "true", Dir: dir, Env: []string{"PATH=/usr/bin:/bin", "A=b=c", "NOEQUALS"}}

	t.Run("WorkspaceIsTheOnlyWritableBind", func(t *testing.T) {
		t.Parallel()
		args := s.bwrapArgs(spec, dir)
		for i, a := range args {
			if (a == "--bind" || a == "--bind-try" || a == "--dev-bind" || a == "--dev-bind-try") && (args[i+1] != dir || args[i+2] != dir) {
				t.Errorf("writable bind of %s at %s", args[i+1], args[i+2])
			}
		}
		if n := strings.Count(strings.Join(args, "\x00"), "\x00--bind\x00"); n != 1 {
			t.Errorf("%d --bind options, want exactly the workspace", n)
		}
		// Nothing may be mounted over the workspace after it, and the root
		// is made read-only last.
		tail := args[slices.Index(args, "--bind"):]
		if want := []string{"--bind", dir, dir, "--remount-ro", "/", "--chdir", dir}; !slices.Equal(tail, want) {
			t.Errorf("options end with %q, want %q", tail, want)
		}
	})

	t.Run("HomeIsTheOtherWritableBind", func(t *testing.T) {
		t.Parallel()
		const home = "/srv/ci/home/attempt"
		withHome := spec
		withHome.Home = home
		withHome.Env = append(withHome.Env, "HOME=/root", "XDG_CACHE_HOME=/root/.cache")
		args := s.bwrapArgs(withHome, dir)
		tail := args[slices.Index(args, "--bind"):]
		if want := []string{"--bind", dir, dir, "--bind", home, home, "--remount-ro", "/", "--chdir", dir}; !slices.Equal(tail, want) {
			t.Errorf("options end with %q, want %q", tail, want)
		}
		// The home replaces the runner's, whatever Env said.
		joined := strings.Join(args, "\x00")
		if !strings.Contains(joined, "--setenv\x00HOME\x00"+home+"\x00--setenv\x00XDG_CACHE_HOME\x00"+home+"/.cache\x00") ||
			strings.Contains(joined, "/root") {
			t.Errorf("environment options: %q", joined)
		}
	})

	t.Run("NestedWritableBindsOuterFirst", func(t *testing.T) {
		t.Parallel()
		for _, c := range []struct{ dir, home string }{
			{"/srv/ci/home/ws", "/srv/ci/home"}, // a workspace inside the home
			{"/srv/ci/ws", "/srv/ci/ws/.home"},  // a home inside the workspace
		} {
			withHome := spec
			withHome.Home = c.home
			args := s.bwrapArgs(withHome, c.dir)
			outer, inner := c.dir, c.home
			if len(c.home) < len(c.dir) {
				outer, inner = c.home, c.dir
			}
			tail := args[slices.Index(args, "--bind"):]
			if want := []string{"--bind", outer, outer, "--bind", inner, inner, "--remount-ro", "/", "--chdir", c.dir}; !slices.Equal(tail, want) {
				t.Errorf("options end with %q, want %q", tail, want)
			}
		}
		same := spec
		same.Home = dir
		if n := strings.Count(strings.Join(s.bwrapArgs(same, dir), "\x00"), "\x00--bind\x00"); n != 1 {
			t.Errorf("%d --bind options for a home that is the workspace, want 1", n)
		}
	})

	t.Run("NetworkOnlyWhenAsked", func(t *testing.T) {
		t.Parallel()
		off := strings.Join(s.bwrapArgs(spec, dir), " ")
		withNet := spec
		withNet.Network = true
		on := strings.Join(s.bwrapArgs(withNet, dir), " ")
		if strings.Contains(off, "--share-net") || strings.Contains(off, "resolv.conf") {
			t.Errorf("network namespace kept without Spec.Network: %s", off)
		}
		// With Spec.Network, bwrap keeps the namespace made for it, never
		// the host's, and the sandbox gets a resolv.conf of its own.
		if !strings.Contains(on, "--unshare-all --share-net ") || !strings.Contains(on, " --ro-bind-data 6 /etc/resolv.conf ") {
			t.Errorf("network options with Spec.Network: %s", on)
		}
	})

	t.Run("ExactlySpecEnv", func(t *testing.T) {
		t.Parallel()
		args := strings.Join(s.bwrapArgs(spec, dir), "\x00")
		if !strings.Contains(args, "--clearenv\x00--setenv\x00PATH\x00/usr/bin:/bin\x00--setenv\x00A\x00b=c\x00--json-status-fd") {
			t.Errorf("environment options: %q", args)
		}
	})

	t.Run("SafetyOptions", func(t *testing.T) {
		t.Parallel()
		args := s.bwrapArgs(spec, dir)
		for _, want := range []string{"--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "--clearenv", "--proc", "--dev", "--tmpfs"} {
			if !slices.Contains(args, want) {
				t.Errorf("options lack %s: %q", want, args)
			}
		}
		if !slices.Contains(args, "/opt/toolchain") || slices.Contains(args, "/etc/shadow") {
			t.Errorf("read-only paths: %q", args)
		}
	})

	t.Run("TmpfsSizes", func(t *testing.T) {
		t.Parallel()
		args := strings.Join(s.bwrapArgs(spec, dir), " ")
		for _, want := range []string{
			"--dev /dev --size 67108864 --tmpfs /dev/shm --remount-ro /dev ",
			"--size 1073741824 --tmpfs /tmp ",
		} {
			if !strings.Contains(args, want) {
				t.Errorf("options lack %q: %s", want, args)
			}
		}
		unlimited := &Sandbox{limits: Limits{TmpSize: NoLimit, ShmSize: NoLimit}.withDefaults()}
		if args := strings.Join(unlimited.bwrapArgs(spec, dir), " "); strings.Contains(args, "--size") {
			t.Errorf("a size with NoLimit: %s", args)
		}
	})
}

// The workspace cap measures what the job writes in its workspace and its
// home, each once.
func TestMeasuredDirs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		spec Spec
		want []string
	}{
		{"WorkspaceOnly", Spec{Dir: "/w/ws"}, []string{"/w/ws"}},
		{"WrittenLayer", Spec{Dir: "/w/ws", WrittenDir: "/w/upper"}, []string{"/w/upper"}},
		{"AndHome", Spec{Dir: "/w/ws", WrittenDir: "/w/upper", Home: "/w/home"}, []string{"/w/upper", "/w/home"}},
		{"HomeInsideWorkspace", Spec{Dir: "/w/ws", WrittenDir: "/w/upper", Home: "/w/ws/.home"}, []string{"/w/upper"}},
		{"HomeIsWorkspace", Spec{Dir: "/w/ws", Home: "/w/ws"}, []string{"/w/ws"}},
		{"WorkspaceInsideHome", Spec{Dir: "/w/home/ws", Home: "/w/home"}, []string{"/w/home"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := measured(c.spec, c.spec.Dir); !slices.Equal(got, c.want) {
				t.Errorf("measured = %q, want %q", got, c.want)
			}
		})
	}
}
