package crc32wasm

import (
	"bytes"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const committed = "../../web/crc32.wasm"

// The committed kernel is what the generator writes today.
func TestCommittedUpToDate(t *testing.T) {
	b, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, Module()) {
		t.Fatalf("%s is stale: run `go generate ./internal/crc32wasm`", committed)
	}
}

// The kernel, run by Node's V8 through web/crc32_kernel.js (the helper's
// own driver), agrees with hash/crc32 on random data of many lengths — below,
// at and past the 1 MiB blocks of the SIMD update16 — in one call and
// continued across pieces of uneven sizes (testdata/run.js checks that both
// agree).
func TestKernelMatchesHashCRC32(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required (make test installs it): ", err)
	}
	data := make([]byte, 6<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	lens := []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 255, 1000, 4095, 4096, 4097, 65536, 1<<20 - 1, 1 << 20, 1<<20 + 3, 2 << 20, 3 << 20, 5<<20 + 17, 6 << 20}
	for range 20 {
		lens = append(lens, r.IntN(len(data)+1))
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "data")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	strs := make([]string, len(lens))
	for i, n := range lens {
		strs[i] = strconv.Itoa(n)
	}
	out, err := exec.Command(node, "testdata/run.js", "check", committed, file, strings.Join(strs, ",")).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	if len(got) != len(lens) {
		t.Fatalf("node printed %d CRCs for %d lengths:\n%s", len(got), len(lens), out)
	}
	for i, n := range lens {
		want := crc32.ChecksumIEEE(data[:n])
		if got[i] != strconv.FormatUint(uint64(want), 10) {
			t.Errorf("len %d: kernel %s, hash/crc32 %d", n, got[i], want)
		}
	}
	if !t.Failed() {
		t.Logf("%d lengths agree", len(lens))
	}
}
