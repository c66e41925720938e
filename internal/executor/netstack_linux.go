package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A job with Spec.Network gets a network namespace of its own, never the
// host's. bwrap starts in a user and network namespace that the runner makes
// for it, where the runner's user is root, and the sandbox keeps that network
// namespace (--share-net) below user namespaces of bwrap's own, without
// capabilities, which therefore cannot change it. Before the script starts:
//
//  1. A user-mode network stack, pasta or else slirp4netns, attaches to the
//     namespace: an interface eth0 with a default route, whose traffic it
//     turns into ordinary sockets of the runner. It forwards no port in
//     either direction and maps no address to the host's loopback.
//  2. The loopback ranges (127.0.0.0/8, ::1) and every address of the
//     host's interfaces get a local route through eth0 in the namespace's
//     local table, so that traffic to them stays in the sandbox: the stack
//     would otherwise connect to them from the host, on its loopback too.
//     A prohibiting route or rule would not do: a socket bound to eth0
//     (SO_BINDTODEVICE needs no privilege) skips routes through other
//     interfaces, and IPv4 then sends to the address on eth0's link
//     whatever the routes say. A local route through eth0 matches such a
//     socket too, and keeps the traffic inside.
//  3. An nftables rule in the namespace drops multicast and broadcast on
//     their way out: the stack would send them again from the host, where
//     services that joined the group (mDNS, say) would get them. Routes
//     cannot stop these either: with an interface named, the kernel
//     sends multicast on it without asking the routes. IPv6 neighbour
//     discovery, which is ICMPv6 to multicast groups, still goes out.
const (
	nsIfname = "eth0"
	// pastaDNS is where pasta answers DNS queries, forwarding them to the
	// host's first name server. 169.254.0.0/24 is reserved, so it is no
	// one's address.
	pastaDNS = "169.254.0.53"
	// slirpDNS is slirp4netns's built-in DNS forwarder.
	slirpDNS = "10.0.2.3"
)

// Why jobs cannot have a network; each names what to install.
const (
	msgNoNetworkStack = "the sandbox gives a job its network through pasta or slirp4netns, and neither is installed: install the passt package (or slirp4netns)"
	msgNoIP           = "the sandbox configures a job's network with ip, which is not installed: install the iproute2 package"
	msgNoNsenter      = "the sandbox configures a job's network with nsenter, which is not installed: install the util-linux package"
	msgNoNft          = "the sandbox keeps a job's multicast off the host with nft, which is not installed: install the nftables package"
)

// outboundRules drop what the stack would repeat to the host's own
// listeners: IPv4 multicast and broadcast, and IPv6 multicast but for
// ICMPv6 (neighbour discovery). The job has no capability to remove them.
const outboundRules = `table inet deltaci {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr 224.0.0.0/4 drop
		ip daddr 255.255.255.255 drop
		meta pkttype broadcast drop
		meta l4proto != ipv6-icmp ip6 daddr ff00::/8 drop
	}
}
`

// netTools are the programs that give a job its network.
type netTools struct {
	stack   string // pasta or slirp4netns
	slirp   bool   // stack is slirp4netns
	ip      string
	nsenter string
	nft     string
}

// findNetTools finds pasta, else slirp4netns, and the programs that
// configure the sandbox's network. It returns why jobs cannot have a
// network, or "".
func findNetTools(opts SandboxOptions) (netTools, string) {
	var t netTools
	var err error
	if t.stack, err = lookTool(opts.Pasta, "pasta"); err != nil {
		if t.stack, err = lookTool(opts.Slirp4netns, "slirp4netns"); err != nil {
			return netTools{}, msgNoNetworkStack
		}
		t.slirp = true
	}
	if t.ip, err = lookTool("", "ip"); err != nil {
		return netTools{}, msgNoIP
	}
	if t.nsenter, err = lookTool("", "nsenter"); err != nil {
		return netTools{}, msgNoNsenter
	}
	if t.nft, err = lookTool("", "nft"); err != nil {
		return netTools{}, msgNoNft
	}
	return t, ""
}

// toolDirs are where the tools live on Linux distributions, for a runner
// whose PATH lacks the sbin directories.
var toolDirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"}

// lookTool returns the absolute path of path, or when path is empty, of
// name on PATH or in toolDirs.
func lookTool(path, name string) (string, error) {
	if path == "" {
		if found, err := exec.LookPath(name); err == nil {
			return filepath.Abs(found)
		}
		for _, d := range toolDirs {
			if found, err := exec.LookPath(filepath.Join(d, name)); err == nil {
				return found, nil
			}
		}
		return "", exec.ErrNotFound
	}
	found, err := exec.LookPath(path)
	if err != nil {
		return "", err
	}
	return filepath.Abs(found)
}

// name is the stack's name, which is also the argv[0] it needs: pasta is
// passt run under that name.
func (t netTools) name() string {
	if t.slirp {
		return "slirp4netns"
	}
	return "pasta"
}

// nameserver is the address of the stack's DNS forwarder.
func (t netTools) nameserver() string {
	if t.slirp {
		return slirpDNS
	}
	return pastaDNS
}

// prepare sets up the start of bwrap for a job with Spec.Network: bwrap
// starts in a user and network namespace of its own, where the runner's user
// is root, so that nsenter can configure the network before the job starts.
// It returns the file bwrap reads the sandbox's resolv.conf from.
func (t netTools) prepare(files *fileSet, sys *syscall.SysProcAttr) (*os.File, error) {
	r, w, err := files.pipe()
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(t.resolvConf()); err != nil {
		return nil, err
	}
	w.Close()
	sys.Cloneflags |= syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET
	sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
	sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	return r, nil
}

// connect gives the network namespace of process pid (bwrap) its network
// and keeps the host's addresses out of its reach. Stop the returned stack
// once the job is gone.
func (t netTools) connect(pid int) (*netStack, error) {
	// Bounded like the rest of the sandbox's setup, and for the same reason
	// not by the job's context.
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	n, err := t.attach(ctx, pid)
	if err != nil {
		return nil, err
	}
	if err := t.routeHostInside(ctx, pid); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// netStack is a running network stack process.
type netStack struct {
	cmd    *exec.Cmd
	exit   *os.File      // slirp4netns exits when this closes, even if the runner dies
	exited chan struct{} // closed once cmd is reaped
}

// attach starts the network stack on the network namespace of process pid
// (bwrap) and returns once the namespace's interface is configured. The
// stack joins pid's process group, so what stops the job's group stops it
// too; stop it once the job is gone.
func (t netTools) attach(ctx context.Context, pid int) (*netStack, error) {
	p := strconv.Itoa(pid)
	var args []string
	var ready *os.File // readable once the stack is ready
	var extra []*os.File
	n := &netStack{exited: make(chan struct{})}
	if t.slirp {
		rr, rw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		er, ew, err := os.Pipe()
		if err != nil {
			rr.Close()
			rw.Close()
			return nil, err
		}
		ready, n.exit, extra = rr, ew, []*os.File{rw, er}
		args = []string{"--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox",
			"--ready-fd=3", "--exit-fd=4", "--userns-path=/proc/" + p + "/ns/user", p, nsIfname}
	} else {
		// pasta reports readiness by writing its pid file; a FIFO turns that
		// into an event.
		dir, err := os.MkdirTemp("", "deltaci-pasta-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		fifo := filepath.Join(dir, "ready")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			return nil, err
		}
		// Read-write, so that a read waits for pasta's write instead of
		// ending at once because no writer has opened it yet.
		if ready, err = os.OpenFile(fifo, os.O_RDWR, 0); err != nil {
			return nil, err
		}
		args = []string{"--config-net", "--foreground", "--quiet", "--ns-ifname", nsIfname,
			"--tcp-ports", "none", "--udp-ports", "none", "--tcp-ns", "none", "--udp-ns", "none",
			"--no-map-gw", "--dns-forward", pastaDNS, "--pid", fifo}
		if os.Geteuid() == 0 {
			// pasta would switch to nobody, who may not enter the
			// namespaces of root's sandbox.
			args = append(args, "--runas", "0")
		}
		args = append(args, p)
	}
	defer ready.Close()

	// Pdeathsig: pasta would outlive a killed runner, holding the
	// sandbox's namespace.
	sys := &syscall.SysProcAttr{Setpgid: true, Pgid: pid, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		// A private copy of the mounts: the stacks sandbox themselves by
		// unmounting, which, done by root in the host's mount namespace,
		// reaches the host's shared mounts (slirp4netns 1.2 unmounts every
		// network namespace under /run/netns).
		sys.Unshareflags = syscall.CLONE_NEWNS
	}
	stderr := &headWriter{w: io.Discard, max: 4096}
	n.cmd = &exec.Cmd{
		Path:        t.stack,
		Args:        append([]string{t.name()}, args...),
		Env:         []string{},
		Stdout:      stderr,
		Stderr:      stderr,
		ExtraFiles:  extra,
		SysProcAttr: sys,
		WaitDelay:   time.Second, // for its output, should a child of its hold it open
	}
	err := n.cmd.Start()
	for _, f := range extra {
		f.Close()
	}
	if err != nil {
		if n.exit != nil {
			n.exit.Close()
		}
		return nil, fmt.Errorf("starting %s: %w", t.name(), err)
	}
	go func() {
		_ = n.cmd.Wait()
		close(n.exited)
	}()

	readErr := make(chan error, 1) // the reader ends when ready is closed
	go func() {
		_, err := ready.Read(make([]byte, 64))
		readErr <- err
	}()
	select {
	case err = <-readErr:
		if err == nil {
			return n, nil
		}
	case <-n.exited:
		err = errors.New("exited")
	case <-ctx.Done():
		err = errors.New("not ready in time")
	}
	n.stop()
	return nil, fmt.Errorf("%s: %v%s", t.name(), err, stackMessage(stderr.buf))
}

// stackMessage is what the stack said on failing, without pasta's
// complaints about a missing syslog.
func stackMessage(out []byte) string {
	var lines []string
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimSpace(line); line != "" && !strings.Contains(line, "syslog") {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return ": " + strings.Join(lines, "; ")
}

// stop kills the stack and waits for it to be reaped.
func (n *netStack) stop() {
	if n.exit != nil {
		n.exit.Close()
	}
	// The job is gone or never started: nothing is lost by not asking.
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// routeHostInside routes the loopback ranges and every address of the
// host's interfaces to the sandbox itself, in the network namespace of
// process pid (bwrap); see the top of this file.
func (t netTools) routeHostInside(ctx context.Context, pid int) error {
	host, err := hostAddrs()
	if err != nil {
		return fmt.Errorf("listing the host's addresses: %w", err)
	}
	// Local routes through eth0, after the kernel's own (metric 0) for the
	// sandbox's addresses: a socket bound to eth0 finds them too, where
	// the kernel would otherwise send to an unrouted address on the link.
	route := func(b *strings.Builder, prefix string) {
		fmt.Fprintf(b, "route add local %s dev %s table local metric 1\n", prefix, nsIfname)
	}
	var v4, v6 strings.Builder
	route(&v4, "127.0.0.0/8")
	route(&v6, "::1/128")
	for _, a := range host {
		if a.Is4() {
			route(&v4, a.String()+"/32")
		} else {
			route(&v6, a.String()+"/128")
		}
	}
	batches := []struct{ family, cmds string }{{"-4", v4.String()}}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/net/if_inet6", pid)); err == nil { // absent without IPv6
		batches = append(batches, struct{ family, cmds string }{"-6", v6.String()})
	}
	for _, b := range batches {
		if err := t.inNamespace(ctx, pid, b.cmds, t.ip, b.family, "-batch", "-"); err != nil {
			return fmt.Errorf("routing the host's addresses into the sandbox: %w", err)
		}
	}
	if err := t.inNamespace(ctx, pid, outboundRules, t.nft, "-f", "-"); err != nil {
		return fmt.Errorf("keeping the sandbox's multicast off the host: %w", err)
	}
	return nil
}

// inNamespace runs a configuring command, reading stdin, in the network
// namespace of process pid. Entering the namespaces that the runner made,
// as their root, gives it the capabilities to change them, and nothing on
// the host.
func (t netTools) inNamespace(ctx context.Context, pid int, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, t.nsenter, append([]string{"--target", strconv.Itoa(pid), "--user", "--net",
		"--preserve-credentials", "--"}, args...)...)
	cmd.Env = []string{}
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// hostAddrs returns the addresses of the host's interfaces, except the
// loopback ones.
func hostAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipnet.IP)
		if ip = ip.Unmap(); !ok || ip.IsLoopback() || seen[ip] {
			continue
		}
		seen[ip] = true
		out = append(out, ip)
	}
	return out, nil
}

// resolvConf returns the sandbox's /etc/resolv.conf: the host's search
// domains and options, with the stack's DNS forwarder as the only name
// server, since the host's may be on its loopback.
// It is small: it goes to bwrap through a pipe, written before bwrap starts.
func (t netTools) resolvConf() []byte {
	var b bytes.Buffer
	if host, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		for line := range strings.Lines(string(host)) {
			f := strings.Fields(line)
			if len(f) > 0 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") && b.Len()+len(line) < 4096 {
				b.WriteString(strings.TrimSpace(line) + "\n")
			}
		}
	}
	fmt.Fprintf(&b, "nameserver %s\n", t.nameserver())
	return b.Bytes()
}
