package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"aerodisk/internal/webserve"
)

// runServe serves the page: a read-only static file server (on loopback
// unless --addr says otherwise) with the headers the worker needs (see
// internal/webserve).
//
//	aerodisk serve [--dir DIR] [--port PORT] [--addr HOST:PORT]
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"--dir", "--port", "--addr"}, []string{"--no-gzip"})
	if err != nil {
		return err
	}
	if len(f.args) != 0 {
		return usageError(fmt.Sprintf("serve takes no arguments, got %q", f.args))
	}
	addr, err := serveAddr(f.values["--addr"], f.values["--port"], os.Getenv("PORT"))
	if err != nil {
		return err
	}
	dir := f.values["--dir"]
	if dir == "" {
		if dir, err = repoRoot(); err != nil {
			return err
		}
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	h, err := webserve.New(webserve.Mount{Prefix: "/", Dir: dir})
	if err != nil {
		return err
	}
	defer h.Close()
	h.Gzip = !f.bools["--no-gzip"]

	ln, err := net.Listen(listenNetwork(addr), addr)
	if err != nil {
		return err
	}
	srv := newServer(logRequests(h, stderr))
	url, local, exposed := serveURLs(ln.Addr())
	if exposed {
		fmt.Fprintf(stderr, "warning: listening on %s, reachable from the network: anyone who can connect can read every file under %s\n", ln.Addr(), dir)
	}
	fmt.Fprintf(stdout, "serving %s on %s\n", dir, url)
	if local != "" {
		fmt.Fprintf(stdout, "open locally: %s\n", local)
	}
	if _, err := os.Stat(filepath.Join(dir, "web", "aerodisk.wasm")); err != nil {
		fmt.Fprintf(stderr, "note: %s is missing; build it with `make wasm` (make serve does)\n", filepath.Join(dir, "web", "aerodisk.wasm"))
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// serveAddr picks the listen address: --addr as given, else 127.0.0.1 with
// --port, else $PORT, else 8080.
func serveAddr(addr, port, envPort string) (string, error) {
	if addr != "" {
		if port != "" {
			return "", usageError("give --addr or --port, not both")
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", usageError(fmt.Sprintf("--addr %q: want HOST:PORT", addr))
		}
		return addr, nil
	}
	if port == "" {
		port = envPort
	}
	if port == "" {
		port = "8080"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", usageError(fmt.Sprintf("port %q is not a port number", port))
	}
	return net.JoinHostPort("127.0.0.1", port), nil
}

// Server timeouts, variables so tests can shorten them. There is no
// WriteTimeout: it would cut off a multi-GB image download on a slow link.
// ReadTimeout bounds reading a request (headers and body) and never a
// response, as only GET and HEAD are served; once it passes during a long
// download it cancels the request's context, which the file handler does not
// watch.
var (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 60 * time.Second // closes idle keep-alive connections
)

func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
	}
}

// listenNetwork is tcp4 for an IPv4 host: plain tcp turns 0.0.0.0 into a
// dual-stack [::] listener, which is not what was asked for.
func listenNetwork(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		return "tcp4"
	}
	return "tcp"
}

// serveURLs returns the URL of the listen address a, whether a is reachable
// from the network (not loopback), and for an unspecified address (0.0.0.0,
// ::) a loopback URL to open on this machine.
func serveURLs(a net.Addr) (url, local string, exposed bool) {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/", "", true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return httpURL(host, port), "", true
	}
	ip = ip.Unmap()
	url = httpURL(ip.String(), port)
	switch {
	case ip.IsLoopback():
		return url, "", false
	case ip == netip.IPv4Unspecified():
		local = httpURL("127.0.0.1", port)
	case ip == netip.IPv6Unspecified():
		local = httpURL("::1", port)
	}
	return url, local, true
}

// httpURL brackets IPv6 hosts and escapes a zone's % (RFC 6874).
func httpURL(host, port string) string {
	return "http://" + strings.ReplaceAll(net.JoinHostPort(host, port), "%", "%25") + "/"
}

// repoRoot finds the aerodisk module root from the working directory up, so
// `go run ./cmd/aerodisk serve` from anywhere in the checkout serves the
// page; outside a checkout it serves the working directory.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && isAerodiskModule(b) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return wd, nil
		}
		d = parent
	}
}

func isAerodiskModule(gomod []byte) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && f[1] == "aerodisk" {
			return true
		}
	}
	return false
}

// logRequests logs failed requests (status ≥ 400) to w: a missing file is
// the usual reason a page does not start.
func logRequests(next http.Handler, w io.Writer) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.status >= 400 {
			fmt.Fprintf(w, "%s %s → %d\n", r.Method, r.URL.Path, sw.status)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
