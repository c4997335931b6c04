package browsertest

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"aerodisk/internal/testutil"
)

// env is shared by every test: one wasm build, one server. Each test gets
// its own browser (a fresh profile, so OPFS starts empty) and its own
// fixtures directory.
var env struct {
	root         string
	buildDir     string
	fixturesRoot string
	srv          *Server
	wasmErr      error
}

func TestMain(m *testing.M) {
	os.Exit(func() int {
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
		return m.Run()
	}())
}

func requireWasm(t *testing.T) {
	t.Helper()
	if env.wasmErr != nil {
		t.Fatal(env.wasmErr)
	}
}

// newBrowser starts chromium for this test; it is closed when the test ends.
func newBrowser(t *testing.T) *Browser {
	t.Helper()
	var mu sync.Mutex
	done := false
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf(format, args...)
		}
	}
	profile, downloads := t.TempDir(), t.TempDir()
	b, err := StartBrowser(profile, downloads, logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		mu.Lock()
		done = true
		mu.Unlock()
		b.Close()
	})
	return b
}

// backends are the storage backends every DiskManager test runs on.
var backends = []string{"opfs", "idb"}

// eachBackend runs f once per storage backend, as subtests named after it.
func eachBackend(t *testing.T, f func(t *testing.T, be string)) {
	for _, be := range backends {
		t.Run(be, func(t *testing.T) { f(t, be) })
	}
}

// newPage opens the harness page in a new tab of b, on b's backend.
func newPage(t *testing.T, b *Browser, name string) *Page {
	t.Helper()
	url := env.srv.URL + HarnessPage
	if b.Backend != "" {
		url += "?backend=" + b.Backend
	}
	p, err := b.NewPage(name, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// openDM starts a browser with one page that has opened the DiskManager
// (as globalThis.dm) on OPFS.
func openDM(t *testing.T) (*Browser, *Page) {
	t.Helper()
	return openDMOn(t, "opfs")
}

// openDMOn is openDM on the given backend ("opfs" or "idb"); the browser's
// later pages use the same backend.
func openDMOn(t *testing.T, be string) (*Browser, *Page) {
	t.Helper()
	return openDMWith(t, be, nil)
}

// openDMWith is openDMOn with more DiskManager.open options (the test-only
// ones, such as _simulateNoByteStreams).
func openDMWith(t *testing.T, be string, options map[string]any) (*Browser, *Page) {
	t.Helper()
	requireWasm(t)
	b := newBrowser(t)
	b.Backend = be
	p := newPage(t, b, "page1")
	var backend string
	mustEval(t, p, `return (await H.open({ ...args[1], backend: args[0] })).backend;`, &backend, be, options)
	if backend != be {
		t.Fatalf("DiskManager.open({backend:%q}).backend = %q", be, backend)
	}
	return b, p
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

// referenceFixtures builds the reference image set (testutil.Fixtures) for this test.
func referenceFixtures(t *testing.T) *fixtureSet {
	t.Helper()
	fs := newFixtures(t)
	for _, f := range testutil.Fixtures(t, fs.Dir) {
		fs.All[f.Name] = f
	}
	return fs
}

// URLPath is the path to give H.fixture for a file in the set.
func (fs *fixtureSet) URLPath(name string) string { return fs.Rel + "/" + name }

// Add writes a file into the set and returns its path.
func (fs *fixtureSet) Add(t *testing.T, name string, b []byte) string {
	t.Helper()
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
