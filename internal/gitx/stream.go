package gitx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os/exec"
	"strings"
	"time"

	"github.com/deltaci/deltaci/internal/core"
)

// stream runs git in dir like run, but hands its stdout to parse while git
// is still writing it, so that a listing of any size is never held in
// memory as a whole. stdin may be nil. parse must read to EOF or return an
// error; on an error git is stopped and that error is returned.
func stream(ctx context.Context, dir string, stdin io.Reader, parse func(*bufio.Reader) error, args ...string) error {
	op := "git"
	if len(args) > 0 {
		op += " " + args[0]
	}
	// Our own cancel stops git when parse gives up half way.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "git", append([]string{"-c", "core.quotepath=off"}, args...)...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return core.Wrap(core.KindInternal, op, err)
	}
	if err := cmd.Start(); err != nil {
		return gitError(ctx, op, dir, err, "")
	}
	perr := parse(bufio.NewReaderSize(stdout, 64<<10))
	if perr != nil {
		cancel()
	}
	werr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return core.Wrap(core.KindCanceled, op, ctx.Err())
	case werr != nil && perr == nil:
		return gitError(ctx, op, dir, werr, strings.TrimSpace(stderr.String()))
	case perr != nil:
		// git's own complaint, if any, says more than a parse error.
		if msg := strings.TrimSpace(stderr.String()); msg != "" && werr != nil && exitCode(werr) > 0 {
			return &core.Error{Kind: core.KindInternal, Op: op, Msg: msg, Err: werr}
		}
		return perr
	}
	return nil
}

// gitError classifies a failure to start or finish git the way run does:
// KindCanceled, KindUnavailable (no git), KindInvalid (no such dir), or
// KindInternal with git's stderr as Msg and the *exec.ExitError as Err.
func gitError(ctx context.Context, op, dir string, err error, stderr string) error {
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return core.Wrap(core.KindCanceled, op, ctx.Err())
	case errors.Is(err, exec.ErrNotFound):
		return &core.Error{Kind: core.KindUnavailable, Op: op, Msg: "git is not installed or not in PATH", Err: err}
	case errors.Is(err, fs.ErrNotExist):
		return core.E(core.KindInvalid, op, "no such directory: %s", dir)
	case !errors.As(err, &exitErr):
		return core.Wrap(core.KindInternal, op, err)
	}
	return &core.Error{Kind: core.KindInternal, Op: op, Msg: stderr, Err: err}
}

// readRecord returns the next NUL- or newline-terminated record (sep), without
// the separator, and io.EOF after the last one. The slice is only valid
// until the next call. A last record without separator is returned as is.
func readRecord(r *bufio.Reader, sep byte, buf *[]byte) ([]byte, error) {
	line, err := r.ReadSlice(sep)
	if err == nil {
		return line[:len(line)-1], nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return line, nil
		}
		return nil, err
	}
	// A record longer than the buffer (a very long path): collect it.
	*buf = append((*buf)[:0], line...)
	for {
		line, err = r.ReadSlice(sep)
		*buf = append(*buf, line...)
		switch {
		case err == nil:
			return (*buf)[:len(*buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return *buf, nil
		default:
			return nil, err
		}
	}
}
