package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
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
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	if err != nil {
		t.Fatalf("serve printed nothing: %v (stderr %q)", err, errOut.String())
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("no URL in %q", line)
	}
	return strings.TrimSpace(line[i:])
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
