package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"aerodisk/internal/webserve"
)

// runServe serves the page: a read-only static file server on loopback with
// the headers the worker needs (see internal/webserve).
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

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: logRequests(h, stderr), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "serving %s on %s\n", dir, serveURL(ln.Addr()))
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

// serveURL is the address to open in a browser.
func serveURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
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
