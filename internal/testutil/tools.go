// Package testutil runs the real reference tools (qemu-img, qemu-io,
// xorriso) that tests compare against. A missing tool fails the test: `make
// test` installs them, and a skipped comparison would hide a regression.
package testutil

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// packages names the Debian package that provides each tool.
var packages = map[string]string{
	"qemu-img": "qemu-utils",
	"qemu-io":  "qemu-utils",
	"xorriso":  "xorriso",
}

// Tool returns the path of a required command, failing the test if absent.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required (Debian package %s; `make test` installs it): %v", name, packages[name], err)
	}
	return p
}

// Run runs a required command and returns its stdout; failure fails the test.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(Tool(t, name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, errb.String())
	}
	return out.Bytes()
}

// QemuImg runs qemu-img with args.
func QemuImg(t testing.TB, args ...string) []byte { t.Helper(); return Run(t, "qemu-img", args...) }

// QemuIO runs qemu-io on file (format fmt) with the given -c commands.
func QemuIO(t testing.TB, format, file string, cmds ...string) {
	t.Helper()
	args := []string{"-f", format}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	Run(t, "qemu-io", append(args, file)...)
}

// QemuRaw converts file (format fmt) to raw with qemu-img and returns the path.
func QemuRaw(t testing.TB, format, file string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(file)+".qemu.raw")
	QemuImg(t, "convert", "-f", format, "-O", "raw", file, out)
	return out
}

// WriteFile writes b to dir/name and returns the path.
func WriteFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// MixedData returns n deterministic bytes mixing random and text-like runs
// with zero stretches, so compression, zero detection and sparse paths all see
// realistic input.
func MixedData(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	words := []string{"disk ", "sector ", "cluster ", "the ", "boot ", "image ", "aero ", "\n"}
	for i := 0; i < n; {
		run := int(next()%8192) + 512
		if i+run > n {
			run = n - i
		}
		switch next() % 3 {
		case 0: // random
			for j := i; j < i+run; j++ {
				b[j] = byte(next())
			}
		case 1: // text
			j := i
			for j < i+run {
				w := words[next()%uint64(len(words))]
				j += copy(b[j:i+run], w)
			}
		case 2: // zeros (already)
		}
		i += run
	}
	return b
}

// WriteRepeated writes size bytes of one random 1 MiB block (from seed),
// repeated: data with no all-zero chunk, which every backend stores and
// checksums whole, written without holding it in memory.
func WriteRepeated(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	block := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7}).Read(block)
	for off := int64(0); off < size; off += int64(len(block)) {
		if _, err := f.Write(block[:min(int64(len(block)), size-off)]); err != nil {
			return err
		}
	}
	return f.Close()
}
