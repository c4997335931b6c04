package formats

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/testutil"
)

// fuzzBudget bounds the work one fuzz input may cause, so a tiny file that
// declares a huge disk cannot stall the fuzzer.
const (
	fuzzMaxExtents = 4096
	fuzzMaxRead    = 8 << 20
)

// exercise opens b and reads it the way conversion does, checking that every
// failure is one of our named errors and that Extent keeps its contract.
func exercise(t *testing.T, b []byte, f Format) {
	src := Source{Name: "fuzz", R: bytes.NewReader(b), Size: int64(len(b))}
	img, err := Open(src, Options{Format: f, Resolve: func(parent, backing string) (Source, error) {
		// A backing file resolves to the same bytes under another name, so
		// chains are exercised; the depth limit stops the recursion.
		return Source{Name: parent + "/" + backing, R: bytes.NewReader(b), Size: int64(len(b))}, nil
	}})
	if err != nil {
		if !isNamed(err) {
			t.Fatalf("Open: unnamed error %v", err)
		}
		return
	}
	defer img.Close()
	_ = img.Info()
	size := img.Size()
	if size < 0 {
		t.Fatalf("negative size %d", size)
	}
	read := int64(0)
	buf := make([]byte, 64<<10)
	for off, i := int64(0), 0; off < size && i < fuzzMaxExtents && read < fuzzMaxRead; i++ {
		e, err := img.Extent(off, size-off)
		if err != nil {
			if !isNamed(err) {
				t.Fatalf("Extent: unnamed error %v", err)
			}
			return
		}
		if e.Off != off || e.Len <= 0 || e.Len > size-off || e.Kind < Data || e.Kind > Unallocated {
			t.Fatalf("Extent(%d) = %+v (size %d)", off, e, size)
		}
		n := min(e.Len, int64(len(buf)))
		got, err := img.ReadAt(buf[:n], off)
		if err != nil && !(err == io.EOF && off+n == size) {
			if !isNamed(err) {
				t.Fatalf("ReadAt: unnamed error %v", err)
			}
			if got < 0 || int64(got) >= n {
				t.Fatalf("ReadAt(%d, %d) = %d with %v: a failed read must fill fewer bytes than asked", off, n, got, err)
			}
			return
		}
		if int64(got) != n {
			t.Fatalf("ReadAt(%d, %d) = %d without error", off, n, got)
		}
		if e.Kind != Data {
			for _, c := range buf[:n] {
				if c != 0 {
					t.Fatalf("%v extent at %d reads non-zero bytes", e.Kind, off)
				}
			}
		}
		read += n
		off += e.Len
	}
}

func isNamed(err error) bool {
	var de *diskerr.Error
	return errors.As(err, &de) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupported) ||
		errors.Is(err, ErrBadSize) || errors.Is(err, ErrBackingNotFound) || errors.Is(err, ErrUnknownFormat)
}

// seedFixtures adds small reference images of every format to the corpus.
func seedFixtures(f *testing.F) {
	dir := f.TempDir()
	base := testutil.BaseDisk(f, dir, "seed.img", 256<<10, 5)
	add := func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	add(base)
	for i, o := range []string{"compat=0.10,cluster_size=512", "compat=1.1,cluster_size=4096"} {
		p := filepath.Join(dir, "s.qcow2")
		testutil.QemuImg(f, "convert", "-f", "raw", "-O", "qcow2", "-o", o, base, p)
		if i == 1 {
			testutil.QemuIO(f, "qcow2", p, "write -z 0 8k")
		}
		add(p)
		os.Remove(p)
	}
	p := filepath.Join(dir, "c.qcow2")
	testutil.QemuImg(f, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", base, p)
	add(p)
	for _, o := range []string{"subformat=fixed", "subformat=dynamic"} {
		p := filepath.Join(dir, "s.vhd")
		testutil.QemuImg(f, "convert", "-f", "raw", "-O", "vpc", "-o", o, base, p)
		add(p)
		os.Remove(p)
	}
	f.Add(testutil.DC42("seed", make([]byte, 409600), make([]byte, 9600)))
	content := filepath.Join(dir, "iso")
	os.Mkdir(content, 0o755)
	testutil.WriteFile(f, content, "A.TXT", []byte("x"))
	iso := filepath.Join(dir, "s.iso")
	testutil.Run(f, "xorriso", "-as", "mkisofs", "-quiet", "-o", iso, content)
	add(iso)
}

// seedForeign adds the signatures of the formats that are detected only to
// be refused (foreign.go), one-byte near misses of them, and the hand-built
// Bochs, cloop and DMG images (foreign_test.go).
func seedForeign(f *testing.F) {
	for _, s := range foreignSignatures() {
		f.Add(s.b)
	}
	for _, m := range foreignNearMisses() {
		f.Add(m.b)
	}
	for _, c := range []handBuilt{bochsCase(), cloopCase(), dmgCase()} {
		f.Add(c.img)
	}
}

// FuzzDetectAndRead: any bytes, detected by content.
func FuzzDetectAndRead(f *testing.F) {
	seedFixtures(f)
	seedForeign(f)
	f.Fuzz(func(t *testing.T, b []byte) { exercise(t, b, "") })
}

// FuzzDC42 forces the DiskCopy reader onto any bytes.
func FuzzDC42(f *testing.F) {
	seedFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte) { exercise(t, b, DC42) })
}

// FuzzISO forces the ISO reader onto any bytes.
func FuzzISO(f *testing.F) {
	seedFixtures(f)
	f.Fuzz(func(t *testing.T, b []byte) { exercise(t, b, ISO) })
}
