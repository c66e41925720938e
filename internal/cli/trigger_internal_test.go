package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/deltaci/deltaci/internal/protocol"
)

// checkoutTop keeps the user's spelling of the path, through a symbolic
// link, and climbs from a subdirectory to the top.
func TestCheckoutTop(t *testing.T) {
	real := t.TempDir()
	if err := os.MkdirAll(filepath.Join(real, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{real, real},
		{filepath.Join(real, "a", "b"), real},
		{link, link},
		{filepath.Join(link, "a"), link},
		{filepath.Join(link, "a", "b"), link},
	} {
		if got := checkoutTop(c.dir, real); got != c.want {
			t.Errorf("checkoutTop(%s, %s) = %s, want %s", c.dir, real, got, c.want)
		}
	}
}

// A run printer prints a job's state once, each log byte once however
// often a reconnected stream sends it again, and a job's last partial
// line before the line saying it ended.
func TestRunPrinterAfterReconnect(t *testing.T) {
	var out bytes.Buffer
	p := newRunPrinter(newConsole(&out, []string{"a"}), true)
	job := func(state string) protocol.RunEvent {
		return protocol.RunEvent{Type: protocol.EventJob, Job: &protocol.Job{Name: "a", State: state,
			Attempts: []protocol.Attempt{{ID: "x", Number: 1, State: state}}}}
	}
	log := func(off int64, s string) protocol.RunEvent {
		return protocol.RunEvent{Type: protocol.EventLog, Log: &protocol.RunLog{Job: "a", Attempt: "x", Number: 1, Offset: off, Data: []byte(s)}}
	}
	for _, ev := range []protocol.RunEvent{
		job("running"), log(0, "one\ntw"),
		// The stream again, after a reconnection.
		job("running"), log(0, "one\ntw"), log(6, "o\nthree"),
		job("succeeded"),
	} {
		if err := p.event(ev); err != nil {
			t.Fatal(err)
		}
	}
	p.close()
	want := "deltaci: a running\na | one\na | two\na | three\ndeltaci: a succeeded\n"
	if out.String() != want {
		t.Errorf("printed\n%s\nwant\n%s", out.String(), want)
	}
}
