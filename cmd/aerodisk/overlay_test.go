package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aerodisk/internal/checksum"
	"aerodisk/internal/layer"
	"aerodisk/internal/storage"
	"aerodisk/internal/testutil"
)

// guestWrites writes into the overlay file the way a machine would
// (through internal/layer) and keeps the model in step.
func guestWrites(t *testing.T, path string, base []byte, m []byte, seed uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := layer.Open(storage.File{File: f}, true)
	if err != nil {
		t.Fatal(err)
	}
	l.SetBelow(bytes.NewReader(base))
	r := rand.New(rand.NewPCG(seed, seed))
	for range 40 {
		off := r.Int64N(int64(len(m))/512) * 512
		n := min(int64(len(m))-off, 512*(1+r.Int64N(200)))
		if r.IntN(4) == 0 {
			if err := l.Discard(off, n); err != nil {
				t.Fatal(err)
			}
			clear(m[off : off+n])
			continue
		}
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		if _, err := l.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		copy(m[off:], p)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOverlayCreateInfoCommit(t *testing.T) {
	for _, baseFormat := range []string{"raw", "aerospar"} {
		t.Run(baseFormat, func(t *testing.T) {
			dir := t.TempDir()
			const size = 4 << 20
			base := make([]byte, size)
			for i := range base {
				base[i] = byte(i * 7 >> 9)
			}
			rawPath := filepath.Join(dir, "src.img")
			if err := os.WriteFile(rawPath, base, 0o644); err != nil {
				t.Fatal(err)
			}
			basePath := rawPath
			if baseFormat == "aerospar" {
				basePath = filepath.Join(dir, "base.aerospar")
				mustAerodisk(t, "convert", "-O", "aerospar", rawPath, basePath)
			}
			sub := filepath.Join(dir, "vm")
			os.Mkdir(sub, 0o755)
			ov := filepath.Join(sub, "disk.aerolayr")
			// The base is named relative to the overlay's directory.
			mustAerodisk(t, "create", "-b", filepath.Join("..", filepath.Base(basePath)), ov)
			info := mustAerodisk(t, "info", ov)
			for _, want := range []string{"file format: aerolayr", "backing file: ../" + filepath.Base(basePath), "backing image:", "file format: " + baseFormat, "allocated: "} {
				if !strings.Contains(info, want) {
					t.Fatalf("info lacks %q:\n%s", want, info)
				}
			}
			if out := mustAerodisk(t, "checksum", ov); !strings.HasPrefix(out, checksum.Hex(checksum.Update(0, base))) {
				t.Fatalf("a new overlay reads as its base: %s", out)
			}

			m := append([]byte(nil), base...)
			baseView := append([]byte(nil), base...)
			guestWrites(t, ov, baseView, m, 1)
			mustAerodisk(t, "check", ov)
			want := checksum.Hex(checksum.Update(0, m))
			if out := mustAerodisk(t, "checksum", ov); !strings.HasPrefix(out, want) {
				t.Fatalf("overlay checksum %s, want %s", out, want)
			}
			out := filepath.Join(dir, "flat.img")
			mustAerodisk(t, "convert", "-O", "raw", ov, out)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, m) {
				t.Fatal("converting the overlay does not give the written disk")
			}
			// The base is untouched until commit.
			if out := mustAerodisk(t, "checksum", basePath); !strings.HasPrefix(out, checksum.Hex(checksum.Update(0, base))) {
				t.Fatal("the base changed before commit")
			}
			mustAerodisk(t, "commit", ov)
			if out := mustAerodisk(t, "checksum", basePath); !strings.HasPrefix(out, want) {
				t.Fatalf("base after commit: %s, want %s", out, want)
			}
			if out := mustAerodisk(t, "checksum", ov); !strings.HasPrefix(out, want) {
				t.Fatalf("overlay after commit: %s, want %s", out, want)
			}
			if info := mustAerodisk(t, "info", ov); !strings.Contains(info, "allocated: 0 B") && baseFormat == "aerospar" {
				// An emptied overlay over a sparse base allocates only the base's data.
				t.Logf("info after commit:\n%s", info)
			}
			fi, _ := os.Stat(ov)
			if fi.Size() != layer.DefaultBlockSize {
				t.Fatalf("the emptied overlay is %d bytes, want a blank layer", fi.Size())
			}
			mustAerodisk(t, "check", basePath)
		})
	}
}

func TestOverlayRefusals(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "b.img")
	os.WriteFile(base, make([]byte, 1<<20), 0o644)
	if _, errOut, code := aerodisk(t, "create", "-b", "missing.img", filepath.Join(dir, "o")); code == 0 || !strings.Contains(errOut, "missing.img") {
		t.Fatalf("missing base: %d %s", code, errOut)
	}
	if _, errOut, code := aerodisk(t, "create", "-b", "b.img", "--size", "2M", filepath.Join(dir, "o")); code != 1 || !strings.Contains(errOut, "base") {
		t.Fatalf("size disagreeing with the base: %d %s", code, errOut)
	}
	if _, _, code := aerodisk(t, "create", "-O", "raw", "-b", "b.img", filepath.Join(dir, "o")); code != 1 {
		t.Fatalf("raw with a base: %d", code)
	}
	if _, errOut, code := aerodisk(t, "commit", base); code != 3 || !strings.Contains(errOut, "not an AEROLAYR overlay") {
		t.Fatalf("commit of a raw file: %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "o")); !os.IsNotExist(err) {
		t.Fatal("a refused create left a file")
	}
	// A qcow2 base is read through, but commit refuses to write into it.
	q := filepath.Join(dir, "q.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", q, "1M")
	ov := filepath.Join(dir, "q.aerolayr")
	mustAerodisk(t, "create", "-b", "q.qcow2", ov)
	if _, errOut, code := aerodisk(t, "commit", ov); code != 3 || !strings.Contains(errOut, "qcow2") {
		t.Fatalf("commit into qcow2: %d %s", code, errOut)
	}
}
