package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/testutil"
)

// ---- helpers ----

// qcowRawFile writes a raw disk of size bytes: MixedData with some zeroed
// holes (whole clusters and odd ranges), so qemu-img leaves some clusters
// unallocated and some partly zero.
func qcowRawFile(t testing.TB, dir, name string, size int, seed uint64) string {
	t.Helper()
	b := testutil.MixedData(size, seed)
	for _, h := range [][2]int{{size / 8, size / 8}, {size / 2, 70000}, {size - size/16, size / 32}} {
		s, l := h[0], min(h[1], size-h[0])
		clear(b[s : s+l])
	}
	return testutil.WriteFile(t, dir, name, b)
}

func qcowConvert(t testing.TB, raw, out string, args ...string) string {
	t.Helper()
	testutil.QemuImg(t, append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, args...), raw, out)...)
	return out
}

func qcowOpen(t testing.TB, path string, f Format) (Image, error) {
	t.Helper()
	src, err := FileSource(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return Open(src, Options{Format: f, Resolve: FileResolver})
}

func mustOpenQcow(t testing.TB, path string) Image {
	t.Helper()
	img, err := qcowOpen(t, path, "")
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// checkAgainstQemu compares our reading of path with qemu-img's raw output.
func checkAgainstQemu(t *testing.T, path string) Image {
	t.Helper()
	want, err := os.ReadFile(testutil.QemuRaw(t, "qcow2", path))
	if err != nil {
		t.Fatal(err)
	}
	img := mustOpenQcow(t, path)
	if img.Info().Format != Qcow2 {
		t.Fatalf("detected %v", img.Info().Format)
	}
	checkContent(t, img, want)
	return img
}

// checkContent verifies ReadAt (whole disk, odd chunks, past the end) and the
// Extent map against want.
func checkContent(t *testing.T, img Image, want []byte) {
	t.Helper()
	size := int64(len(want))
	if img.Size() != size {
		t.Fatalf("size %d, qemu says %d", img.Size(), size)
	}
	got := make([]byte, size)
	if n, err := img.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt whole disk: %d, %v", n, err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("content differs from qemu-img at byte %d (cluster %d)", i, int64(i)/img.Info().ClusterSize)
	}
	// odd-sized reads at odd offsets
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for range 200 {
		off := rng.Int64N(size)
		l := rng.Int64N(min(size-off, 300000)) + 1
		buf := make([]byte, l)
		n, err := img.ReadAt(buf, off)
		if int64(n) != l || (err != nil && !(err == io.EOF && off+l == size)) {
			t.Fatalf("ReadAt(%d, +%d): %d, %v", off, l, n, err)
		}
		if !bytes.Equal(buf, want[off:off+l]) {
			t.Fatalf("ReadAt(%d, +%d) differs", off, l)
		}
	}
	// past the end
	buf := make([]byte, 1024)
	if n, err := img.ReadAt(buf, size-512); n != 512 || err != io.EOF {
		t.Fatalf("ReadAt across the end: %d, %v", n, err)
	}
	if n, err := img.ReadAt(buf, size); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt at the end: %d, %v", n, err)
	}
	checkExtents(t, img, want)
}

// checkExtents walks the disk with Extent: the extents must tile [0,size),
// neighbours must differ in kind, and every non-zero byte must be in Data.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// ---- conversions ----

func TestQcow2Convert(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name string
		size int
		args []string
		cs   int64
	}{
		{"v2-64k", 3*mib + 4096, []string{"-o", "compat=0.10"}, 65536},
		{"v3-64k", 3*mib + 4096, []string{"-o", "compat=1.1"}, 65536},
		{"v3-512", 1 * mib, []string{"-o", "compat=1.1,cluster_size=512"}, 512},
		{"v2-512", 1 * mib, []string{"-o", "compat=0.10,cluster_size=512"}, 512},
		{"v3-2M", 5*mib + 512, []string{"-o", "cluster_size=2M"}, 2 * mib},
		{"zlib-64k", 3 * mib, []string{"-c"}, 65536},
		{"zlib-v2-512", mib / 2, []string{"-c", "-o", "compat=0.10,cluster_size=512"}, 512},
		{"zlib-2M", 4*mib + 1536, []string{"-c", "-o", "cluster_size=2M"}, 2 * mib},
		{"zstd-64k", 3 * mib, []string{"-c", "-o", "compression_type=zstd"}, 65536},
		{"zstd-4k", mib, []string{"-c", "-o", "compression_type=zstd,cluster_size=4096"}, 4096},
		{"zstd-2M", 4*mib + 1536, []string{"-c", "-o", "compression_type=zstd,cluster_size=2M"}, 2 * mib},
		{"odd-1000-sectors", 1000*512 + 512, nil, 65536},
		{"odd-not-cluster-multiple", 3*mib + 5*512, []string{"-o", "cluster_size=131072"}, 131072},
		{"odd-compressed", 1000*512 + 512, []string{"-c"}, 65536},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := qcowRawFile(t, dir, "disk.raw", c.size, uint64(i+1))
			img := checkAgainstQemu(t, qcowConvert(t, raw, filepath.Join(dir, "disk.qcow2"), c.args...))
			inf := img.Info()
			if inf.ClusterSize != c.cs || inf.VirtualSize != int64(c.size) || inf.FileSize <= 0 {
				t.Fatalf("info %+v", inf)
			}
			want, _ := os.ReadFile(raw)
			checkContent(t, img, want)
			compat := "1.1"
			if strings.Contains(strings.Join(c.args, " "), "compat=0.10") {
				compat = "0.10"
			}
			if inf.Details["compat"] != compat {
				t.Fatalf("compat %v, want %s", inf.Details["compat"], compat)
			}
			ct := "zlib"
			if strings.Contains(c.name, "zstd") {
				ct = "zstd"
			}
			if inf.Details["compression-type"] != ct {
				t.Fatalf("compression type %v, want %s", inf.Details["compression-type"], ct)
			}
		})
	}
}

// ---- zero clusters ----

func TestQcow2ZeroClusters(t *testing.T) {
	dir := t.TempDir()
	raw := qcowRawFile(t, dir, "disk.raw", 2<<20, 11)
	p := qcowConvert(t, raw, filepath.Join(dir, "disk.qcow2"))
	// over allocated data (keeping the allocation and unmapping it), and over
	// a hole; plus an odd partial range
	testutil.QemuIO(t, "qcow2", p,
		"write -z 0 128k", "write -z -u 256k 64k", "write -z 1536k 192k", "write -z 700k 3k")
	img := checkAgainstQemu(t, p)
	for _, off := range []int64{0, 256 << 10} {
		if e, err := img.Extent(off, 64<<10); err != nil || e.Kind != Zero {
			t.Fatalf("Extent(%d) = %+v, %v; want zero", off, e, err)
		}
	}
}

func TestQcow2ZeroMasksBacking(t *testing.T) {
	dir := t.TempDir()
	raw := qcowRawFile(t, dir, "base.raw", 1<<20, 12)
	qcowConvert(t, raw, filepath.Join(dir, "base.qcow2"))
	top := filepath.Join(dir, "top.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
	testutil.QemuIO(t, "qcow2", top, "write -z 0 64k", "write -z 320k 128k", "write -P 0x5a 640k 4k")
	img := checkAgainstQemu(t, top)
	if e, err := img.Extent(0, 1<<20); err != nil || e.Kind != Zero || e.Len != 64<<10 {
		t.Fatalf("Extent(0) = %+v, %v", e, err)
	}
	inf := img.Info()
	if inf.BackingFile != "base.qcow2" || inf.Backing == nil || inf.Backing.Format != Qcow2 || inf.Details["backing-format"] != "qcow2" {
		t.Fatalf("info %+v", inf)
	}
}

// ---- backing chains ----

func TestQcow2BackingChain3(t *testing.T) {
	dir := t.TempDir()
	raw := qcowRawFile(t, dir, "base.raw", 2<<20, 21)
	qcowConvert(t, raw, filepath.Join(dir, "base.qcow2"), "-o", "compat=0.10")
	mid := filepath.Join(dir, "mid.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", mid)
	testutil.QemuIO(t, "qcow2", mid, "write -P 0x11 64k 64k", "write -P 0x12 1000k 100k", "write -z 1500k 64k")
	testutil.QemuImg(t, "create", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "mid.qcow2", "-F", "qcow2", top)
	testutil.QemuIO(t, "qcow2", top, "write -P 0x21 100k 10k", "write -P 0x22 1020k 8k", "write -z 1800k 8k")
	img := checkAgainstQemu(t, top)
	depth := 0
	for i := img.Info().Backing; i != nil; i = i.Backing {
		depth++
	}
	if depth != 2 {
		t.Fatalf("backing depth %d", depth)
	}
	if err := img.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestQcow2LongChain(t *testing.T) {
	dir := t.TempDir()
	raw := qcowRawFile(t, dir, "l0.raw", 1<<20, 31)
	qcowConvert(t, raw, filepath.Join(dir, "l0.qcow2"))
	const levels = 9
	for i := 1; i < levels; i++ {
		p := filepath.Join(dir, fmt.Sprintf("l%d.qcow2", i))
		testutil.QemuImg(t, "create", "-f", "qcow2", "-b", fmt.Sprintf("l%d.qcow2", i-1), "-F", "qcow2", p)
		testutil.QemuIO(t, "qcow2", p, fmt.Sprintf("write -P %d %dk 64k", 0x30+i, i*96), fmt.Sprintf("write -z %dk 64k", 1024-i*64))
	}
	checkAgainstQemu(t, filepath.Join(dir, fmt.Sprintf("l%d.qcow2", levels-1)))

	// a chain longer than MaxChain is refused
	src, err := FileSource(filepath.Join(dir, fmt.Sprintf("l%d.qcow2", levels-1)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := Open(src, Options{Resolve: FileResolver, MaxChain: 4}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("MaxChain 4: %v", err)
	}
}

func TestQcow2SmallBacking(t *testing.T) {
	dir := t.TempDir()
	raw := qcowRawFile(t, dir, "base.raw", 1<<20, 41)
	qcowConvert(t, raw, filepath.Join(dir, "base.qcow2"))
	top := filepath.Join(dir, "top.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top, "3M")
	testutil.QemuIO(t, "qcow2", top, "write -P 0x44 960k 128k", "write -P 0x45 2M 4k")
	img := checkAgainstQemu(t, top)
	if e, err := img.Extent(1<<20+128<<10, 64<<10); err != nil || e.Kind != Unallocated {
		t.Fatalf("past the backing file: %+v, %v", e, err)
	}

	// a raw backing file, format from the header extension
	top2 := filepath.Join(dir, "top2.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top2, "2M")
	testutil.QemuIO(t, "qcow2", top2, "write -P 0x46 4k 4k")
	img = checkAgainstQemu(t, top2)
	if img.Info().Backing.Format != Raw {
		t.Fatalf("backing %+v", img.Info().Backing)
	}
}

func TestQcow2BackingErrors(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.qcow2")
	b := filepath.Join(dir, "b.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", a, "1M")
	testutil.QemuImg(t, "create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b)
	if _, err := qcowOpen(t, b, ""); err != nil {
		t.Fatal(err)
	}
	testutil.QemuImg(t, "rebase", "-u", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", a)
	for _, p := range []string{a, b} {
		if _, err := qcowOpen(t, p, Qcow2); !errors.Is(err, ErrBackingCycle) {
			t.Fatalf("%s: %v, want backing cycle", p, err)
		}
	}
	// self loop
	c := filepath.Join(dir, "c.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", c, "1M")
	testutil.QemuImg(t, "rebase", "-u", "-f", "qcow2", "-b", "c.qcow2", "-F", "qcow2", c)
	if _, err := qcowOpen(t, c, ""); !errors.Is(err, ErrBackingCycle) {
		t.Fatalf("self loop: %v", err)
	}

	// missing backing file
	d := filepath.Join(dir, "d.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", filepath.Join(dir, "gone.qcow2"), "1M")
	testutil.QemuImg(t, "create", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", d, "1M")
	if err := os.Remove(filepath.Join(dir, "gone.qcow2")); err != nil {
		t.Fatal(err)
	}
	if _, err := qcowOpen(t, d, ""); !errors.Is(err, ErrBackingNotFound) {
		t.Fatalf("missing backing: %v", err)
	}
	src, err := FileSource(b)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := Open(src, Options{}); !errors.Is(err, ErrBackingNotFound) {
		t.Fatalf("no resolver: %v", err)
	}
}

// ---- bad inputs ----

// qcowLayout reads the offsets of a fixture's structures.
type qcowLayout struct {
	cs, l1Off, l2Off, dataOff, size int64
	file                            []byte
}

func qcowFixture(t *testing.T, dir string, args ...string) qcowLayout {
	t.Helper()
	raw := qcowRawFile(t, dir, "fx.raw", 1<<20, 99)
	p := qcowConvert(t, raw, filepath.Join(dir, "fx.qcow2"), args...)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	l := qcowLayout{file: b, cs: 1 << be.Uint32(b[20:]), l1Off: int64(be.Uint64(b[40:])), size: int64(be.Uint64(b[24:]))}
	l.l2Off = int64(be.Uint64(b[l.l1Off:]) & qcowOffsetMask)
	l.dataOff = int64(be.Uint64(b[l.l2Off:]) & qcowOffsetMask)
	if l.l2Off == 0 || l.dataOff == 0 {
		t.Fatalf("fixture layout %+v", l)
	}
	return l
}

// openBytes opens b (forced format and detected) and reads the whole disk;
// it returns the first error.
func openBytes(t *testing.T, b []byte, f Format) error {
	t.Helper()
	img, err := Open(Source{Name: "mem", R: bytes.NewReader(b), Size: int64(len(b))}, Options{Format: f, Resolve: FileResolver})
	if err != nil {
		return err
	}
	defer img.Close()
	return walkAll(img)
}

func walkAll(img Image) error {
	size := img.Size()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		e, err := img.Extent(off, size-off)
		if err != nil {
			return err
		}
		for o := e.Off; o < e.Off+e.Len; {
			n := min(int64(len(buf)), e.Off+e.Len-o)
			if _, err := img.ReadAt(buf[:n], o); err != nil && err != io.EOF {
				return err
			}
			o += n
		}
		off += e.Len
	}
	return nil
}

func TestQcow2BadInputs(t *testing.T) {
	dir := t.TempDir()
	l := qcowFixture(t, dir)
	be := binary.BigEndian
	patch := func(f func(b []byte)) []byte {
		b := bytes.Clone(l.file)
		f(b)
		return b
	}
	trunc := func(n int64) []byte { return l.file[:n] }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"truncated-magic", trunc(3), ErrUnknownFormat},
		{"truncated-version", trunc(6), ErrTruncated},
		{"truncated-header-50", trunc(50), ErrTruncated},
		{"truncated-header-100", trunc(100), ErrTruncated},
		{"truncated-extensions", trunc(120), ErrTruncated},
		{"truncated-L1", trunc(l.l1Off + 4), ErrTruncated},
		{"truncated-before-L1", trunc(l.l1Off), ErrTruncated},
		{"truncated-L2", trunc(l.l2Off + 100), ErrTruncated},
		{"truncated-data", trunc(l.dataOff + 1000), ErrTruncated},
		{"L1-past-EOF", patch(func(b []byte) { be.PutUint64(b[l.l1Off:], uint64(len(b)+10*int(l.cs))|qcowCopied) }), ErrTruncated},
		{"L1-unaligned", patch(func(b []byte) { be.PutUint64(b[l.l1Off:], uint64(l.l2Off+512)) }), ErrCorrupt},
		{"L1-header", patch(func(b []byte) { be.PutUint64(b[l.l1Off:], 512) }), ErrCorrupt},
		{"L2-past-EOF", patch(func(b []byte) { be.PutUint64(b[l.l2Off:], uint64(len(b)+int(l.cs))&^uint64(l.cs-1)+uint64(l.cs)) }), ErrTruncated},
		{"L2-header", patch(func(b []byte) { be.PutUint64(b[l.l2Off:], 512|qcowCopied) }), ErrCorrupt},
		{"L2-unaligned", patch(func(b []byte) { be.PutUint64(b[l.l2Off:], uint64(l.dataOff+4096)) }), ErrCorrupt},
		{"L2-compressed-header", patch(func(b []byte) { be.PutUint64(b[l.l2Off:], qcowCompressed|100) }), ErrCorrupt},
		{"L2-compressed-past-EOF", patch(func(b []byte) { be.PutUint64(b[l.l2Off:], qcowCompressed|uint64(len(b)+77)) }), ErrTruncated},
		{"L2-compressed-garbage", patch(func(b []byte) { be.PutUint64(b[l.l2Off:], qcowCompressed|uint64(l.dataOff)) }), ErrCorrupt},
		{"L1-entry-at-L1-table", patch(func(b []byte) { be.PutUint64(b[l.l1Off:], uint64(l.l1Off)|qcowCopied) }), ErrCorrupt},
		{"L1-entry-at-refcount-table", patch(func(b []byte) { be.PutUint64(b[l.l1Off:], be.Uint64(b[48:])|qcowCopied) }), ErrCorrupt},
		{"L2-data-at-L1-table", patch(func(b []byte) { be.PutUint64(b[l.l2Off:], uint64(l.l1Off)|qcowCopied) }), ErrCorrupt},
		{"L2-data-at-refcount-table", patch(func(b []byte) { be.PutUint64(b[l.l2Off:], be.Uint64(b[48:])|qcowCopied) }), ErrCorrupt},
		{"L1-table-overlaps-refcount-table", patch(func(b []byte) { be.PutUint64(b[40:], be.Uint64(b[48:])) }), ErrCorrupt},
		{"l1_size-huge", patch(func(b []byte) { be.PutUint32(b[36:], 0xffffffff) }), ErrTruncated},
		{"l1_size-too-small", patch(func(b []byte) { be.PutUint32(b[36:], 0) }), ErrCorrupt},
		{"l1-offset-0", patch(func(b []byte) { be.PutUint64(b[40:], 0) }), ErrCorrupt},
		{"l1-offset-unaligned", patch(func(b []byte) { be.PutUint64(b[40:], uint64(l.l1Off+8)) }), ErrCorrupt},
		{"cluster_bits-8", patch(func(b []byte) { be.PutUint32(b[20:], 8) }), ErrCorrupt},
		{"cluster_bits-30", patch(func(b []byte) { be.PutUint32(b[20:], 30) }), ErrUnsupported},
		{"cluster_bits-huge", patch(func(b []byte) { be.PutUint32(b[20:], 0xffffffff) }), ErrUnsupported},
		{"size-2^60", patch(func(b []byte) { be.PutUint64(b[24:], 1<<60) }), ErrBadSize},
		{"size-needs-more-L1", patch(func(b []byte) { be.PutUint64(b[24:], 1<<50) }), ErrCorrupt},
		{"version-1", patch(func(b []byte) { be.PutUint32(b[4:], 1) }), ErrUnsupported},
		{"version-4", patch(func(b []byte) { be.PutUint32(b[4:], 4) }), ErrUnsupported},
		{"unknown-incompat-bit", patch(func(b []byte) { b[79] |= 1 << 5 }), ErrUnsupported},
		{"unknown-incompat-bit-63", patch(func(b []byte) { b[72] |= 0x80 }), ErrUnsupported},
		{"corrupt-bit", patch(func(b []byte) { b[79] |= qcowIncCorrupt }), ErrCorrupt},
		{"data-file-bit", patch(func(b []byte) { b[79] |= qcowIncDataFile }), ErrUnsupported},
		{"extended-l2-bit", patch(func(b []byte) { b[79] |= qcowIncExtendedL2 }), ErrUnsupported},
		{"compression-bit-zlib", patch(func(b []byte) { b[79] |= qcowIncCompression }), ErrCorrupt},
		{"compression-type-7", patch(func(b []byte) { b[79] |= qcowIncCompression; b[104] = 7 }), ErrUnsupported},
		{"zstd-without-bit", patch(func(b []byte) { b[104] = 1 }), ErrCorrupt},
		{"encryption-aes", patch(func(b []byte) { be.PutUint32(b[32:], 1) }), ErrUnsupported},
		{"encryption-luks", patch(func(b []byte) { be.PutUint32(b[32:], 2) }), ErrUnsupported},
		{"header_length-small", patch(func(b []byte) { be.PutUint32(b[100:], 72) }), ErrCorrupt},
		{"header_length-huge", patch(func(b []byte) { be.PutUint32(b[100:], 1<<30) }), ErrCorrupt},
		{"refcount_order-7", patch(func(b []byte) { be.PutUint32(b[96:], 7) }), ErrCorrupt},
		{"extension-too-long", patch(func(b []byte) { be.PutUint32(b[112+4:], 1<<20) }), ErrCorrupt},
		{"backing-name-too-long", patch(func(b []byte) { be.PutUint64(b[8:], 0x200); be.PutUint32(b[16:], 2000) }), ErrCorrupt},
		{"backing-name-leaves-cluster", patch(func(b []byte) { be.PutUint64(b[8:], uint64(l.cs-10)); be.PutUint32(b[16:], 20) }), ErrCorrupt},
		{"backing-missing", patch(func(b []byte) { be.PutUint64(b[8:], 0x800); be.PutUint32(b[16:], 9); copy(b[0x800:], "nope.qcow") }), ErrBackingNotFound},
		{"bad-magic-forced", patch(func(b []byte) { b[0] = 'X' }), ErrUnknownFormat},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := openBytes(t, c.b, Qcow2)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			t.Log(err)
			// detection must not panic either
			if err := openBytes(t, c.b, ""); err != nil && !isDiskErr(err) {
				t.Fatalf("detected open: non-sentinel error %v", err)
			}
		})
	}

	// zero flag in a version 2 image
	l2 := qcowFixture(t, t.TempDir(), "-o", "compat=0.10")
	b := bytes.Clone(l2.file)
	be.PutUint64(b[l2.l2Off:], be.Uint64(b[l2.l2Off:])|qcowZeroFlag)
	if err := openBytes(t, b, Qcow2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("v2 zero flag: %v", err)
	}

	// an L2 entry with offset 0 (COPIED set or not) is unallocated, and the
	// zero flag with an allocated offset reads zeros
	for _, c := range []struct {
		entry uint64
		kind  Kind
	}{{0, Unallocated}, {qcowCopied, Unallocated}, {uint64(l.dataOff) | qcowZeroFlag | qcowCopied, Zero}, {qcowZeroFlag, Zero}} {
		b := bytes.Clone(l.file)
		be.PutUint64(b[l.l2Off:], c.entry)
		img, err := Open(Source{Name: "p", R: bytes.NewReader(b), Size: int64(len(b))}, Options{})
		if err != nil {
			t.Fatalf("entry %#x: %v", c.entry, err)
		}
		if e, err := img.Extent(0, l.cs); err != nil || e.Kind != c.kind || e.Len != l.cs {
			t.Fatalf("entry %#x: Extent %+v, %v", c.entry, e, err)
		}
		buf := make([]byte, l.cs)
		if _, err := img.ReadAt(buf, 0); err != nil || bytes.Count(buf, []byte{0}) != len(buf) {
			t.Fatalf("entry %#x: read %v, non-zero data", c.entry, err)
		}
	}

	// dirty images are read (read-only, as qemu does)
	b = bytes.Clone(l.file)
	b[79] |= qcowIncDirty
	img, err := Open(Source{Name: "dirty", R: bytes.NewReader(b), Size: int64(len(b))}, Options{})
	if err != nil {
		t.Fatalf("dirty: %v", err)
	}
	if img.Info().Details["dirty"] != true {
		t.Fatalf("dirty not reported: %v", img.Info().Details)
	}
	if err := walkAll(img); err != nil {
		t.Fatal(err)
	}
}

// TestQcow2TruncateEverywhere cuts a fixture at many offsets: opening and
// reading must either work (with correct data for what is still there) or
// fail with a corrupt/truncated error, never panic.
func TestQcow2TruncateEverywhere(t *testing.T) {
	for _, args := range [][]string{{"-o", "cluster_size=4096"}, {"-c", "-o", "cluster_size=4096"}} {
		l := qcowFixture(t, t.TempDir(), args...)
		step := max(int64(len(l.file))/300, 1)
		for n := int64(0); n < int64(len(l.file)); n += step {
			err := openBytes(t, l.file[:n], Qcow2)
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownFormat) {
				t.Fatalf("truncated at %d: %v", n, err)
			}
		}
	}
}

func isDiskErr(err error) bool {
	for _, s := range []error{ErrCorrupt, ErrTruncated, ErrChecksum, ErrBackingCycle, ErrUnsupported, ErrUnknownFormat, ErrBadSize, ErrBackingNotFound, diskerr.ErrReadOnly} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func TestQcow2Probe(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", p, "0")
	img := mustOpenQcow(t, p)
	if img.Size() != 0 || img.Info().Format != Qcow2 {
		t.Fatalf("empty image: %+v", img.Info())
	}
	if n, err := img.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
		t.Fatalf("read of empty disk: %d %v", n, err)
	}
	if probeQcow2(bytes.NewReader([]byte("QFI")), 3) {
		t.Fatal("probe matched 3 bytes")
	}
}

// ---- fuzzing ----

// qcowFuzzSeeds makes small real images with qemu-img.
func qcowFuzzSeeds(t testing.TB) [][]byte {
	dir := t.TempDir()
	raw := qcowRawFile(t, dir, "s.raw", 12<<10, 5)
	var seeds [][]byte
	add := func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for i, args := range [][]string{
		{"-o", "cluster_size=512"},
		{"-o", "cluster_size=512,compat=0.10"},
		{"-c", "-o", "cluster_size=1024"},
		{"-c", "-o", "cluster_size=1024,compression_type=zstd"},
		{"-o", "cluster_size=2048,compat=0.10"},
	} {
		p := qcowConvert(t, raw, filepath.Join(dir, fmt.Sprintf("s%d.qcow2", i)), args...)
		if i == 0 {
			testutil.QemuIO(t, "qcow2", p, "write -z 0 2k", "write -z -u 8k 1k", "write -z 10k 1k")
		}
		add(p)
	}
	// an overlay on a (fuzz-resolved) raw backing file
	p := filepath.Join(dir, "ov.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", "-o", "cluster_size=512", "-b", "s.raw", "-F", "raw", p)
	testutil.QemuIO(t, "qcow2", p, "write -P 7 1k 1k", "write -z 4k 1k", "write -P 8 11k 1k")
	add(p)
	return seeds
}

func FuzzQcow2(f *testing.F) {
	for _, s := range qcowFuzzSeeds(f) {
		f.Add(s)
	}
	backing := testutil.MixedData(8<<10, 3)
	resolve := func(parent, name string) (Source, error) {
		if name == "loop" {
			return Source{Name: "top", R: bytes.NewReader(nil), Size: 0}, nil
		}
		return Source{Name: "backing:" + name, R: bytes.NewReader(backing), Size: int64(len(backing))}, nil
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, format := range []Format{Qcow2, ""} {
			img, err := Open(Source{Name: "top", R: bytes.NewReader(b), Size: int64(len(b))}, Options{Format: format, Resolve: resolve})
			if err != nil {
				if !isDiskErr(err) {
					t.Fatalf("open: non-sentinel error %v", err)
				}
				continue
			}
			fuzzWalk(t, img)
			if err := img.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// fuzzWalk reads the disk through Extent and ReadAt with bounded work.
func fuzzWalk(t *testing.T, img Image) {
	size := img.Size()
	if size < 0 {
		t.Fatalf("negative size %d", size)
	}
	buf := make([]byte, 64<<10)
	budget := 1 << 20 // bytes read
	for off, i := int64(0), 0; off < size && i < 500 && budget > 0; i++ {
		e, err := img.Extent(off, size-off)
		if err != nil {
			if !isDiskErr(err) {
				t.Fatalf("Extent: non-sentinel error %v", err)
			}
			// skip the bad spot
			off += 512
			continue
		}
		if e.Off != off || e.Len < 1 || e.Len > size-off || (e.Kind != Data && e.Kind != Zero && e.Kind != Unallocated) {
			t.Fatalf("Extent(%d, %d) = %+v", off, size-off, e)
		}
		n := min(e.Len, int64(len(buf)))
		got, err := img.ReadAt(buf[:n], off)
		budget -= int(n)
		if err != nil && err != io.EOF {
			if !isDiskErr(err) {
				t.Fatalf("ReadAt: non-sentinel error %v", err)
			}
			if got < 0 || int64(got) >= n {
				t.Fatalf("ReadAt(%d, %d) = %d with %v: a failed read must fill fewer bytes than asked", off, n, got, err)
			}
		} else if int64(got) != n {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", off, n, got, err)
		} else if e.Kind != Data && bytes.IndexFunc(buf[:n], func(r rune) bool { return r != 0 }) >= 0 {
			t.Fatalf("%v extent %+v reads non-zero", e.Kind, e)
		}
		off += e.Len
	}
	// reads around the end
	if size > 0 {
		if _, err := img.ReadAt(buf[:100], size-1); err != io.EOF && !isDiskErr(err) {
			t.Fatalf("ReadAt at the end: %v", err)
		}
	}
}
