//go:build linux

package executor_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/deltaci/deltaci/internal/core"
	"github.com/deltaci/deltaci/internal/executor"
)

// haveTool reports whether a program is installed, where the sandbox looks
// for it too.
func haveTool(name string) bool {
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if _, err := exec.LookPath(filepath.Join(d, name)); err == nil {
			return true
		}
	}
	return false
}

// requireNetwork skips a test of the sandbox's network on a developer
// machine that lacks what it needs, and fails it in CI, which must run it.
func requireNetwork(t *testing.T) {
	t.Helper()
	requireBwrap(t)
	var missing []string
	for _, tool := range []struct{ name, pkg string }{{"pasta", "passt"}, {"ip", "iproute2"}, {"nsenter", "util-linux"}} {
		if !haveTool(tool.name) {
			missing = append(missing, fmt.Sprintf("%s (the %s package)", tool.name, tool.pkg))
		}
	}
	if f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		missing = append(missing, fmt.Sprintf("a /dev/net/tun this user may open (%v)", err))
	} else {
		f.Close()
	}
	if len(missing) == 0 {
		return
	}
	msg := "the tests of the sandbox's network need " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + ", and CI must run them")
	}
	t.Skip("!!! SKIPPING: " + msg)
}

// stack is a network stack that jobs with Spec.Network are tested with.
type stack struct {
	opts       executor.SandboxOptions
	nameserver string // in the sandbox's resolv.conf
	ipv6       bool   // slirp4netns runs without IPv6
}

// forEachStack runs test in parallel subtests, one per network stack:
// pasta, and slirp4netns, which the sandbox uses when pasta is missing.
func forEachStack(t *testing.T, test func(t *testing.T, st stack)) {
	t.Helper()
	requireNetwork(t)
	t.Run("pasta", func(t *testing.T) {
		t.Parallel()
		test(t, stack{nameserver: "169.254.0.53", ipv6: true})
	})
	t.Run("slirp4netns", func(t *testing.T) {
		t.Parallel()
		if !haveTool("slirp4netns") {
			t.Skip("!!! SKIPPING: slirp4netns is not installed; install the slirp4netns package to test the sandbox's fallback network stack")
		}
		// With pasta missing, the sandbox falls back to slirp4netns.
		test(t, stack{opts: executor.SandboxOptions{Pasta: filepath.Join(t.TempDir(), "pasta")}, nameserver: "10.0.2.3"})
	})
}

// networkSandbox returns a bundle running jobs with the network of st, with
// the probe in the workspace.
func networkSandbox(t *testing.T, st stack, probe string) bundle {
	t.Helper()
	b := sandboxBundle(t, newSandbox(t, st.opts))
	installProbe(t, probe, b.dir)
	return b
}

// runNetworkJob runs script with Spec.Network and returns its output; the
// job must succeed.
func runNetworkJob(t *testing.T, b bundle, script string) string {
	t.Helper()
	spec := b.spec(script)
	spec.Network = true
	var out output
	res := b.run(t, context.Background(), spec, &out)
	assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
	return out.String()
}

// requireNetworkUp fails unless out, the output of the probe's
// "interfaces" and "gateways", shows eth0 up and a default route: a failed
// connection proves nothing in a sandbox without a network.
func requireNetworkUp(t *testing.T, out string) {
	t.Helper()
	if !regexp.MustCompile(`(?m)^eth0 up\|`).MatchString(out) {
		t.Fatalf("the job has no eth0 that is up:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^[0-9a-f.:]+$`).MatchString(out) {
		t.Fatalf("the job has no default route:\n%s", out)
	}
}

// attack is a script that connects to each of targets ("HOST:PORT" as the
// job writes it), once plainly and once from a socket bound to eth0, as an
// unprivileged job may; the probe prints one line per attempt. The attempts
// run at once: a failing one may wait for its timeout.
func attack(targets []string) string {
	var s strings.Builder
	s.WriteString("./probe interfaces; ./probe gateways\n")
	for _, target := range targets {
		fmt.Fprintf(&s, "{ ./probe connect '%[1]s' || true; } &\n{ ./probe connect '%[1]s' eth0 || true; } &\n", target)
	}
	s.WriteString("wait\n")
	return s.String()
}

// assertRepelled checks the output of attack: every attempt ran and failed,
// and no listener accepted anything. Run has returned, so the job is over.
func assertRepelled(t *testing.T, out string, attempts int, listeners []*listener) {
	t.Helper()
	requireNetworkUp(t, out)
	if n := strings.Count(out, "connect failed"); n != attempts || strings.Contains(out, "CONNECTED") {
		t.Errorf("%d of %d attempts failed to connect:\n%s", n, attempts, out)
	}
	for _, ln := range listeners {
		ln.settle(t)
		if n := ln.accepted(); n != 0 {
			t.Errorf("the host's listener on %s accepted %d connections from the job:\n%s", ln.addr, n, out)
		}
	}
}

// inSandbox writes the address of a host listener as the job must dial it:
// a link-local address names the sandbox's interface. (A listener's
// address has no zone, even when the listener has one.)
func inSandbox(ln *listener) string {
	ap := netip.MustParseAddrPort(ln.addr)
	if ap.Addr().Is6() && ap.Addr().IsLinkLocalUnicast() {
		ap = netip.AddrPortFrom(ap.Addr().WithZone("eth0"), ap.Port())
	}
	return ap.String()
}

func TestSandboxJobCannotReachHostLoopback(t *testing.T) {
	t.Parallel()
	probe := buildProbe(t)
	forEachStack(t, func(t *testing.T, st stack) {
		b := networkSandbox(t, st, probe)
		var lns []*listener
		for _, addr := range []string{"127.0.0.1:0", "127.0.0.2:0", "[::1]:0"} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Logf("no listener on %s: %v", addr, err)
				continue
			}
			lns = append(lns, serve(t, ln))
		}
		var targets []string
		for _, ln := range lns {
			targets = append(targets, ln.addr)
		}
		// The stack's gateways too: pasta maps them to the host's
		// loopback unless told not to, and so does slirp4netns with
		// 10.0.2.2.
		script := "for gw in $(./probe gateways); do case $gw in *:*) gw=\"[$gw]\";; esac\n"
		for _, ln := range lns {
			port := netip.MustParseAddrPort(ln.addr).Port()
			script += fmt.Sprintf("  { ./probe connect \"$gw:%[1]d\" || true; } &\n  { ./probe connect \"$gw:%[1]d\" eth0 || true; } &\n", port)
		}
		script += "done\n" + attack(targets)
		out := runNetworkJob(t, b, script)
		gateways := len(regexp.MustCompile(`(?m)^[0-9a-f.:]+$`).FindAllString(out, -1))
		assertRepelled(t, out, 2*len(targets)+2*gateways*len(lns), lns)
	})
}

func TestSandboxJobCannotReachHostAddress(t *testing.T) {
	t.Parallel()
	probe := buildProbe(t)
	forEachStack(t, func(t *testing.T, st stack) {
		b := networkSandbox(t, st, probe)
		ifs, err := net.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		var lns []*listener
		var targets []string
		for _, i := range ifs {
			addrs, err := i.Addrs()
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range addrs {
				ipnet, ok := a.(*net.IPNet)
				if !ok || ipnet.IP.IsLoopback() {
					continue
				}
				ip, _ := netip.AddrFromSlice(ipnet.IP)
				if ip = ip.Unmap(); ip.IsLinkLocalUnicast() && ip.Is6() {
					ip = ip.WithZone(i.Name)
				}
				// One listener per address, as a service bound to it
				// would be.
				ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
				if err != nil {
					t.Logf("no listener on %s: %v", ip, err)
					continue
				}
				l := serve(t, ln)
				lns = append(lns, l)
				targets = append(targets, inSandbox(l))
			}
		}
		if len(lns) == 0 {
			t.Skip("this host has no address but its loopback")
		}
		t.Logf("the job attacks %s", strings.Join(targets, " "))
		out := runNetworkJob(t, b, attack(targets))
		assertRepelled(t, out, 2*len(targets), lns)
	})
}

func TestSandboxNetworkHasOutbound(t *testing.T) {
	t.Parallel()
	probe := buildProbe(t)
	forEachStack(t, func(t *testing.T, st stack) {
		t.Run("OwnInterfaceRouteAndResolver", func(t *testing.T) {
			t.Parallel()
			b := networkSandbox(t, st, probe)
			out := runNetworkJob(t, b, "./probe interfaces; ./probe gateways; cat /etc/resolv.conf; readlink /proc/self/ns/net")
			requireNetworkUp(t, out)
			if !strings.Contains(out, "nameserver "+st.nameserver+"\n") {
				t.Errorf("the job's resolv.conf does not name the stack's resolver %s:\n%s", st.nameserver, out)
			}
			own, err := os.Readlink("/proc/self/ns/net")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, own) {
				t.Errorf("the job is in the runner's network namespace %s:\n%s", own, out)
			}
			waitNetnsUnused(t, netnsOf(t, out))
		})

		t.Run("ReachesPeer", func(t *testing.T) {
			t.Parallel()
			if os.Geteuid() != 0 {
				t.Skip("making a peer network namespace for the job to reach needs root; the job's interface and route are tested without it")
			}
			peer := newPeer(t)
			b := networkSandbox(t, st, probe)
			lns := []*listener{peer.listen(t, probe, peer.v4)}
			if st.ipv6 {
				lns = append(lns, peer.listen(t, probe, peer.v6))
			}
			var script strings.Builder
			for _, ln := range lns {
				fmt.Fprintf(&script, "./probe connect '%s' || true\n", ln.addr)
			}
			out := runNetworkJob(t, b, script.String())
			for _, ln := range lns {
				ln.settle(t)
				if ln.accepted() == 0 {
					t.Errorf("the peer's listener on %s accepted nothing:\n%s", ln.addr, out)
				}
			}
			if n := strings.Count(out, "CONNECTED"); n != len(lns) {
				t.Errorf("%d of %d connections to the peer worked:\n%s", n, len(lns), out)
			}
		})

		t.Run("LeavesHostMountsAlone", func(t *testing.T) {
			t.Parallel()
			if os.Geteuid() != 0 {
				t.Skip("the stacks' sandboxing can reach the host's mounts only when the runner is root")
			}
			// A network namespace bound under /run/netns is a shared
			// mount: slirp4netns 1.2, sandboxing itself as root, unmounts
			// it unless it gets a private copy of the mounts.
			peer := newPeer(t)
			b := networkSandbox(t, st, probe)
			runNetworkJob(t, b, "true")
			if out, err := exec.Command("ip", "netns", "exec", peer.name, "true").CombinedOutput(); err != nil {
				t.Errorf("the host's network namespace %s is gone after the job: %v: %s", peer.name, err, out)
			}
		})

		t.Run("ResolvesNames", func(t *testing.T) {
			t.Parallel()
			const name = "deb.debian.org"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := net.DefaultResolver.LookupHost(ctx, name); err != nil {
				t.Skipf("this host cannot resolve %s itself (%v), so neither can the job", name, err)
			}
			b := networkSandbox(t, st, probe)
			out := runNetworkJob(t, b, "./probe resolve "+name)
			if !strings.HasPrefix(out, "RESOLVED ") {
				t.Errorf("the job could not resolve %s, which the host resolves:\n%s", name, out)
			}
		})

		t.Run("StackDiesWithCanceledJob", func(t *testing.T) {
			t.Parallel()
			b := networkSandbox(t, st, probe)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := newOutput("ready")
			spec := b.spec("readlink /proc/self/ns/net; echo ready; while :; do sleep 1; done")
			spec.Network = true
			ch := b.start(t, ctx, spec, out)
			out.waitFor(t)
			netns := netnsOf(t, out.String())
			if len(holdersOf(t, netns)) == 0 {
				t.Fatalf("no process holds the job's network namespace %s while it runs: the test cannot see what it checks", netns)
			}
			cancel()
			assertOutcome(t, wait(t, ch), core.AttemptCanceled, core.ReasonCanceled, -1)
			waitNetnsUnused(t, netns)
		})
	})
}

func TestSandboxNetworkJobCannotUndoItsRoutes(t *testing.T) {
	t.Parallel()
	forEachStack(t, func(t *testing.T, st stack) {
		b := sandboxBundle(t, newSandbox(t, st.opts))
		// The routes that keep the host out of reach are there, and the
		// job, without capabilities, can change neither them nor eth0.
		out := runNetworkJob(t, b, `ip route show table local | grep 'dev eth0' || true
grep '^Cap' /proc/self/status
if ip route del local 127.0.0.0/8 dev eth0 table local metric 1 2>/dev/null; then echo ROUTE-DELETED; fi
if ip address add 10.254.0.1/32 dev eth0 2>/dev/null; then echo ADDRESS-ADDED; fi
if ip link set eth0 down 2>/dev/null; then echo LINK-DOWN; fi
echo done`)
		if !strings.Contains(out, "local 127.0.0.0/8 dev eth0") {
			t.Fatalf("the job's local table lacks the loopback route through eth0:\n%s", out)
		}
		caps := regexp.MustCompile(`(?m)^Cap(Inh|Prm|Eff|Bnd|Amb):\s+0+$`).FindAllString(out, -1)
		if len(caps) != 5 || strings.Contains(out, "DELETED") || strings.Contains(out, "ADDED") || strings.Contains(out, "LINK-DOWN") ||
			!strings.HasSuffix(out, "done\n") {
			t.Errorf("the job has capabilities over its network:\n%s", out)
		}
	})
}

// netnsOf returns the "net:[…]" line that readlink printed in out.
func netnsOf(t *testing.T, out string) string {
	t.Helper()
	ns := regexp.MustCompile(`net:\[[0-9]+\]`).FindString(out)
	if ns == "" {
		t.Fatalf("the job did not print its network namespace:\n%s", out)
	}
	return ns
}

// holdersOf returns the host processes that are in network namespace ns
// ("net:[…]") or hold a descriptor of it, as the network stack does.
func holdersOf(t *testing.T, ns string) []string {
	t.Helper()
	links, err := filepath.Glob("/proc/[0-9]*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	fds, err := filepath.Glob("/proc/[0-9]*/fd/*")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, l := range append(links, fds...) {
		if target, err := os.Readlink(l); err == nil && target == ns {
			cmdline, _ := os.ReadFile(filepath.Join(l, "..", "..", "cmdline"))
			found = append(found, l+": "+string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return found
}

// waitNetnsUnused polls until no process holds network namespace ns: the
// kernel finishes tearing the sandbox down asynchronously.
func waitNetnsUnused(t *testing.T, ns string) {
	t.Helper()
	deadline := time.Now().Add(notHung)
	for {
		left := holdersOf(t, ns)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still hold the job's network namespace %s after the job:\n%s", ns, strings.Join(left, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// peer is a network namespace that is not the host's, joined to it by a
// veth pair: a machine that a job with the network may reach.
type peer struct {
	name   string // of its network namespace
	v4, v6 netip.Addr
}

// newPeer makes a peer; it needs root and the ip command.
func newPeer(t *testing.T) *peer {
	t.Helper()
	id := strings.ToLower(rand.Text()[:8])
	name, hostIf, peerIf := "deltaci-peer-"+id, "dci"+id, "dcp"+id
	var b [2]byte
	_, _ = rand.Read(b[:])
	// A random subnet: tests run in parallel, and each may make a peer.
	v4Net := fmt.Sprintf("10.%d.%d", 200+b[0]%50, b[1])
	v6Net := fmt.Sprintf("fd00:dc1:%x%02x", b[0], b[1])
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", name)
	t.Cleanup(func() {
		// Deleting the namespace deletes the veth pair too.
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("deleting the peer: %v\n%s", err, out)
		}
	})
	ip("link", "add", hostIf, "type", "veth", "peer", "name", peerIf, "netns", name)
	ip("address", "add", v4Net+".1/24", "dev", hostIf)
	ip("-6", "address", "add", v6Net+"::1/64", "dev", hostIf, "nodad")
	ip("link", "set", hostIf, "up")
	ip("-n", name, "address", "add", v4Net+".2/24", "dev", peerIf)
	ip("-n", name, "-6", "address", "add", v6Net+"::2/64", "dev", peerIf, "nodad")
	ip("-n", name, "link", "set", peerIf, "up")
	ip("-n", name, "link", "set", "lo", "up")
	return &peer{
		name: name,
		v4:   netip.MustParseAddr(v4Net + ".2"),
		v6:   netip.MustParseAddr(v6Net + "::2"),
	}
}

// listen returns a listener on addr inside the peer: the probe, run there
// by ip netns exec, reports what it accepts. The host reaches the peer, so
// settle works on it.
func (p *peer) listen(t *testing.T, probe string, addr netip.Addr) *listener {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", p.name, probe, "listen", netip.AddrPortFrom(addr, 0).String())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a listener in the peer: %v", err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "LISTENING ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the peer's listener did not start: %q", lines.Text())
	}
	l := &listener{addr: strings.TrimPrefix(lines.Text(), "LISTENING ")}
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		for lines.Scan() {
			if from, ok := strings.CutPrefix(lines.Text(), "ACCEPTED "); ok {
				l.saw(from)
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-counted
		_ = cmd.Wait()
	})
	return l
}

func TestSandboxNetworkNeverFallsBackToHost(t *testing.T) {
	t.Parallel()
	requireBwrap(t)
	missing := t.TempDir()
	sb := newSandbox(t, executor.SandboxOptions{
		Pasta:       filepath.Join(missing, "pasta"),
		Slirp4netns: filepath.Join(missing, "slirp4netns"),
	})
	b := sandboxBundle(t, sb)
	spec := b.spec("touch started")
	spec.Network = true
	res := b.run(t, context.Background(), spec, io.Discard)
	assertOutcome(t, res, core.AttemptErrored, core.ReasonInfraError, -1)
	if !strings.Contains(res.Err, "install the passt package") {
		t.Errorf("Err = %q, want the package to install", res.Err)
	}
	if _, err := os.Stat(filepath.Join(b.dir, "started")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the job ran without its network stack (stat: %v)", err)
	}
	// Jobs without the network still run.
	res = b.run(t, context.Background(), b.spec("true"), io.Discard)
	assertOutcome(t, res, core.AttemptSucceeded, core.ReasonNone, 0)
}

// TestSandboxJobCannotMulticastToHost: the stack would send a job's
// multicast again from the host, where a service that joined the group
// (mDNS, say) gets it. The job's sends fail, and a listener on the host
// that joined the group gets only the host's own canary.
func TestSandboxJobCannotMulticastToHost(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash to send UDP from the job")
	}
	probe := buildProbe(t)
	forEachStack(t, func(t *testing.T, st stack) {
		group := &net.UDPAddr{IP: net.IPv4(239, 255, 7, byte(7+len(st.nameserver)%200)), Port: 0}
		ln, err := net.ListenMulticastUDP("udp4", nil, group)
		if err != nil {
			t.Skipf("cannot join a multicast group here: %v", err)
		}
		t.Cleanup(func() { ln.Close() })
		group.Port = ln.LocalAddr().(*net.UDPAddr).Port
		got := make(chan string, 16)
		go func() {
			buf := make([]byte, 256)
			for {
				n, _, err := ln.ReadFromUDP(buf)
				if err != nil {
					close(got)
					return
				}
				got <- string(buf[:n])
			}
		}()
		b := networkSandbox(t, st, probe)
		script := fmt.Sprintf(`for i in 1 2 3; do
  if bash -c 'echo from-the-job > /dev/udp/%s/%d' 2>/dev/null; then echo SENT; else echo "send refused"; fi
done
`, group.IP, group.Port)
		out := runNetworkJob(t, b, script)
		if strings.Count(out, "send refused") != 3 || strings.Contains(out, "SENT") {
			t.Errorf("the job's multicast went out:\n%s", out)
		}
		// The host's own send comes after the job's: once it arrives,
		// anything the stack passed on from the job would have too.
		c, err := net.DialUDP("udp4", nil, group)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("canary")); err != nil {
			t.Fatal(err)
		}
		// Bounds a host without multicast loopback, which never sees it.
		_ = ln.SetReadDeadline(time.Now().Add(time.Minute))
		for msg := range got {
			if msg == "canary" {
				return
			}
			t.Errorf("a listener on the host got %q from the job", msg)
		}
		t.Fatal("the host's own multicast never reached its listener: this host cannot show anything")
	})
}
