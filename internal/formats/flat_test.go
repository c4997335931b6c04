package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aerodisk/internal/testutil"
)

func memSource(name string, b []byte) Source {
	return Source{Name: name, R: bytes.NewReader(b), Size: int64(len(b))}
}

// readAll reads an image through Extent + ReadAt the way conversion does and
// checks the Extent invariants on the way.
func readAll(t testing.TB, img Image) []byte {
	t.Helper()
	out := make([]byte, img.Size())
	for off := int64(0); off < img.Size(); {
		e, err := img.Extent(off, img.Size()-off)
		if err != nil {
			t.Fatalf("Extent(%d): %v", off, err)
		}
		if e.Off != off || e.Len <= 0 || e.Off+e.Len > img.Size() {
			t.Fatalf("Extent(%d) = %+v breaks the invariants (size %d)", off, e, img.Size())
		}
		if e.Kind == Data {
			if n, err := img.ReadAt(out[off:off+e.Len], off); n != int(e.Len) || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt(%d,%d) = %d, %v", off, e.Len, n, err)
			}
		}
		off += e.Len
	}
	return out
}

func TestRaw(t *testing.T) {
	data := testutil.MixedData(1<<20, 1)
	img, err := Open(memSource("d.img", data), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Info().Format != Raw || img.Size() != int64(len(data)) {
		t.Fatalf("info %+v", img.Info())
	}
	if got := readAll(t, img); !bytes.Equal(got, data) {
		t.Fatal("raw content differs")
	}
	// Reads past the end behave like io.SectionReader.
	p := make([]byte, 1024)
	if n, err := img.ReadAt(p, int64(len(data))-512); n != 512 || err != io.EOF {
		t.Fatalf("tail read = %d, %v", n, err)
	}
	if _, err := Open(memSource("odd.img", make([]byte, 1000)), Options{}); !errors.Is(err, ErrBadSize) {
		t.Fatalf("non-512 raw: %v", err)
	}
	if _, err := Open(memSource("empty", nil), Options{}); !errors.Is(err, ErrBadSize) {
		t.Fatalf("empty: %v", err)
	}
}

func TestISOFromXorriso(t *testing.T) {
	dir := t.TempDir()
	content := filepath.Join(dir, "content")
	os.Mkdir(content, 0o755)
	testutil.WriteFile(t, content, "README.TXT", []byte("hello from a real ISO\n"))
	testutil.WriteFile(t, content, "BIG.BIN", testutil.MixedData(300<<10, 2))
	iso := filepath.Join(dir, "disc.iso")
	testutil.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-V", "AERO_TEST", "-o", iso, content)
	raw, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := Detect(bytes.NewReader(raw), int64(len(raw))); f != ISO {
		t.Fatalf("detected %q", f)
	}
	img, err := Open(memSource(iso, raw), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Info().Details["volume-id"] != "AERO_TEST" {
		t.Errorf("volume id %v", img.Info().Details["volume-id"])
	}
	if got := readAll(t, img); !bytes.Equal(got, raw) {
		t.Fatal("ISO logical content differs from the file")
	}
	// A truncated ISO (volume larger than the file) is refused.
	cut := raw[:len(raw)-4096]
	if _, err := Open(memSource("cut.iso", cut), Options{}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated ISO: %v", err)
	}
	// Mismatched both-endian copies are corrupt.
	bad := append([]byte(nil), raw...)
	binary.BigEndian.PutUint32(bad[isoDescStart+84:], 7)
	if _, err := Open(memSource("bad.iso", bad), Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad both-endian: %v", err)
	}
	// Bad block size.
	bad = append([]byte(nil), raw...)
	binary.LittleEndian.PutUint16(bad[isoDescStart+128:], 3000)
	binary.BigEndian.PutUint16(bad[isoDescStart+130:], 3000)
	if _, err := Open(memSource("bad.iso", bad), Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad block size: %v", err)
	}
	// Descriptor 16 too short.
	if _, err := Open(memSource("short.iso", raw[:isoDescStart+100]), Options{Format: ISO}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short: %v", err)
	}
}

func TestDC42(t *testing.T) {
	for _, tc := range []struct {
		size, tags int
	}{{409600, 9600}, {819200, 19200}, {737280, 0}, {1474560, 0}} {
		data := testutil.MixedData(tc.size, uint64(tc.size))
		tags := testutil.MixedData(tc.tags, 9)
		file := testutil.DC42("Test Disk", data, tags)
		if f, err := Detect(bytes.NewReader(file), int64(len(file))); f != DC42 || err != nil {
			t.Fatalf("detect %d: %q %v", tc.size, f, err)
		}
		img, err := Open(memSource("d.dc42", file), Options{})
		if err != nil {
			t.Fatalf("%d: %v", tc.size, err)
		}
		if got := readAll(t, img); !bytes.Equal(got, data) {
			t.Fatalf("%d: data differs", tc.size)
		}
		d := img.(*DC42Image)
		gotTags := make([]byte, d.TagSize())
		if _, err := d.Tags(gotTags, 0); err != nil || !bytes.Equal(gotTags, tags) {
			t.Fatalf("%d: tags differ (%v)", tc.size, err)
		}
		if img.Info().Details["name"] != "Test Disk" {
			t.Fatalf("name %v", img.Info().Details["name"])
		}
	}
}

func TestDC42BadInput(t *testing.T) {
	data := testutil.MixedData(819200, 3)
	good := testutil.DC42("x", data, testutil.MixedData(19200, 4))
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		file []byte
		want error
	}{
		{"data checksum", mut(func(b []byte) []byte { b[100] ^= 1; return b }), ErrChecksum},
		{"tag checksum", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrChecksum},
		{"truncated", good[:len(good)-100], ErrTruncated},
		{"header only", good[:60], ErrTruncated},
		{"odd data size", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[0x40:], 1000); return b }), ErrUnsupported},
		{"tag size", mut(func(b []byte) []byte { binary.BigEndian.PutUint32(b[0x44:], 1<<30); return b }), ErrCorrupt},
		{"name length", mut(func(b []byte) []byte { b[0] = 200; return b }), ErrCorrupt},
		{"extra bytes", append(append([]byte(nil), good...), 0, 0), ErrCorrupt},
	}
	for _, tc := range cases {
		_, err := Open(memSource(tc.name, tc.file), Options{Format: DC42})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// A bad checksum is accepted when asked for, and reported in Info.
	bad := mut(func(b []byte) []byte { b[100] ^= 1; return b })
	img, err := Open(memSource("bad", bad), Options{AcceptBadChecksum: true})
	if err != nil || img.Info().Details["checksum-ok"] != false {
		t.Fatalf("AcceptBadChecksum: %v %v", err, img)
	}
	if w := img.Info().Warnings; len(w) != 1 || !strings.Contains(w[0], "data checksum") {
		t.Errorf("warnings %q, want one about the data checksum", w)
	}
	if got := readAll(t, img); !bytes.Equal(got[:100-84], data[:100-84]) || got[100-84] != data[100-84]^1 || !bytes.Equal(got[101-84:], data[101-84:]) {
		t.Error("a disk with a bad checksum does not read as its bytes")
	}
}

// TestDC42OldTools: real DiskCopy images made by old tools carry a data
// checksum that disagrees with their bytes, or bytes after the tags (44
// zero bytes; a resource fork). Read with AcceptBadChecksum they open, read
// their data and say what was odd; a damaged header still fails.
func TestDC42OldTools(t *testing.T) {
	data := testutil.MixedData(409600, 21)
	good := testutil.DC42("GS/OS", data, nil)
	accept := Options{AcceptBadChecksum: true}
	for _, tc := range []struct {
		name     string
		file     []byte
		warnings []string
	}{
		{"44 trailing zeros", append(append([]byte(nil), good...), make([]byte, 44)...), []string{"44 bytes after"}},
		{"a resource fork", append(append([]byte(nil), good...), testutil.MixedData(3000, 5)...), []string{"3000 bytes after"}},
		{"bad checksum and trailing bytes", func() []byte {
			b := append(append([]byte(nil), good...), make([]byte, 44)...)
			binary.BigEndian.PutUint32(b[0x48:], 0xdeadbeef)
			return b
		}(), []string{"data checksum", "44 bytes after"}},
	} {
		img, err := Open(memSource(tc.name, tc.file), accept)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if img.Size() != int64(len(data)) || !bytes.Equal(readAll(t, img), data) {
			t.Errorf("%s: the data does not read back", tc.name)
		}
		w := img.Info().Warnings
		if len(w) != len(tc.warnings) {
			t.Errorf("%s: warnings %q, want %d", tc.name, w, len(tc.warnings))
			continue
		}
		for i, want := range tc.warnings {
			if !strings.Contains(w[i], want) {
				t.Errorf("%s: warning %q, want one with %q", tc.name, w[i], want)
			}
		}
		if _, err := Open(memSource(tc.name, tc.file), Options{}); err == nil {
			t.Errorf("%s: opened without AcceptBadChecksum", tc.name)
		}
	}
	// A damaged header is never accepted.
	for _, bad := range [][]byte{
		func() []byte { b := append([]byte(nil), good...); b[0x52] = 7; return b }(),
		good[:len(good)-10],
		func() []byte { b := append([]byte(nil), good...); b[0] = 99; return b }(),
	} {
		if _, err := Open(memSource("bad", bad), Options{Format: DC42, AcceptBadChecksum: true}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("damaged header with AcceptBadChecksum: %v", err)
		}
	}
}

func TestDetectNeverUsesName(t *testing.T) {
	data := make([]byte, 4096)
	img, err := Open(memSource("looks-like.qcow2", data), Options{})
	if err != nil || img.Info().Format != Raw {
		t.Fatalf("zero file named .qcow2: %v %v", err, img)
	}
	if _, err := ParseFormat("vpc"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFormat("vmdk"); !errors.Is(err, ErrUnsupported) {
		t.Fatal(err)
	}
}

// checkExtents walks the whole allocation map, checking the Extent contract
// (exact tiling, longest runs, agreement of queries that start inside a run,
// zeros wherever the kind is not Data) and returns the bytes of each kind.
func checkExtents(t testing.TB, img Image, want []byte) map[Kind]int64 {
	t.Helper()
	size := img.Size()
	var prev Kind
	kinds := map[Kind]int64{}
	for off := int64(0); off < size; {
		e, err := img.Extent(off, size-off)
		if err != nil {
			t.Fatalf("Extent(%d): %v", off, err)
		}
		if e.Off != off || e.Len < 1 || e.Len > size-off {
			t.Fatalf("Extent(%d, %d) = %+v", off, size-off, e)
		}
		if e.Kind != Data && e.Kind != Zero && e.Kind != Unallocated {
			t.Fatalf("bad kind %v", e.Kind)
		}
		if e.Kind == prev {
			t.Fatalf("Extent at %d has the same kind %v as the previous one (not the longest run)", off, e.Kind)
		}
		if e.Kind != Data && want != nil {
			if i := bytes.IndexFunc(want[off:off+e.Len], func(r rune) bool { return r != 0 }); i >= 0 {
				t.Fatalf("%v extent %+v holds non-zero data near %d", e.Kind, e, off+int64(i))
			}
		}
		// a shorter query starting inside agrees
		if e.Len > 1 {
			m := e.Len / 2
			e2, err := img.Extent(off+m, 1+(e.Len-m)/2)
			if err != nil || e2.Kind != e.Kind || e2.Off != off+m || e2.Len != 1+(e.Len-m)/2 {
				t.Fatalf("Extent inside %+v = %+v, %v", e, e2, err)
			}
		}
		kinds[e.Kind] += e.Len
		prev = e.Kind
		off += e.Len
	}
	for _, bad := range [][2]int64{{-1, 1}, {size, 1}, {0, 0}} {
		if size == 0 {
			break
		}
		if _, err := img.Extent(bad[0], bad[1]); !errors.Is(err, ErrBadSize) {
			t.Fatalf("Extent(%d, %d): %v", bad[0], bad[1], err)
		}
	}
	t.Logf("extents: data %d, zero %d, unallocated %d", kinds[Data], kinds[Zero], kinds[Unallocated])
	return kinds
}
