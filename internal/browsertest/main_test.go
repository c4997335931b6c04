package browsertest

import (
	"encoding/json"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"aerodisk/internal/testutil"
)

// env is shared by every test: one wasm build, one file server (each test
// listens on a port of its own with the same handler: Server.Fork), one
// chromium (started by the first test that wants it) and one build of the
// reference fixtures.
//
// Tests are isolated by origin, not by profile: storage (OPFS, IndexedDB,
// Web Locks, BroadcastChannels) is per origin, and every test gets its own,
// http://127.0.0.1:PORT, so the tests that share the browser cannot see each
// other's disks, locks or catalogs, and run in parallel (parallel, in
// sched_test.go). When a test ends its origin's storage is cleared (a later
// test may get the same port). A test that changes the browser itself
// keeps a browser of its own (ownSession): a quota override, downloads
// (one download directory per browser), launch flags (--js-flags), tab
// crashes (TestTabCrashes says why), and the memory measurement.
var env struct {
	root         string
	tmp          string
	buildDir     string
	fixturesRoot string
	srv          *Server
	wasmErr      error

	sharedOnce sync.Once
	shared     *Browser
	sharedErr  error

	refMu    sync.Mutex
	refDir   string // the reference fixtures, built once; tests get hard links
	refFixes []testutil.Fixture
	rawMu    sync.Mutex
	raws     map[string]string // reference fixture name → qemu-img's raw conversion
}

func TestMain(m *testing.M) {
	os.Exit(func() int {
		flag.Parse()
		initParallel()
		var err error
		if env.root, err = RepoRoot(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		tmp, err := os.MkdirTemp("", "aerodisk-browsertest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		env.tmp = tmp
		env.buildDir = filepath.Join(tmp, "build")
		env.fixturesRoot = filepath.Join(tmp, "fixtures")
		os.MkdirAll(env.buildDir, 0o755)
		os.MkdirAll(env.fixturesRoot, 0o755)
		// A build failure fails every test that needs the worker (with
		// the compiler's message), not the harness's own test.
		env.wasmErr = BuildWasm(env.root, env.buildDir)
		if env.srv, err = StartServer(env.root, env.buildDir, env.fixturesRoot); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer env.srv.Close()
		defer func() {
			if env.shared != nil {
				env.shared.Close()
			}
		}()
		return m.Run()
	}())
}

func requireWasm(t *testing.T) {
	t.Helper()
	if env.wasmErr != nil {
		t.Fatal(env.wasmErr)
	}
}

// session is what one test drives: a browser (the package's shared one, or
// one of its own) and an origin of its own.
type session struct {
	b   *Browser
	own bool // b is this test's alone
	// URL is the test's origin, http://127.0.0.1:PORT: a port no other
	// test uses, so its storage is its own.
	URL string
	// Backend is the storage backend of the session's harness pages
	// ("opfs" or "idb"; passed as ?backend=).
	Backend string
	logf    func(string, ...any)
}

// testLogf is t.Logf for the browser's console output, dropped once the
// test has ended (a tab may still print while it closes).
func testLogf(t *testing.T) func(string, ...any) {
	var mu sync.Mutex
	done := false
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
	})
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(format, args...)
		}
	}
}

// newOrigin gives the test a server port of its own; when the test ends,
// b forgets what the origin stored and the port closes.
func newOrigin(t *testing.T, b *Browser, own bool) string {
	t.Helper()
	srv := env.srv.Fork()
	t.Cleanup(func() {
		// Runs after the test's tabs are closed (cleanups run last first).
		if !own {
			if err := b.ClearOrigin(srv.URL); err != nil {
				t.Errorf("clearing %s's storage: %v", srv.URL, err)
			}
		}
		srv.Close()
	})
	return srv.URL
}

// sharedSession gives the test an origin of its own in the package's
// shared browser.
func sharedSession(t *testing.T) *session {
	t.Helper()
	env.sharedOnce.Do(func() {
		dir := filepath.Join(env.tmp, "shared")
		profile, downloads := filepath.Join(dir, "profile"), filepath.Join(dir, "downloads")
		os.MkdirAll(profile, 0o755)
		os.MkdirAll(downloads, 0o755)
		env.shared, env.sharedErr = StartBrowser(profile, downloads, nil)
	})
	if env.sharedErr != nil {
		t.Fatal(env.sharedErr)
	}
	return &session{b: env.shared, URL: newOrigin(t, env.shared, false), logf: testLogf(t)}
}

// ownSession starts a browser for this test alone, with flags after
// ChromiumFlags (GCFlags, for one), closed when the test ends.
func ownSession(t *testing.T, flags ...string) *session {
	t.Helper()
	logf := testLogf(t)
	profile, downloads := t.TempDir(), t.TempDir()
	b, err := StartBrowserFlags(profile, downloads, flags, logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return &session{b: b, own: true, URL: newOrigin(t, b, true), logf: logf}
}

// waitDownload waits for a download of the session's browser (its own:
// the download directory is the browser's).
func (s *session) waitDownload(t *testing.T, name string, timeout time.Duration) string {
	t.Helper()
	if !s.own {
		t.Fatal("downloads need a browser of the test's own (ownSession)")
	}
	path, err := s.b.WaitDownload(name, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// backends are the storage backends every DiskManager test runs on.
var backends = []string{"opfs", "idb"}

// eachBackend runs f once per storage backend, as subtests named after it,
// in parallel with each other and with the other parallel tests (t is made
// parallel too; each subtest takes a slot: see parallel).
func eachBackend(t *testing.T, f func(t *testing.T, be string)) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be, func(t *testing.T) {
			parallel(t)
			f(t, be)
		})
	}
}

// newPage opens the harness page in a new tab of the session's browser, at
// its origin, on its backend.
func newPage(t *testing.T, s *session, name string) *Page {
	t.Helper()
	url := s.URL + HarnessPage
	if s.Backend != "" {
		url += "?backend=" + s.Backend
	}
	p, err := s.b.NewPageLog(name, url, s.logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// openDMOn opens, in the shared browser, one page that has opened the
// DiskManager (as globalThis.dm) on the given backend ("opfs" or "idb");
// the session's later pages use the same backend.
func openDMOn(t *testing.T, be string) (*session, *Page) {
	t.Helper()
	return openDMWith(t, be, nil)
}

// openDMWith is openDMOn with more DiskManager.open options (the test-only
// ones, such as _simulateNoByteStreams).
func openDMWith(t *testing.T, be string, options map[string]any) (*session, *Page) {
	t.Helper()
	requireWasm(t)
	s := sharedSession(t)
	return s, openDMIn(t, s, be, options)
}

// openDMIn is openDMWith in a session the test made (ownSession).
func openDMIn(t *testing.T, s *session, be string, options map[string]any) *Page {
	t.Helper()
	requireWasm(t)
	s.Backend = be
	p := newPage(t, s, "page1")
	var backend string
	mustEval(t, p, `return (await H.open({ ...args[1], backend: args[0] })).backend;`, &backend, be, options)
	if backend != be {
		t.Fatalf("DiskManager.open({backend:%q}).backend = %q", be, backend)
	}
	return p
}

// mustEval evaluates body in p (see Page.Eval) and fails the test on error.
func mustEval(t *testing.T, p *Page, body string, out any, args ...any) {
	t.Helper()
	if err := p.Eval(body, out, args...); err != nil {
		if je, ok := err.(*JSError); ok && je.Stack != "" {
			t.Fatalf("%v\n%s", err, je.Stack)
		}
		t.Fatal(err)
	}
}

// evalErr evaluates body, which must reject, and returns the error.
func evalErr(t *testing.T, p *Page, body string, args ...any) *JSError {
	t.Helper()
	var v json.RawMessage
	err := p.Eval(body, &v, args...)
	if err == nil {
		t.Fatalf("expected a rejection, got %s", v)
	}
	je, ok := err.(*JSError)
	if !ok {
		t.Fatal(err)
	}
	return je
}

// wantErrName evaluates body and checks that it rejects with an Error named name.
func wantErrName(t *testing.T, p *Page, name, body string, args ...any) *JSError {
	t.Helper()
	e := evalErr(t, p, body, args...)
	if e.Name != name {
		t.Errorf("rejected with %s (%q), want %s", e.Name, e.Message, name)
	} else if strings.TrimSpace(e.Message) == "" {
		t.Errorf("%s without a message", e.Name)
	}
	return e
}

// fixtureSet is a test's fixtures directory, served under FixturesPath+Rel.
type fixtureSet struct {
	Dir string
	Rel string
	All map[string]testutil.Fixture
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// newFixtures makes this test's fixtures directory (empty).
func newFixtures(t *testing.T) *fixtureSet {
	t.Helper()
	rel := unsafeName.ReplaceAllString(t.Name(), "_")
	dir := filepath.Join(env.fixturesRoot, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &fixtureSet{Dir: dir, Rel: rel, All: map[string]testutil.Fixture{}}
}

// referenceFixtures gives this test the reference image set
// (testutil.Fixtures): built once for the package, hard-linked into the
// test's own fixtures directory (so what the test adds stays its own).
func referenceFixtures(t *testing.T) *fixtureSet {
	t.Helper()
	refDir, refFixes := buildReference(t)
	fs := newFixtures(t)
	ents, err := os.ReadDir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			if err := os.Link(filepath.Join(refDir, e.Name()), filepath.Join(fs.Dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	rel := func(p string) string {
		if p == "" {
			return ""
		}
		return filepath.Join(fs.Dir, filepath.Base(p))
	}
	for _, f := range refFixes {
		f.Path, f.Want = rel(f.Path), rel(f.Want)
		fs.All[f.Name] = f
	}
	return fs
}

// buildReference builds the reference fixtures the first time it is called
// (a build that fails fails its test, and the next caller tries again).
func buildReference(t *testing.T) (string, []testutil.Fixture) {
	t.Helper()
	env.refMu.Lock()
	defer env.refMu.Unlock()
	if env.refFixes == nil {
		dir, err := os.MkdirTemp(env.tmp, "reference-")
		if err != nil {
			t.Fatal(err)
		}
		fx := testutil.Fixtures(t, dir)
		env.refDir, env.refFixes = dir, fx
	}
	return env.refDir, env.refFixes
}

// referenceRaw is testutil.QemuRaw of a reference fixture, converted once
// for the package.
func referenceRaw(t *testing.T, f testutil.Fixture) string {
	t.Helper()
	env.rawMu.Lock()
	defer env.rawMu.Unlock()
	if p, ok := env.raws[f.Name]; ok {
		return p
	}
	if env.raws == nil {
		env.raws = map[string]string{}
	}
	dir := filepath.Join(env.tmp, "reference-raw")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, f.Name+".qemu.raw")
	testutil.QemuImg(t, "convert", "-f", f.QemuFmt, "-O", "raw", filepath.Join(env.refDir, f.Name), out)
	env.raws[f.Name] = out
	return out
}

// URLPath is the path to give H.fixture for a file in the set.
func (fs *fixtureSet) URLPath(name string) string { return fs.Rel + "/" + name }

// Add writes a new file into the set and returns its path. It never
// replaces a file: the reference fixtures are hard links shared by every
// test, and writing over one would change it for all of them.
func (fs *fixtureSet) Add(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(fs.Dir, name)
	if _, err := os.Lstat(path); err == nil {
		t.Fatalf("fixture %s exists already", path)
	}
	return testutil.WriteFile(t, fs.Dir, name, b)
}

// crcFile is the CRC32 of a host file as the API prints it (8 lowercase hex).
func crcFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%08x", h.Sum32())
}

func crcBytes(b []byte) string { return fmt.Sprintf("%08x", crc32.ChecksumIEEE(b)) }

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
