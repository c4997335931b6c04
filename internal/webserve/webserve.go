// Package webserve is the small static file server behind `aerodisk serve`
// and the browser tests: it serves directories read-only with the headers the
// page needs (a strict Content-Security-Policy that allows WebAssembly but no
// eval, cross-origin isolation, nosniff, revalidation on every load) and the
// content types browsers insist on (application/wasm for streaming
// compilation, text/javascript for module scripts and workers).
//
// It never serves anything outside its directories: every path segment that
// starts with a dot (.., .git, .env) is refused, and files are opened through
// os.Root, so a symbolic link cannot lead out either. There are no directory
// listings; a directory serves its index.html.
package webserve

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

// CSP is the Content-Security-Policy sent with every response: scripts and
// workers only from this origin, WebAssembly compilation allowed
// ('wasm-unsafe-eval'), no eval, no inline script or style.
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; " +
	"connect-src 'self'; img-src 'self' blob: data:; style-src 'self'; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'"

// SecurityHeaders are set on every response, errors included.
var SecurityHeaders = map[string]string{
	"Content-Security-Policy":      CSP,
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Embedder-Policy": "require-corp",
	"X-Content-Type-Options":       "nosniff",
	"Cache-Control":                "no-cache",
}

// contentTypes are the types served; anything else is
// application/octet-stream. The system MIME table is not consulted: it
// varies between machines (one names .qcow2 application/x-qemu-disk).
var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".htm":   "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".json":  "application/json",
	".map":   "application/json",
	".wasm":  "application/wasm",
	".ts":    "text/plain; charset=utf-8", // .d.ts files, for reading
	".md":    "text/plain; charset=utf-8",
	".txt":   "text/plain; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".webp":  "image/webp",
	".woff2": "font/woff2",
	".gz":    "application/gzip",
}

// ContentType returns the Content-Type served for a file name.
func ContentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	return "application/octet-stream"
}

// gzipTypes are compressed on the fly when the client accepts gzip. The
// compressed bytes are cached per file (keyed by size and modification time),
// so each version is compressed once. Measured on the 5.4 MB worker wasm:
// level 6 gives 27.6% in 0.42 s, level 9 27.4% in 0.97 s, level 1 33.5% in
// 0.11 s; the default level is the trade for a file rebuilt often.
var gzipTypes = map[string]bool{".wasm": true, ".js": true, ".mjs": true, ".html": true, ".css": true, ".json": true}

// Mount serves the directory Dir under the URL path Prefix ("/" or
// "/something/"). Several mounts form an overlay: the first one with a
// matching prefix that has the file serves it.
type Mount struct {
	Prefix string
	Dir    string
}

// Handler serves files from mounts.
type Handler struct {
	mounts []mount
	// Gzip enables on-the-fly gzip (cached) for compressible types; on by default.
	Gzip bool

	mu    sync.Mutex
	cache map[string]gzEntry
}

type mount struct {
	prefix string
	root   *os.Root
}

type gzEntry struct {
	size    int64
	modTime time.Time
	data    []byte
}

// New opens each mount's directory and returns a Handler. Close releases them.
func New(mounts ...Mount) (*Handler, error) {
	h := &Handler{Gzip: true, cache: map[string]gzEntry{}}
	for _, m := range mounts {
		if !strings.HasPrefix(m.Prefix, "/") || !strings.HasSuffix(m.Prefix, "/") {
			h.Close()
			return nil, fmt.Errorf("webserve: mount prefix %q must start and end with /", m.Prefix)
		}
		st, err := os.Stat(m.Dir)
		if err != nil {
			h.Close()
			return nil, err
		}
		if !st.IsDir() {
			h.Close()
			return nil, fmt.Errorf("webserve: %s is not a directory", m.Dir)
		}
		r, err := os.OpenRoot(m.Dir)
		if err != nil {
			h.Close()
			return nil, err
		}
		h.mounts = append(h.mounts, mount{m.Prefix, r})
	}
	return h, nil
}

// Close releases the mounted directories.
func (h *Handler) Close() error {
	for _, m := range h.mounts {
		m.root.Close()
	}
	h.mounts = nil
	return nil
}

// setSecurityHeaders writes SecurityHeaders into w's header.
func setSecurityHeaders(w http.ResponseWriter) {
	for k, v := range SecurityHeaders {
		w.Header().Set(k, v)
	}
}

// WithSecurityHeaders wraps any handler so its responses carry SecurityHeaders.
func WithSecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w)
		next.ServeHTTP(w, r)
	})
}

// cleanPath returns the request path relative to the served tree, or ok ==
// false when any segment is empty-dot, dot-dot or a dotfile.
func cleanPath(p string) (rel string, dir bool, ok bool) {
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) || strings.Contains(p, "\\") {
		return "", false, false
	}
	dir = strings.HasSuffix(p, "/")
	var segs []string
	for _, s := range strings.Split(p[1:], "/") {
		if s == "" {
			continue
		}
		if strings.HasPrefix(s, ".") {
			return "", false, false
		}
		segs = append(segs, s)
	}
	return strings.Join(segs, "/"), dir, true
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// r.URL.Path is already percent-decoded, so %2e%2e arrives as "..".
	for _, m := range h.mounts {
		if !strings.HasPrefix(r.URL.Path, m.prefix) {
			continue
		}
		rel, isDir, ok := cleanPath("/" + strings.TrimPrefix(r.URL.Path, m.prefix))
		if !ok {
			http.NotFound(w, r)
			return
		}
		if h.serveFrom(w, r, m.root, rel, isDir) {
			return
		}
	}
	http.NotFound(w, r)
}

// serveFrom serves rel from root and reports whether it did (false: not
// there, try the next mount).
func (h *Handler) serveFrom(w http.ResponseWriter, r *http.Request, root *os.Root, rel string, wantDir bool) bool {
	name := rel
	if name == "" {
		name = "."
	}
	f, err := root.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false
	}
	if st.IsDir() {
		if !wantDir {
			// /web → /web/ so relative URLs in its index.html resolve.
			http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
			return true
		}
		f.Close()
		name = path.Join(name, "index.html")
		if f, err = root.Open(name); err != nil {
			return false
		}
		if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
			return false
		}
	} else if wantDir || !st.Mode().IsRegular() {
		return false
	}
	w.Header().Set("Content-Type", ContentType(name))
	ext := strings.ToLower(path.Ext(name))
	if h.Gzip && gzipTypes[ext] && r.Header.Get("Range") == "" && acceptsGzip(r) {
		data, err := h.gzipped(root, name, f, st)
		if err == nil {
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Add("Vary", "Accept-Encoding")
			w.Header().Set("ETag", etag(st, "-gz"))
			http.ServeContent(w, r, name, st.ModTime(), bytes.NewReader(data))
			return true
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			http.Error(w, "read error", http.StatusInternalServerError)
			return true
		}
	}
	if gzipTypes[ext] {
		w.Header().Add("Vary", "Accept-Encoding")
	}
	w.Header().Set("ETag", etag(st, ""))
	http.ServeContent(w, r, name, st.ModTime(), f)
	return true
}

func etag(st fs.FileInfo, suffix string) string {
	return fmt.Sprintf(`"%x-%x%s"`, st.ModTime().UnixNano(), st.Size(), suffix)
}

// acceptsGzip reports whether Accept-Encoding allows gzip (and does not give
// it q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// maxGzipSize bounds what is compressed in memory; bigger files go out as is.
const maxGzipSize = 64 << 20

func (h *Handler) gzipped(root *os.Root, name string, f *os.File, st fs.FileInfo) ([]byte, error) {
	if st.Size() > maxGzipSize {
		return nil, errors.New("too big to compress in memory")
	}
	key := fmt.Sprintf("%p/%s", root, name)
	h.mu.Lock()
	e, ok := h.cache[key]
	h.mu.Unlock()
	if ok && e.size == st.Size() && e.modTime.Equal(st.ModTime()) {
		return e.data, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(zw, f); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.cache[key] = gzEntry{st.Size(), st.ModTime(), buf.Bytes()}
	h.mu.Unlock()
	return buf.Bytes(), nil
}
