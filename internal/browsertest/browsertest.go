// Package browsertest drives Debian's chromium for the web UI's tests
// (chromedp), checks pages with axe-core and saves screenshots. Without
// chromium, or without npm to install axe-core, a test skips with one loud
// line; under CI=true it fails instead.
package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// AxeVersion is the axe-core the tests install from npm.
const AxeVersion = "4.14.1"

// missing skips the test, or fails it under CI=true, saying what is
// missing.
func missing(t testing.TB, what string) {
	t.Helper()
	msg := "!!! " + what + ": the web UI's browser tests are skipped (they fail under CI=true)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Chromium returns the chromium binary: $DELTACI_CHROMIUM, or chromium
// on the PATH.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DELTACI_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "chromium is not installed")
	return ""
}

// browsers bounds the chromium processes of one test binary: each takes
// a few hundred MB and a core while a page loads.
var browsers = make(chan struct{}, 2)

// New starts a headless chromium for the test and returns a context of
// one tab in it; the test's cleanup closes both. headers are sent with
// every request the tab makes.
func New(t testing.TB, headers map[string]string) context.Context {
	t.Helper()
	path := Chromium(t)
	browsers <- struct{}{}
	t.Cleanup(func() { <-browsers })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses its sandbox as root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium %s: %v", path, err)
	}
	if len(headers) > 0 {
		h := network.Headers{}
		for k, v := range headers {
			h[k] = v
		}
		err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h})
			return err
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	return ctx
}

// Do runs steps in the tab within timeout; a failure fails the test with
// what was being done.
func Do(t testing.TB, ctx context.Context, what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Get runs one action that returns a value within timeout.
func Get[T any](t testing.TB, ctx context.Context, what string, timeout time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

var (
	axeOnce sync.Once
	axeSrc  string
	axeErr  error
)

// axeDir is where npm installs axe-core, once per machine.
func axeDir() (string, error) {
	if d := os.Getenv("DELTACI_AXE_DIR"); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "deltaci", "axe-core-"+AxeVersion), nil
}

// Axe returns the source of axe-core, installing it with npm into a cache
// directory the first time.
func Axe(t testing.TB) string {
	t.Helper()
	axeOnce.Do(func() {
		dir, err := axeDir()
		if err != nil {
			axeErr = err
			return
		}
		file := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
		if _, err := os.Stat(file); err != nil {
			npm, err := exec.LookPath("npm")
			if err != nil {
				axeErr = fmt.Errorf("npm is not installed, so axe-core cannot be")
				return
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				axeErr = err
				return
			}
			cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", dir, "axe-core@"+AxeVersion)
			if out, err := cmd.CombinedOutput(); err != nil {
				axeErr = fmt.Errorf("npm install axe-core@%s: %v\n%s", AxeVersion, err, out)
				return
			}
		}
		b, err := os.ReadFile(file)
		axeSrc, axeErr = string(b), err
	})
	if axeErr != nil {
		missing(t, axeErr.Error())
	}
	return axeSrc
}

// Violation is one rule axe-core found broken on a page.
type Violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// CheckA11y runs axe-core on the tab's page and fails the test on each
// serious or critical violation.
func CheckA11y(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	src := Axe(t)
	run := `(async () => { const r = await axe.run(document, {resultTypes: ["violations"]}); return JSON.stringify(r.violations); })()`
	Do(t, ctx, "injecting axe-core into "+page, 60*time.Second, chromedp.Evaluate[chromedp.Void](src+";undefined"))
	raw := Get(t, ctx, "axe-core on "+page, 60*time.Second, chromedp.Evaluate[string](run, chromedp.EvalAwaitPromise))
	var vs []Violation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatalf("axe-core's answer on %s: %v", page, err)
	}
	for _, v := range vs {
		if v.Impact != "serious" && v.Impact != "critical" {
			continue
		}
		var where []string
		for _, n := range v.Nodes {
			where = append(where, n.HTML)
		}
		t.Errorf("%s: axe-core %s violation %s (%s) at %s", page, v.Impact, v.ID, v.Help, strings.Join(where, " | "))
	}
}

// Screenshot saves the whole page as name.png in the test's directory of
// screenshots, and in $DELTACI_SCREENSHOTS when set (to refresh the docs'
// images), and returns its path.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) string {
	t.Helper()
	png := Get(t, ctx, "screenshot of "+name, 30*time.Second, chromedp.FullScreenshot(100))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("DELTACI_SCREENSHOTS"); d != "" {
		if err := os.WriteFile(filepath.Join(d, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot %s", path)
	return path
}
