package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"aerodisk/internal/webserve"
)

// lockedBuffer is a bytes.Buffer safe for the server goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs `aerodisk serve args...` until the test ends and returns
// the URL it printed.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	url, _, _ := startServeOut(t, 1, args...)
	return url
}

// startServeOut is startServe that also returns the first n lines of stdout
// (the URL's line included) and what stderr had by then.
func startServeOut(t *testing.T, n int, args ...string) (url string, lines []string, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve"}, args...), pw, &errOut)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, errOut.String())
			}
		case <-time.After(5 * time.Second):
			t.Error("serve did not stop on cancel")
		}
	})
	br := bufio.NewReader(pr)
	for len(lines) < n {
		line, err := br.ReadString('\n')
		if err != nil {
			go io.Copy(io.Discard, pr)
			t.Fatalf("serve printed %q: %v (stderr %q)", lines, err, errOut.String())
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	go io.Copy(io.Discard, br)
	i := strings.Index(lines[0], "http://")
	if i < 0 {
		t.Fatalf("no URL in %q", lines[0])
	}
	return lines[0][i:], lines, errOut.String()
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "web"), 0o755)
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html>"), 0o644)
	wasm := append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte("go wasm "), 10000)...)
	os.WriteFile(filepath.Join(dir, "web", "aerodisk.wasm"), wasm, 0o644)
	os.WriteFile(filepath.Join(dir, "web", "disk_manager.js"), []byte("export {}"), 0o644)
	os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
	os.WriteFile(filepath.Join(dir, ".git", "config"), []byte("[core]"), 0o644)

	url := startServe(t, "--dir", dir, "--port", "0")
	if !strings.HasPrefix(url, "http://127.0.0.1:") || !strings.HasSuffix(url, "/") {
		t.Fatalf("URL %q", url)
	}
	// http.Client asks for gzip itself and decompresses transparently; ask
	// explicitly to see the encoding.
	req, _ := http.NewRequest("GET", url+"web/aerodisk.wasm", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/wasm" || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("wasm: %d %v", resp.StatusCode, resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); !bytes.Equal(got, wasm) {
		t.Errorf("wasm body differs (%d bytes)", len(got))
	}
	for k, v := range webserve.SecurityHeaders {
		if resp.Header.Get(k) != v {
			t.Errorf("%s: %q", k, resp.Header.Get(k))
		}
	}
	for path, want := range map[string]int{
		"": 200, "index.html": 200, "web/disk_manager.js": 200,
		".git/config": 404, "../" + filepath.Base(dir) + "/index.html": 404, "%2e%2e/etc/passwd": 404,
	} {
		// Send the path as written: Go's client would clean ../ otherwise.
		req, _ := http.NewRequest("GET", url, nil)
		req.URL.Opaque = "/" + path
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /%s: %d, want %d", path, resp.StatusCode, want)
		}
		if resp.Header.Get("Content-Security-Policy") != webserve.CSP {
			t.Errorf("GET /%s: no CSP", path)
		}
	}
	resp, err = http.Get(url + "web/disk_manager.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("js Content-Type %q", ct)
	}
}

func TestServeDefaultsToRepoRoot(t *testing.T) {
	// The test runs in cmd/aerodisk; the default directory is the module root.
	url := startServe(t, "--addr", "127.0.0.1:0")
	resp, err := http.Get(url + "go.mod")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !isAerodiskModule(b) {
		t.Errorf("GET /go.mod: %d %q", resp.StatusCode, b)
	}
}

func TestServeAddr(t *testing.T) {
	for _, c := range []struct {
		addr, port, env, want string
		bad                   bool
	}{
		{want: "127.0.0.1:8080"},
		{env: "9000", want: "127.0.0.1:9000"},
		{port: "9001", env: "9000", want: "127.0.0.1:9001"},
		{addr: "0.0.0.0:80", env: "9000", want: "0.0.0.0:80"},
		{addr: "[::1]:0", want: "[::1]:0"},
		{port: "http", bad: true},
		{port: "70000", bad: true},
		{addr: "localhost", bad: true},
		{addr: "127.0.0.1:1", port: "2", bad: true},
	} {
		got, err := serveAddr(c.addr, c.port, c.env)
		if c.bad != (err != nil) || got != c.want && !c.bad {
			t.Errorf("serveAddr(%q, %q, %q) = %q, %v", c.addr, c.port, c.env, got, err)
		}
	}
	if _, errOut, code := aerodisk(t, "serve", "extra"); code == 0 || !strings.Contains(errOut, "no arguments") {
		t.Errorf("serve extra: %d %q", code, errOut)
	}
	if _, errOut, code := aerodisk(t, "serve", "--dir", filepath.Join(t.TempDir(), "nope"), "--port", "0"); code == 0 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing dir: %d %q", code, errOut)
	}
}

// serveDir is a directory with an index.html to serve.
func serveDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestServeListenAddress(t *testing.T) {
	for _, c := range []struct {
		addr, host string // host as printed in the URL
		local      string // loopback host of the "open locally" line, if any
		exposed    bool
		v6         bool
	}{
		{addr: "127.0.0.1:0", host: "127.0.0.1"},
		{addr: "localhost:0", host: "127.0.0.1"},
		{addr: "0.0.0.0:0", host: "0.0.0.0", local: "127.0.0.1", exposed: true},
		{addr: "[::1]:0", host: "[::1]", v6: true},
		{addr: "[::]:0", host: "[::]", local: "[::1]", exposed: true, v6: true},
	} {
		t.Run(c.addr, func(t *testing.T) {
			if c.v6 {
				ln, err := net.Listen("tcp", c.addr)
				if err != nil {
					t.Skipf("no IPv6: %v", err)
				}
				ln.Close()
			}
			n := 1
			if c.local != "" {
				n = 2
			}
			got, lines, stderr := startServeOut(t, n, "--dir", serveDir(t), "--addr", c.addr)
			u, err := url.Parse(got)
			if err != nil || u.Path != "/" {
				t.Fatalf("URL %q: %v", got, err)
			}
			host, port, _ := net.SplitHostPort(u.Host)
			if want := strings.Trim(c.host, "[]"); host != want || !strings.HasPrefix(u.Host, c.host+":") || port == "" || port == "0" {
				t.Errorf("URL %q, want host %s and the real port", got, c.host)
			}
			if warned := strings.Contains(stderr, "reachable from the network"); warned != c.exposed {
				t.Errorf("network warning %v, want %v: stderr %q", warned, c.exposed, stderr)
			}
			open := got
			if c.local != "" {
				want := "open locally: http://" + c.local + ":" + port + "/"
				if lines[1] != want {
					t.Fatalf("second line %q, want %q", lines[1], want)
				}
				open = strings.TrimPrefix(lines[1], "open locally: ")
			}
			resp, err := http.Get(open)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %d", open, resp.StatusCode)
			}
		})
	}
}

func TestServeURLs(t *testing.T) {
	for _, c := range []struct {
		addr       net.TCPAddr
		url, local string
		exposed    bool
	}{
		{net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}, "http://127.0.0.1:80/", "", false},
		{net.TCPAddr{IP: net.IPv4(127, 1, 2, 3), Port: 80}, "http://127.1.2.3:80/", "", false},
		{net.TCPAddr{IP: net.IPv6loopback, Port: 80}, "http://[::1]:80/", "", false},
		{net.TCPAddr{IP: net.IPv4zero, Port: 80}, "http://0.0.0.0:80/", "http://127.0.0.1:80/", true},
		{net.TCPAddr{IP: net.IPv6unspecified, Port: 80}, "http://[::]:80/", "http://[::1]:80/", true},
		{net.TCPAddr{IP: net.IPv4(192, 168, 1, 5), Port: 80}, "http://192.168.1.5:80/", "", true},
		{net.TCPAddr{IP: net.ParseIP("2001:db8::5"), Port: 80}, "http://[2001:db8::5]:80/", "", true},
		{net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 80, Zone: "eth0"}, "http://[fe80::1%25eth0]:80/", "", true},
	} {
		url, local, exposed := serveURLs(&c.addr)
		if url != c.url || local != c.local || exposed != c.exposed {
			t.Errorf("serveURLs(%v) = %q, %q, %v; want %q, %q, %v", &c.addr, url, local, exposed, c.url, c.local, c.exposed)
		}
	}
}

func TestServerTimeouts(t *testing.T) {
	srv := newServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Errorf("timeouts: header %v, read %v, idle %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
	}
	// A write timeout would cut off a long download.
	if srv.WriteTimeout != 0 {
		t.Errorf("WriteTimeout %v", srv.WriteTimeout)
	}
}

// shortTimeouts sets the server timeouts that are not zero here until the
// test ends.
func shortTimeouts(t *testing.T, header, read, idle time.Duration) {
	for _, v := range []struct {
		p *time.Duration
		d time.Duration
	}{{&readHeaderTimeout, header}, {&readTimeout, read}, {&idleTimeout, idle}} {
		if v.d != 0 {
			old := *v.p
			*v.p = v.d
			t.Cleanup(func() { *v.p = old })
		}
	}
}

// dialServe serves a directory with an index.html and connects to it.
func dialServe(t *testing.T) net.Conn {
	u, err := url.Parse(startServe(t, "--dir", serveDir(t), "--port", "0"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestServeClosesIdleConnections(t *testing.T) {
	shortTimeouts(t, 0, 0, 200*time.Millisecond)
	conn := dialServe(t)
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("GET /: %d, close %v; want a kept-alive 200", resp.StatusCode, resp.Close)
	}
	// The bound only keeps a broken server from hanging the test.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: read %v, want EOF (closed by the server)", err)
	}
}

func TestServeCutsOffSlowHeaders(t *testing.T) {
	shortTimeouts(t, 200*time.Millisecond, 0, 0)
	conn := dialServe(t)
	// A whole request, a byte every 20 ms: about 2 s, ten times the timeout.
	req := "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + strings.Repeat("a", 80) + "\r\n\r\n"
	stop := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		i := 0
		defer func() { sent <- i }()
		for ; i < len(req); i++ {
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	close(stop)
	n := <-sent
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after 5 s (%d of %d bytes sent)", n, len(req))
	}
	if n == len(req) {
		t.Errorf("server waited for the whole request (%q)", got)
	}
	// Cut off mid-line, net/http answers 400 before closing; else nothing.
	if len(got) != 0 && !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
		t.Errorf("after %d of %d bytes: %q", n, len(req), got)
	}
}

func TestServeLongDownloadOutlivesReadTimeout(t *testing.T) {
	shortTimeouts(t, 200*time.Millisecond, 200*time.Millisecond, 0)
	dir := t.TempDir()
	// Bigger than the socket buffers, so the server is still writing when
	// the read timeout passes.
	img := make([]byte, 32<<20)
	for i := range img {
		img[i] = byte(i ^ i>>11)
	}
	if err := os.WriteFile(filepath.Join(dir, "disk.img"), img, 0o644); err != nil {
		t.Fatal(err)
	}
	url := startServe(t, "--dir", dir, "--port", "0")
	resp, err := http.Get(url + "disk.img")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * readTimeout)
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("download cut off after %d bytes: %v", 1+len(rest), err)
	}
	if got := append(first, rest...); !bytes.Equal(got, img) {
		t.Errorf("downloaded %d bytes, want the %d of the file", len(got), len(img))
	}
}
