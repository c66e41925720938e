// Package workspace builds the directories jobs run in. Every attempt gets
// a writable workspace of its own, but none copies the tree it starts from:
// that tree (a run's snapshot of the working tree, a runner's checkout of a
// commit) is made once and kept read-only, and each workspace is a
// copy-on-write view of it, an overlay whose upper layer takes what the job
// writes. A file is copied only when a job changes it, so a workspace costs
// what the job writes, not the size of the tree.
//
// The entry point is Builder: New picks how views are made on this machine
// (Method), Builder.Create makes one workspace over a base tree, and
// Workspace.Remove removes it. RemoveAll clears a directory of workspaces
// that a killed process left behind, mounts included.
//
// The base tree must not change while a workspace over it exists: an
// overlay's lower layer is read, never written, and the kernel leaves
// changes made to it behind a mount's back undefined.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/deltaci/deltaci/internal/core"
)

// Method is how a Builder makes workspaces.
type Method string

// The methods, in the order MethodAuto tries them.
const (
	// MethodAuto picks the first method that works here: MethodOverlay,
	// then MethodFuse, then MethodCopy.
	MethodAuto Method = "auto"
	// MethodOverlay mounts the kernel's overlayfs. The runner mounts it in
	// its own mount namespace, which takes CAP_SYS_ADMIN there: a runner
	// that runs as root.
	MethodOverlay Method = "overlay"
	// MethodFuse mounts Debian's fuse-overlayfs (the fuse-overlayfs
	// package), as the runner's own user through fusermount3: it needs
	// /dev/fuse and no privilege.
	MethodFuse Method = "fuse-overlayfs"
	// MethodCopy copies the whole base tree into each workspace: the
	// fallback where no overlay can be mounted.
	MethodCopy Method = "copy"
)

// Methods lists the methods a user may name, for messages and flags.
var Methods = []Method{MethodAuto, MethodOverlay, MethodFuse, MethodCopy}

// ParseMethod checks a method's name; "" is MethodAuto.
func ParseMethod(s string) (Method, error) {
	if s == "" {
		return MethodAuto, nil
	}
	for _, m := range Methods {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(Methods))
	for i, m := range Methods {
		names[i] = string(m)
	}
	return "", core.E(core.KindInvalid, "workspace method", "%q is not one of %s", s, strings.Join(names, ", "))
}

// The names inside a workspace's directory.
const (
	treeName    = "ws"      // the workspace itself: the job's working directory
	upperName   = "upper"   // what the job wrote
	scratchName = "scratch" // the overlay's own work directory
)

// Builder makes workspaces with one Method. It is safe for concurrent use.
type Builder struct {
	method     Method
	fuse       string // fuse-overlayfs, with MethodFuse
	fusermount string // fusermount3 or fusermount, with MethodFuse
}

// Copying returns a Builder that copies the base tree into each workspace.
// It needs nothing of the machine.
func Copying() *Builder { return &Builder{method: MethodCopy} }

// New returns a Builder of method for workspaces under dir, and checks
// that the method works there by making one workspace over a small tree
// and writing in it (the filesystem under dir matters: an overlay's upper
// layer cannot be on another overlay, for one). MethodAuto takes the first
// method that passes, down to MethodCopy, and logs which. A named method
// that does not work is an error (KindUnavailable) saying why: never a
// silent fallback.
func New(ctx context.Context, log *slog.Logger, method Method, dir string) (*Builder, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, err := ParseMethod(string(method)); err != nil {
		return nil, err
	}
	if method == "" {
		method = MethodAuto
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, core.Wrap(core.KindInternal, "workspace", err)
	}
	if method != MethodAuto {
		b, err := prepare(ctx, method, dir)
		if err != nil {
			return nil, err
		}
		log.DebugContext(ctx, "workspaces", slog.String("method", string(method)))
		return b, nil
	}
	var why []string
	for _, m := range []Method{MethodOverlay, MethodFuse} {
		b, err := prepare(ctx, m, dir)
		if err == nil {
			log.DebugContext(ctx, "workspaces", slog.String("method", string(m)))
			return b, nil
		}
		why = append(why, err.Error())
	}
	log.WarnContext(ctx, "workspaces are copies of the whole tree: no overlay can be mounted here",
		slog.String("why", strings.Join(why, "; ")))
	return Copying(), nil
}

// prepare finds what method needs and proves it works under dir.
func prepare(ctx context.Context, method Method, dir string) (*Builder, error) {
	b := &Builder{method: method}
	unavailable := func(format string, args ...any) error {
		return core.E(core.KindUnavailable, "workspace method "+string(method), format, args...)
	}
	switch method {
	case MethodCopy:
		return b, nil
	case MethodOverlay:
		if msgNoMount != "" {
			return nil, unavailable("%s", msgNoMount)
		}
	case MethodFuse:
		var err error
		if b.fuse, err = exec.LookPath("fuse-overlayfs"); err != nil {
			return nil, unavailable("fuse-overlayfs is not installed: install the fuse-overlayfs package")
		}
		if b.fusermount, err = exec.LookPath("fusermount3"); err != nil {
			if b.fusermount, err = exec.LookPath("fusermount"); err != nil {
				return nil, unavailable("fusermount3 is not installed: install the fuse3 package")
			}
		}
		if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
			return nil, unavailable("cannot open /dev/fuse (%v): give the runner the FUSE device", err)
		} else {
			f.Close()
		}
	}
	if err := b.probe(ctx, dir); err != nil {
		return nil, unavailable("%v", err)
	}
	return b, nil
}

// probe makes a workspace over a one-file tree, writes that file through
// it, and checks that the tree kept its content.
func (b *Builder) probe(ctx context.Context, dir string) error {
	tmp, err := os.MkdirTemp(dir, ".probe-")
	if err != nil {
		return err
	}
	defer RemoveAll(context.WithoutCancel(ctx), tmp)
	base := filepath.Join(tmp, "base")
	if err := os.Mkdir(base, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(base, "f"), []byte("base"), 0o644); err != nil {
		return err
	}
	w, err := b.Create(ctx, base, filepath.Join(tmp, "w"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(w.Dir, "f"), []byte("job"), 0o644); err != nil {
		_ = w.Remove(ctx)
		return fmt.Errorf("writing in a workspace: %w", err)
	}
	got, err := os.ReadFile(filepath.Join(base, "f"))
	if rerr := w.Remove(ctx); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	if string(got) != "base" {
		return errors.New("a write in the workspace changed the tree under it")
	}
	return nil
}

// Method is how b makes workspaces.
func (b *Builder) Method() Method { return b.method }

// Workspace is one job's writable view of a base tree.
type Workspace struct {
	// Dir is the workspace: the job's working directory, where the outputs
	// of the jobs it needs are restored and its own outputs are read.
	Dir string
	// Written is where what is written to Dir lands on disk: the upper
	// layer of a view, Dir itself for a copy. Its disk use is the job's.
	Written string
	// root holds Dir and, for an overlay, its upper and work directories.
	root string
}

// Create makes a workspace over base in root, a directory that must not
// exist yet; the workspace is root/ws. What the job writes there goes to
// root and never to base. Remove removes it; a process that dies before
// that leaves a mount, which RemoveAll of a directory above root clears.
// Errors: KindInvalid for a root that exists or a path an overlay cannot
// name; KindInternal when the view cannot be made.
func (b *Builder) Create(ctx context.Context, base, root string) (*Workspace, error) {
	const op = "workspace"
	if err := os.Mkdir(root, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, core.E(core.KindInvalid, op, "%s already exists", root)
		}
		return nil, core.Wrap(core.KindInternal, op, err)
	}
	w := &Workspace{Dir: filepath.Join(root, treeName), root: root}
	w.Written = w.Dir
	fail := func(err error) (*Workspace, error) {
		_ = RemoveAll(context.WithoutCancel(ctx), root)
		if ctx.Err() != nil {
			return nil, core.Wrap(core.KindCanceled, op, ctx.Err())
		}
		if core.KindOf(err) == core.KindInvalid {
			return nil, err
		}
		return nil, &core.Error{Kind: core.KindInternal, Op: op, Msg: string(b.method) + " over " + base, Err: err}
	}
	if b.method == MethodCopy {
		if err := copyTree(base, w.Dir); err != nil {
			return fail(err)
		}
		return w, nil
	}
	upper, scratch := filepath.Join(root, upperName), filepath.Join(root, scratchName)
	w.Written = upper
	for _, d := range []string{w.Dir, upper, scratch} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fail(err)
		}
	}
	opts, err := overlayOptions(base, upper, scratch)
	if err != nil {
		return fail(err)
	}
	switch b.method {
	case MethodOverlay:
		err = mountOverlay(opts, w.Dir)
	case MethodFuse:
		err = b.mountFuse(ctx, opts, w.Dir)
	default:
		err = fmt.Errorf("unknown method %q", b.method)
	}
	if err != nil {
		return fail(err)
	}
	return w, nil
}

// overlayOptions are the mount options of an overlay of lower under upper.
// Both overlayfs and fuse-overlayfs split options at commas and layers at
// colons: a path holding either (or the backslash that would escape them)
// is refused rather than escaped.
func overlayOptions(lower, upper, work string) (string, error) {
	var opts []string
	for _, p := range [][2]string{{"lowerdir", lower}, {"upperdir", upper}, {"workdir", work}} {
		abs, err := filepath.Abs(p[1])
		if err != nil {
			return "", err
		}
		if i := strings.IndexAny(abs, ",:\\"); i >= 0 {
			return "", core.E(core.KindInvalid, "workspace", "the path %q holds %q, which overlay mount options cannot carry: use a work directory without it", abs, abs[i:i+1])
		}
		opts = append(opts, p[0]+"="+abs)
	}
	return strings.Join(opts, ","), nil
}

// mountFuse starts fuse-overlayfs on dir; it returns once the mount is
// there, with the daemon in the background until the unmount.
func (b *Builder) mountFuse(ctx context.Context, opts, dir string) error {
	// fsync=0: nothing of a workspace needs to outlive a crash.
	cmd := exec.CommandContext(ctx, b.fuse, "-o", opts+",fsync=0", dir)
	cmd.WaitDelay = waitDelay // the daemon gives up our pipe, but never wait on it
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("fuse-overlayfs: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Remove unmounts the workspace and removes it, with what the job wrote,
// also what a job running as root mounted inside it and left there.
func (w *Workspace) Remove(ctx context.Context) error {
	if err := RemoveAll(ctx, w.root); err != nil {
		return core.Wrap(core.KindInternal, "remove workspace", err)
	}
	return nil
}

// Empty makes a workspace in root, a directory that must not exist yet,
// over no base: an empty directory that the caller fills, as for a
// hermetic job, whose workspace holds only the files of its inputs.
// Remove removes it like any other.
func Empty(root string) (*Workspace, error) {
	const op = "workspace"
	if err := os.Mkdir(root, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, core.E(core.KindInvalid, op, "%s already exists", root)
		}
		return nil, core.Wrap(core.KindInternal, op, err)
	}
	w := &Workspace{Dir: filepath.Join(root, treeName), root: root}
	w.Written = w.Dir
	if err := os.Mkdir(w.Dir, 0o755); err != nil {
		_ = removeTree(root)
		return nil, core.Wrap(core.KindInternal, op, err)
	}
	return w, nil
}
