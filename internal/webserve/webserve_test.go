package webserve

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tree makes a served directory with a secret sibling, dotfiles and a
// symlink pointing out of it.
func tree(t *testing.T) (root, secret string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "site")
	secret = filepath.Join(base, "secret.txt")
	write(t, base, "secret.txt", []byte("secret"))
	write(t, root, "index.html", []byte("<!doctype html><title>aero</title>"))
	write(t, root, "web/disk_manager.js", []byte("export const x = 1;\n"))
	write(t, root, "web/m.mjs", []byte("export {};\n"))
	write(t, root, "web/aerodisk.wasm", append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte{0}, 100000)...))
	write(t, root, "web/test/index.html", []byte("test page"))
	write(t, root, "web/nodir/a.txt", []byte("a"))
	write(t, root, "disk.qcow2", []byte("QFI\xfb"))
	write(t, root, ".git/config", []byte("[core]"))
	write(t, root, ".env", []byte("TOKEN=x"))
	write(t, root, "web/.hidden.js", []byte("hidden"))
	if err := os.Symlink(secret, filepath.Join(root, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	return root, secret
}

func newHandler(t *testing.T, mounts ...Mount) *Handler {
	t.Helper()
	h, err := New(mounts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func get(t *testing.T, h http.Handler, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func checkSecurityHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	for k, v := range SecurityHeaders {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, bad := range []string{"'unsafe-eval'", "'unsafe-inline'"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP allows %s: %s", bad, csp)
		}
	}
	if !strings.Contains(csp, "'wasm-unsafe-eval'") {
		t.Errorf("CSP does not allow WebAssembly: %s", csp)
	}
}

func TestContentTypesAndHeaders(t *testing.T) {
	root, _ := tree(t)
	h := newHandler(t, Mount{"/", root})
	h.Gzip = false
	for _, c := range []struct{ path, ctype, body string }{
		{"/", "text/html; charset=utf-8", "<!doctype html><title>aero</title>"},
		{"/index.html", "text/html; charset=utf-8", "<!doctype html><title>aero</title>"},
		{"/web/disk_manager.js", "text/javascript; charset=utf-8", "export const x = 1;\n"},
		{"/web/m.mjs", "text/javascript; charset=utf-8", "export {};\n"},
		{"/web/test/", "text/html; charset=utf-8", "test page"},
		{"/disk.qcow2", "application/octet-stream", "QFI\xfb"},
		{"/web/aerodisk.wasm", "application/wasm", ""},
	} {
		w := get(t, h, c.path)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", c.path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if c.body != "" && w.Body.String() != c.body {
			t.Errorf("GET %s: body %q", c.path, w.Body.String())
		}
		checkSecurityHeaders(t, w)
	}
}

func TestRefusesOutsideAndDotfiles(t *testing.T) {
	root, _ := tree(t)
	h := newHandler(t, Mount{"/", root})
	for _, p := range []string{
		"/../secret.txt", "/web/../../secret.txt", "/%2e%2e/secret.txt", "/web/%2e%2e/%2e%2e/secret.txt",
		"/.git/config", "/.git/", "/.env", "/web/.hidden.js", "/./index.html",
		"/link.txt", "/up/secret.txt", "/..%5csecret.txt", "/web\\..\\..\\secret.txt",
		"/missing.js", "/web/nodir/", // no listings
	} {
		w := get(t, h, p)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404 (body %q)", p, w.Code, w.Body.String())
		}
		if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "TOKEN") || strings.Contains(w.Body.String(), "core") {
			t.Errorf("GET %s leaked %q", p, w.Body.String())
		}
		checkSecurityHeaders(t, w)
	}
	// A raw request line that the client library would have cleaned.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.URL.Path = "/../secret.txt"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNotFound {
		t.Errorf("raw ../: %d", w.Code)
	}
}

func TestDirectoryRedirect(t *testing.T) {
	root, _ := tree(t)
	h := newHandler(t, Mount{"/", root})
	w := get(t, h, "/web/test")
	if w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/web/test/" {
		t.Fatalf("GET /web/test: %d Location %q", w.Code, w.Header().Get("Location"))
	}
	if w := get(t, h, "/index.html/"); w.Code != http.StatusNotFound {
		t.Errorf("file with a trailing slash: %d", w.Code)
	}
}

func TestMethods(t *testing.T) {
	root, _ := tree(t)
	h := newHandler(t, Mount{"/", root})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(m, "/index.html", strings.NewReader("x")))
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: %d", m, w.Code)
		}
		checkSecurityHeaders(t, w)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/web/aerodisk.wasm", nil))
	if w.Code != http.StatusOK || w.Body.Len() != 0 || w.Header().Get("Content-Type") != "application/wasm" {
		t.Errorf("HEAD: %d, %d bytes, %q", w.Code, w.Body.Len(), w.Header().Get("Content-Type"))
	}
}

func TestGzip(t *testing.T) {
	root, _ := tree(t)
	h := newHandler(t, Mount{"/", root})
	plain, _ := os.ReadFile(filepath.Join(root, "web/aerodisk.wasm"))
	for i := 0; i < 2; i++ { // the second answer comes from the cache
		w := get(t, h, "/web/aerodisk.wasm", "Accept-Encoding", "gzip, deflate, br")
		if w.Code != http.StatusOK || w.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("gzip: %d %q", w.Code, w.Header().Get("Content-Encoding"))
		}
		if w.Header().Get("Content-Type") != "application/wasm" || !strings.Contains(w.Header().Get("Vary"), "Accept-Encoding") {
			t.Errorf("headers %v", w.Header())
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("gunzip: %v, %d bytes (want %d)", err, len(got), len(plain))
		}
		if w.Body.Len() > len(plain)/10 {
			t.Errorf("compressed %d bytes to %d", len(plain), w.Body.Len())
		}
	}
	for _, ae := range []string{"", "identity", "gzip;q=0", "br"} {
		w := get(t, h, "/web/aerodisk.wasm", "Accept-Encoding", ae)
		if w.Header().Get("Content-Encoding") != "" || !bytes.Equal(w.Body.Bytes(), plain) {
			t.Errorf("Accept-Encoding %q: encoding %q, %d bytes", ae, w.Header().Get("Content-Encoding"), w.Body.Len())
		}
	}
	// A range request is answered from the plain bytes.
	w := get(t, h, "/web/aerodisk.wasm", "Accept-Encoding", "gzip", "Range", "bytes=0-3")
	if w.Code != http.StatusPartialContent || w.Body.String() != "\x00asm" {
		t.Errorf("range: %d %q", w.Code, w.Body.String())
	}
	// Not compressed: images.
	if w := get(t, h, "/disk.qcow2", "Accept-Encoding", "gzip"); w.Header().Get("Content-Encoding") != "" {
		t.Errorf("qcow2 was compressed")
	}
	// A changed file is compressed again.
	write(t, root, "web/aerodisk.wasm", []byte("\x00asm changed"))
	os.Chtimes(filepath.Join(root, "web/aerodisk.wasm"), plainTime(t), plainTime(t))
	w = get(t, h, "/web/aerodisk.wasm", "Accept-Encoding", "gzip")
	zr, _ := gzip.NewReader(w.Body)
	if got, _ := io.ReadAll(zr); string(got) != "\x00asm changed" {
		t.Errorf("stale gzip cache: %q", got)
	}
}

func plainTime(*testing.T) time.Time { return time.Unix(1700000000, 0) }

func TestConditional(t *testing.T) {
	root, _ := tree(t)
	h := newHandler(t, Mount{"/", root})
	w := get(t, h, "/web/disk_manager.js", "Accept-Encoding", "gzip")
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	w = get(t, h, "/web/disk_manager.js", "Accept-Encoding", "gzip", "If-None-Match", etag)
	if w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", w.Code)
	}
	checkSecurityHeaders(t, w)
}

func TestOverlayMounts(t *testing.T) {
	root, _ := tree(t)
	build := t.TempDir()
	fixtures := t.TempDir()
	write(t, build, "aerodisk.wasm", []byte("\x00asm fresh"))
	write(t, fixtures, "x.img", []byte("fixture"))
	h := newHandler(t, Mount{"/web/", build}, Mount{"/__fixtures__/", fixtures}, Mount{"/", root})
	h.Gzip = false
	if w := get(t, h, "/web/aerodisk.wasm"); w.Body.String() != "\x00asm fresh" {
		t.Errorf("overlay: %q", w.Body.String())
	}
	if w := get(t, h, "/web/disk_manager.js"); w.Code != 200 {
		t.Errorf("fall through: %d", w.Code)
	}
	if w := get(t, h, "/__fixtures__/x.img"); w.Body.String() != "fixture" {
		t.Errorf("fixtures: %d %q", w.Code, w.Body.String())
	}
	if w := get(t, h, "/__fixtures__/../index.html"); w.Code != http.StatusNotFound {
		t.Errorf("fixtures ../: %d", w.Code)
	}
	if _, err := New(Mount{"web", root}); err == nil {
		t.Error("bad prefix accepted")
	}
	if _, err := New(Mount{"/", filepath.Join(root, "missing")}); err == nil {
		t.Error("missing dir accepted")
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"gzip": true, "GZIP": true, "deflate, gzip;q=0.5": true, "gzip; q=0": false, "gzip;q=0.000": false,
		"": false, "br, zstd": false, "x-gzip": false,
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", ae)
		if got := acceptsGzip(r); got != want {
			t.Errorf("acceptsGzip(%q) = %v", ae, got)
		}
	}
}
