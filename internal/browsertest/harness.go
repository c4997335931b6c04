// Package browsertest drives the browser engine in a real browser: Debian's
// headless chromium (/usr/bin/chromium, never a downloaded one) over the
// DevTools protocol with chromedp. It builds the worker's wasm itself, serves
// the repository with the project's own static server (internal/webserve,
// the same one as `aerodisk serve`, so the page runs under the real
// Content-Security-Policy) and evaluates async JavaScript in pages, returning
// JSON. The suite is in this package's tests; cmd/bench-browser reuses the
// harness for `make bench`.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/inspector"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"aerodisk/internal/webserve"
)

// ChromiumPath is the browser the tests run: Debian's package `chromium`,
// which `make test` installs when it is missing.
const ChromiumPath = "/usr/bin/chromium"

// ChromiumFlags are the launch flags known to work on these machines (the
// background-networking flags keep chromium off the closed network). Each
// browser also gets a fresh on-disk --user-data-dir: an in-memory
// (incognito) profile fails large OPFS writes.
var ChromiumFlags = []string{
	"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
}

// GCFlags give workers a gc() (V8's --expose-gc), which a test calls during
// an import; a browser started with them changes nothing else. The suite's
// shared browser runs without them.
var GCFlags = []string{"--js-flags=--expose-gc"}

// URL paths the harness serves besides the repository.
const (
	FixturesPath = "/__fixtures__/" // test inputs (FixturesDir)
	HarnessPage  = "/web/test/harness.html"
)

// RepoRoot returns the aerodisk module root, searching up from the working
// directory (go test runs in the package directory).
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module aerodisk\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no aerodisk go.mod above %s", wd)
		}
	}
}

// goTool returns the go command that runs this build.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// BuildWasm builds the test build of the worker (`./wasm` with -tags
// testhooks: wasm/testhooks.go and web/test/worker_hooks.js add the test-only
// operations; GOOS=js GOARCH=wasm, otherwise as `make wasm`
// does) into dir/aerodisk.wasm and copies Go's wasm_exec.js beside it.
func BuildWasm(root, dir string) error {
	out := filepath.Join(dir, "aerodisk.wasm")
	cmd := exec.Command(goTool(), "build", "-tags", "testhooks", "-trimpath", "-ldflags=-s", "-o", out, "./wasm")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the wasm (GOOS=js GOARCH=wasm go build ./wasm): %v\n%s", err, b)
	}
	gr, err := exec.Command(goTool(), "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(gr)), "lib", "wasm", "wasm_exec.js")
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "wasm_exec.js"), b, 0o644)
}

// Server serves the repository root, with the freshly built wasm overlaid on
// /web/ and test inputs under FixturesPath.
type Server struct {
	URL         string // http://127.0.0.1:PORT, no trailing slash
	Root        string
	BuildDir    string
	FixturesDir string
	h           *webserve.Handler
	srv         *httptest.Server
	fork        bool // the handler belongs to the server this one was forked from
}

// StartServer starts a Server on a random loopback port.
func StartServer(root, buildDir, fixturesDir string) (*Server, error) {
	h, err := webserve.New(
		webserve.Mount{Prefix: "/web/", Dir: buildDir},
		webserve.Mount{Prefix: FixturesPath, Dir: fixturesDir},
		webserve.Mount{Prefix: "/", Dir: root},
	)
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(h)
	return &Server{URL: srv.URL, Root: root, BuildDir: buildDir, FixturesDir: fixturesDir, h: h, srv: srv}, nil
}

// Fork starts another listener on a random loopback port serving the same
// files with the same handler: a distinct origin (http://127.0.0.1:PORT),
// whose OPFS, IndexedDB, Web Locks and BroadcastChannels the browser keeps
// apart from every other port's, even in one profile. Closing the fork
// stops only its listener.
func (s *Server) Fork() *Server {
	srv := httptest.NewServer(s.h)
	return &Server{URL: srv.URL, Root: s.Root, BuildDir: s.BuildDir, FixturesDir: s.FixturesDir, h: s.h, srv: srv, fork: true}
}

// Close stops the server (a fork: its listener only).
func (s *Server) Close() {
	s.srv.Close()
	if !s.fork {
		s.h.Close()
	}
}

// Browser is one chromium process with its own profile.
type Browser struct {
	ctx         context.Context // the first tab; cancelling it ends the browser
	cancel      context.CancelFunc
	allocCancel context.CancelFunc
	UserDataDir string
	DownloadDir string
	logf        func(string, ...any)
}

// ErrNoChromium is returned when ChromiumPath is missing.
var ErrNoChromium = errors.New("chromium is required at " + ChromiumPath +
	" (Debian package chromium; `make test` installs it)")

// StartBrowser launches chromium with ChromiumFlags, a profile in
// userDataDir and downloads going to downloadDir. logf receives the pages'
// console output and uncaught exceptions (nil: dropped).
func StartBrowser(userDataDir, downloadDir string, logf func(string, ...any)) (*Browser, error) {
	return StartBrowserFlags(userDataDir, downloadDir, nil, logf)
}

// StartBrowserFlags is StartBrowser with more launch flags after
// ChromiumFlags (GCFlags, for one).
func StartBrowserFlags(userDataDir, downloadDir string, extra []string, logf func(string, ...any)) (*Browser, error) {
	if st, err := os.Stat(ChromiumPath); err != nil || st.IsDir() {
		return nil, ErrNoChromium
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(ChromiumPath), chromedp.UserDataDir(userDataDir)}
	for _, f := range append(slices.Clone(ChromiumFlags), extra...) {
		name, val, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if ok {
			opts = append(opts, chromedp.Flag(name, val))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}), chromedp.WithErrorf(func(string, ...any) {}))
	b := &Browser{ctx: ctx, cancel: cancel, allocCancel: acancel, UserDataDir: userDataDir, DownloadDir: downloadDir, logf: logf}
	// The first call starts the browser and ties it to the context it gets:
	// give it the browser's own context, never a timeout's.
	_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloadDir, EventsEnabled: ptr(true),
	})
	if err == nil {
		// Attach the first tab now, with the browser's context too: a
		// target stays tied to the context of the call that attached it
		// (ClearOrigin sends through it with a timeout).
		err = chromedp.Do(ctx)
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("starting %s: %w", ChromiumPath, err)
	}
	return b, nil
}

// Close ends the browser and waits for it to exit.
func (b *Browser) Close() {
	if b.cancel != nil {
		chromedp.Cancel(b.ctx)
		b.cancel()
		b.allocCancel()
		b.cancel = nil
	}
}

// Version returns the browser's product string (Chrome/156.0...).
func (b *Browser) Version() (string, error) {
	v, err := chromedp.CallBrowser(b.ctx, browser.GetVersion, cdp.Empty{})
	return v.Product, err
}

// Page is one tab.
type Page struct {
	ctx    context.Context
	cancel context.CancelFunc
	b      *Browser
	name   string
	// Timeout bounds each Eval (default 5 minutes).
	Timeout time.Duration
}

// NewPage opens a tab in the browser's default context (sharing its
// storage with the other tabs of its origin, like a user's second tab) at
// url. Its console goes to the browser's logf.
func (b *Browser) NewPage(name, url string) (*Page, error) {
	return b.NewPageLog(name, url, b.logf)
}

// NewPageLog is NewPage with the tab's console output and uncaught
// exceptions going to logf (nil: dropped) instead of the browser's: each
// test sharing a browser hears its own tabs only.
func (b *Browser) NewPageLog(name, url string, logf func(string, ...any)) (*Page, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &Page{ctx: ctx, cancel: cancel, b: b, name: name, Timeout: 5 * time.Minute}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			logf("[%s console.%s] %s", name, ev.Type, strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			logf("[%s uncaught] %s", name, msg)
		}
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("opening a tab: %w", err)
	}
	nctx, ncancel := context.WithTimeout(ctx, 60*time.Second)
	defer ncancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(url)); err != nil {
		cancel()
		return nil, fmt.Errorf("opening %s: %w", url, err)
	}
	return p, nil
}

// Close closes the tab.
func (p *Page) Close() { p.cancel() }

// Crash kills the tab's renderer process (CDP Page.crash), as a crashed or
// killed tab dies: its workers die with it, without running any cleanup,
// and the Web Locks they held are released. The Page is unusable after.
func (p *Page) Crash() {
	crashed := make(chan struct{})
	var once sync.Once
	chromedp.Listen(p.ctx, func(ev any) {
		if _, ok := ev.(*inspector.EventTargetCrashed); ok {
			once.Do(func() { close(crashed) })
		}
	})
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	go func() {
		chromedp.Call(ctx, page.Crash, cdp.Empty{}) // never answers: the renderer is gone
		once.Do(func() { close(crashed) })
	}()
	<-crashed
	p.cancel()
}

// Context is the tab's chromedp context, for actions the helpers lack.
func (p *Page) Context() context.Context { return p.ctx }

// JSError is a rejection or exception in the page.
type JSError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	Stack   string `json:"stack"`
}

func (e *JSError) Error() string { return e.Name + ": " + e.Message }

// evalWrapper runs body (the body of an async function) with H = the
// helpers module (web/test/helpers.js) and args = the JSON arguments, and
// returns a JSON envelope, so exceptions come back with their name.
const evalWrapper = `(async () => {
  try {
    const H = globalThis.__H ??= await import("/web/test/helpers.js");
    const args = %s;
    const value = await (async () => { %s
    })();
    return JSON.stringify({ ok: true, value: value === undefined ? null : value });
  } catch (e) {
    return JSON.stringify({ ok: false, error: {
      name: String(e && e.name || "Error"), message: String(e && e.message || e), stack: String(e && e.stack || "") } });
  }
})()`

// Eval runs body as the body of an async function in the page and decodes
// its return value (JSON-serialisable) into out (nil: ignored). args are
// visible to body as args[0], args[1], ... A rejection returns a *JSError.
func (p *Page) Eval(body string, out any, args ...any) error {
	if args == nil {
		args = []any{}
	}
	aj, err := json.Marshal(args)
	if err != nil {
		return err
	}
	expr := fmt.Sprintf(evalWrapper, aj, body)
	ctx, cancel := context.WithTimeout(p.ctx, p.Timeout)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return fmt.Errorf("evaluating in %s: %w", p.name, err)
	}
	var env struct {
		OK    bool            `json:"ok"`
		Value json.RawMessage `json:"value"`
		Error *JSError        `json:"error"`
	}
	if err := json.Unmarshal([]byte(res), &env); err != nil {
		return fmt.Errorf("decoding %q: %w", res, err)
	}
	if !env.OK {
		return env.Error
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Value, out)
}

// SetFiles puts host files into the page's <input type=file> matching
// selector (HarnessPage has #file, #file2): real disk-backed File objects,
// nothing read into memory up front.
func (p *Page) SetFiles(selector string, paths ...string) error {
	ctx, cancel := context.WithTimeout(p.ctx, 60*time.Second)
	defer cancel()
	return chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS(selector), paths))
}

// OverrideQuota sets the storage quota of origin (the test server's) to
// bytes, as a nearly full disk would; 0 restores the real quota.
func (p *Page) OverrideQuota(origin string, bytes int64) error {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	params := storage.OverrideQuotaForOriginParams{Origin: origin}
	if bytes > 0 {
		q := float64(bytes)
		params.QuotaSize = &q
	}
	_, err := chromedp.Call(ctx, storage.OverrideQuotaForOrigin, params)
	return err
}

// ClearOrigin removes everything origin stored in the browser's profile
// (OPFS, IndexedDB, every other kind of storage): a test that is done with
// its origin leaves a shared profile as it found it. (Chromium 156 answers
// Storage.clearDataForOrigin on a tab only, not on the browser target: it
// is sent through the browser's first tab.)
func (b *Browser) ClearOrigin(origin string) error {
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	_, err := chromedp.Call(ctx, storage.ClearDataForOrigin, storage.ClearDataForOriginParams{Origin: origin, StorageTypes: "all"})
	return err
}

// WaitDownload waits until name is completely downloaded into the
// browser's DownloadDir and returns its path.
func (b *Browser) WaitDownload(name string, timeout time.Duration) (string, error) {
	p := filepath.Join(b.DownloadDir, name)
	deadline := time.Now().Add(timeout)
	for {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			// Chromium writes to a .crdownload file and renames it at the end.
			if _, err := os.Stat(p + ".crdownload"); errors.Is(err, os.ErrNotExist) {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			ents, _ := os.ReadDir(b.DownloadDir)
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			return "", fmt.Errorf("download %s did not complete in %v (download dir holds %q)", name, timeout, names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
