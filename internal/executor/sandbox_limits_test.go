//go:build linux

package executor_test

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
)

func TestSandboxNestedUserNamespaceRefused(t *testing.T) {
	t.Parallel()
	requireBwrap(t)
	if !haveTool("unshare") {
		t.Skip("unshare (util-linux) is not installed")
	}
	// Control: the host allows it, so that a refusal inside means something.
	if out, err := exec.Command("unshare", "--user", "--map-root-user", "true").CombinedOutput(); err != nil {
		t.Skipf("this host refuses user namespaces to this user already (%v: %s), so the test cannot fail", err, out)
	}
	const script = `if unshare --user true 2>&1; then echo NESTED; fi
if unshare --user --map-root-user --net true 2>&1; then echo NESTED-ROOT; fi
echo done`
	for _, network := range []bool{false, true} {
		t.Run(fmt.Sprintf("Network=%t", network), func(t *testing.T) {
			t.Parallel()
			if network {
				requireNetwork(t)
			}
			b := setupSandbox(t)
			spec := b.spec(script)
			spec.Network = network
			var out output
			res := b.run(t, context.Background(), spec, &out)
			assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
			if strings.Contains(out.String(), "NESTED") || !strings.HasSuffix(out.String(), "done\n") {
				t.Errorf("the job made a user namespace of its own:\n%s", out.String())
			}
		})
	}
}

func TestSandboxTmpfsIsCapped(t *testing.T) {
	t.Parallel()
	requireBwrap(t)

	t.Run("Defaults", func(t *testing.T) {
		t.Parallel()
		b := setupSandbox(t)
		var out output
		res := b.run(t, context.Background(), b.spec("cat /proc/self/mountinfo"), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		for _, want := range []string{
			`(?m)^\S+ \S+ \S+ / /tmp \S+ .* tmpfs \S+ \S*size=1048576k`,
			`(?m)^\S+ \S+ \S+ / /dev/shm \S+ .* tmpfs \S+ \S*size=65536k`,
			`(?m)^\S+ \S+ \S+ / /dev ro,`,
		} {
			if !regexp.MustCompile(want).MatchString(out.String()) {
				t.Errorf("no mount matches %s:\n%s", want, out.String())
			}
		}
	})

	t.Run("FillingFails", func(t *testing.T) {
		t.Parallel()
		const size = 1 << 20
		b := sandboxBundle(t, newSandbox(t, executor.SandboxOptions{Limits: executor.Limits{TmpSize: size, ShmSize: size}}))
		var out output
		script := `for d in /tmp /dev/shm; do
  head -c 4194304 /dev/zero > $d/fill 2>/dev/null || echo "$d full"
  echo "$d $(wc -c < $d/fill)"
done
if (echo x > /dev/made) 2>/dev/null; then echo "/dev WRITABLE"; fi`
		res := b.run(t, context.Background(), b.spec(script), &out)
		assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
		for _, want := range []string{"/tmp full\n/tmp 1048576\n", "/dev/shm full\n/dev/shm 1048576\n"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q: a tmpfs holds more than its 1 MiB:\n%s", want, out.String())
			}
		}
		if strings.Contains(out.String(), "WRITABLE") {
			t.Errorf("the job wrote to /dev:\n%s", out.String())
		}
	})
}

func TestSandboxWorkspaceCapFailsResourceLimit(t *testing.T) {
	t.Parallel()
	requireBwrap(t)
	b := sandboxBundle(t, newSandbox(t, executor.SandboxOptions{Limits: executor.Limits{WorkspaceSize: 4 << 20}}))
	spec := b.spec(`trap '' TERM
` + b.background("holder") + `
head -c 16777216 /dev/zero > big
echo written
while :; do sleep 1; done`)
	// A job stopped with the grace would outlast the test's patience: the
	// cap kills at once.
	spec.Grace = time.Hour
	out := newOutput("written")
	ch := b.start(t, context.Background(), spec, out)
	out.waitFor(t)
	res := wait(t, ch)
	assertOutcome(t, res, core.AttemptFailed, core.ReasonResourceLimit, -1)
	if !strings.Contains(res.Err, "past its limit of 4 MiB") {
		t.Errorf("Err = %q, want the workspace's limit", res.Err)
	}
	b.gone(t, "holder")
}
