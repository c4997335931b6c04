package formats

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/testutil"
)

// ---- helpers ----

func vhdSource(t testing.TB, path string) Source {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Source{Name: path, R: f, Size: st.Size(), Close: f.Close}
}

func vhdOpenFile(t testing.TB, path string, opts Options) (Image, error) {
	t.Helper()
	src := vhdSource(t, path)
	img, err := Open(src, opts)
	if err != nil {
		src.Close()
		return nil, err
	}
	t.Cleanup(func() { img.Close(); src.Close() })
	return img, nil
}

func vhdOpenBytes(b []byte, opts Options) (Image, error) {
	return Open(Source{Name: "mem.vhd", R: bytes.NewReader(b), Size: int64(len(b))}, opts)
}

// dirResolver resolves a backing name relative to dir (the name taken as is).
func dirResolver(dir string) Resolver {
	return func(parent, backing string) (Source, error) {
		p := filepath.Join(dir, backing)
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			return Source{}, diskerr.New("", ErrBackingNotFound, "%q", p)
		}
		if err != nil {
			return Source{}, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return Source{}, err
		}
		return Source{Name: p, R: f, Size: st.Size(), Close: f.Close}, nil
	}
}

func readImage(t testing.TB, img Image) []byte {
	t.Helper()
	b := make([]byte, img.Size())
	// Odd-sized chunks exercise reads that straddle blocks and sectors.
	const chunk = 3<<20 + 777
	for off := int64(0); off < img.Size(); off += chunk {
		end := min(off+chunk, img.Size())
		n, err := img.ReadAt(b[off:end], off)
		if n != int(end-off) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", off, end-off, n, err)
		}
	}
	return b
}

// checkExtents walks the allocation map: runs must tile the disk, and
// Unallocated/Zero runs must read as zeros in want.
func qemuVirtualSize(t testing.TB, path string) int64 {
	t.Helper()
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(testutil.QemuImg(t, "info", "--output=json", "-f", "vpc", path), &info); err != nil {
		t.Fatal(err)
	}
	return info.VirtualSize
}

// holeyData is MixedData with two block-sized zero holes, so qemu-img leaves
// whole dynamic blocks unallocated.
func holeyData(n int, seed uint64) []byte {
	b := testutil.MixedData(n, seed)
	for _, h := range [][2]int{{2 << 20, 6 << 20}, {n - 3<<20, n - 1<<20}} {
		if h[0] >= 0 && h[1] <= n && h[0] < h[1] {
			clear(b[h[0]:h[1]])
		}
	}
	return b
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrCorrupt, ErrUnsupported, ErrUnknownFormat, ErrBadSize, ErrBackingNotFound} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// ---- hand-built images (the spec layout, as qemu-img cannot make differencing disks) ----

type vhdLoc struct {
	code string
	data []byte
}

type vhdSpec struct {
	diskType   uint32
	app        string
	size       int64 // current_size
	cyls       uint16
	heads      uint8
	secs       uint8
	blockSize  uint32
	blocks     map[int][]byte // block index -> data (blockSize bytes)
	bitmaps    map[int][]byte // block index -> sector bitmap (default all ones)
	parentName string
	locators   []vhdLoc
}

type vhdLayout struct {
	headerOff, batOff int64
	blockOff          map[int]int64
}

func putFooterChecksum(f []byte) {
	binary.BigEndian.PutUint32(f[vfChecksum:], 0)
	binary.BigEndian.PutUint32(f[vfChecksum:], vhdChecksum(f[:vhdFooterSize], vfChecksum))
}

func putHeaderChecksum(h []byte) {
	binary.BigEndian.PutUint32(h[vhChecksum:], 0)
	binary.BigEndian.PutUint32(h[vhChecksum:], vhdChecksum(h[:vhdHeaderSize], vhChecksum))
}

func utf16Bytes(s string, bo binary.ByteOrder) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		bo.PutUint16(b[2*i:], c)
	}
	return b
}

func buildVHD(s vhdSpec) ([]byte, vhdLayout) {
	if s.app == "" {
		s.app = "win "
	}
	if s.cyls == 0 {
		s.cyls, s.heads, s.secs = 65535, 16, 255
	}
	bs := int64(s.blockSize)
	entries := (s.size + bs - 1) / bs
	lay := vhdLayout{headerOff: 512, batOff: 1536, blockOff: map[int]int64{}}
	footer := make([]byte, vhdFooterSize)
	copy(footer, "conectix")
	binary.BigEndian.PutUint32(footer[vfFeatures:], 2)
	binary.BigEndian.PutUint32(footer[vfVersion:], 0x10000)
	binary.BigEndian.PutUint64(footer[vfDataOffset:], 512)
	copy(footer[vfCreatorApp:], s.app)
	copy(footer[vfCreatorOS:], "Wi2k")
	binary.BigEndian.PutUint64(footer[vfOrigSize:], uint64(s.size))
	binary.BigEndian.PutUint64(footer[vfCurrentSize:], uint64(s.size))
	binary.BigEndian.PutUint16(footer[vfCyls:], s.cyls)
	footer[vfHeads], footer[vfSecs] = s.heads, s.secs
	binary.BigEndian.PutUint32(footer[vfDiskType:], s.diskType)
	copy(footer[vfUUID:], "0123456789abcdef")
	putFooterChecksum(footer)

	img := make([]byte, 1536)
	copy(img, footer)
	h := img[512:1536]
	copy(h, "cxsparse")
	binary.BigEndian.PutUint64(h[8:], ^uint64(0))
	binary.BigEndian.PutUint64(h[vhTableOffset:], 1536)
	binary.BigEndian.PutUint32(h[vhVersion:], 0x10000)
	binary.BigEndian.PutUint32(h[vhMaxEntries:], uint32(entries))
	binary.BigEndian.PutUint32(h[vhBlockSize:], s.blockSize)
	copy(h[vhParentUUID:], "fedcba9876543210")
	copy(h[vhParentName:vhParentName+512], utf16Bytes(s.parentName, binary.BigEndian))

	batLen := (entries*4 + 511) &^ 511
	bat := bytes.Repeat([]byte{0xff}, int(batLen))
	img = append(img, bat...)
	for i, l := range s.locators {
		off := int64(len(img))
		space := (int64(len(l.data)) + 511) &^ 511
		img = append(img, make([]byte, space)...)
		copy(img[off:], l.data)
		e := img[512+vhLocators+24*i:]
		copy(e, l.code)
		binary.BigEndian.PutUint32(e[4:], uint32(space))
		binary.BigEndian.PutUint32(e[8:], uint32(len(l.data)))
		binary.BigEndian.PutUint64(e[16:], uint64(off))
	}
	bitmapSize := (bs/512/8 + 511) &^ 511
	if bitmapSize == 0 {
		bitmapSize = 512
	}
	for i := 0; i < int(entries); i++ {
		data, ok := s.blocks[i]
		if !ok {
			continue
		}
		off := int64(len(img))
		lay.blockOff[i] = off
		binary.BigEndian.PutUint32(img[1536+4*i:], uint32(off/512))
		bm := s.bitmaps[i]
		if bm == nil {
			bm = bytes.Repeat([]byte{0xff}, int(bitmapSize))
		}
		bmb := make([]byte, bitmapSize)
		copy(bmb, bm)
		img = append(img, bmb...)
		d := make([]byte, bs)
		copy(d, data)
		img = append(img, d...)
	}
	putHeaderChecksum(img[512:1536])
	img = append(img, footer...)
	return img, lay
}

// ---- tests against qemu-img ----

func TestVHDAgainstQemu(t *testing.T) {
	testutil.Tool(t, "qemu-img")
	dir := t.TempDir()
	cases := []struct {
		size int
		opts string
	}{
		{10<<20 + 512, "subformat=fixed"},
		{10<<20 + 512, "subformat=dynamic"},
		{10<<20 + 512, "subformat=fixed,force_size=on"},
		{10<<20 + 512, "subformat=dynamic,force_size=on"},
		{100 << 20, "subformat=fixed"},
		{100 << 20, "subformat=dynamic"},
		{100 << 20, "subformat=dynamic,force_size=on"},
		{3 << 20, "subformat=dynamic"},
	}
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d_%s", c.size, c.opts), func(t *testing.T) {
			raw := testutil.WriteFile(t, dir, fmt.Sprintf("src%d.raw", i), holeyData(c.size, uint64(i+1)))
			vhd := filepath.Join(dir, fmt.Sprintf("img%d.vhd", i))
			testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", c.opts, raw, vhd)
			want, err := os.ReadFile(testutil.QemuRaw(t, "vpc", vhd))
			if err != nil {
				t.Fatal(err)
			}
			vsize := qemuVirtualSize(t, vhd)

			src := vhdSource(t, vhd)
			defer src.Close()
			if f, err := Detect(src.R, src.Size); err != nil || f != VHD {
				t.Fatalf("Detect = %v, %v", f, err)
			}
			img, err := vhdOpenFile(t, vhd, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if img.Size() != vsize || int64(len(want)) != vsize {
				t.Fatalf("Size() = %d, qemu-img virtual size %d, qemu raw %d bytes", img.Size(), vsize, len(want))
			}
			got := readImage(t, img)
			if !bytes.Equal(got, want) {
				t.Fatal("content differs from qemu-img convert output")
			}
			kinds := checkExtents(t, img, want)
			info := img.Info()
			if info.Format != VHD || info.VirtualSize != vsize || info.FileSize != src.Size {
				t.Errorf("Info = %+v", info)
			}
			fixed := bytes.Contains([]byte(c.opts), []byte("fixed"))
			if fixed {
				if info.Details["subformat"] != "fixed" || kinds[Data] != vsize {
					t.Errorf("fixed: subformat %v, kinds %v", info.Details["subformat"], kinds)
				}
			} else {
				if info.Details["subformat"] != "dynamic" || info.ClusterSize != 2<<20 {
					t.Errorf("dynamic: subformat %v, cluster %d", info.Details["subformat"], info.ClusterSize)
				}
				if c.size >= 10<<20 && kinds[Unallocated] < 2<<20 {
					t.Errorf("dynamic: expected unallocated blocks, got %v", kinds)
				}
			}
			if _, err := img.ReadAt(make([]byte, 10), img.Size()-5); err != io.EOF {
				t.Errorf("read past end: %v, want io.EOF", err)
			}
		})
	}
}

// ---- size rule ----

func TestVHDSizeRule(t *testing.T) {
	base := vhdSpec{diskType: vhdTypeDynamic, size: 8 << 20, blockSize: 1 << 20}
	cases := []struct {
		app           string
		cyls          uint16
		heads, secs   uint8
		current, want int64
		wantErr       error
	}{
		{"vpc ", 100, 4, 17, 8 << 20, 100 * 4 * 17 * 512, nil}, // CHS
		{"qemu", 100, 4, 17, 8 << 20, 100 * 4 * 17 * 512, nil}, // CHS
		{"xyz ", 100, 4, 17, 8 << 20, 100 * 4 * 17 * 512, nil}, // unknown app: CHS
		{"win ", 100, 4, 17, 8<<20 + 100, 8 << 20, nil},        // current_size, rounded down
		{"qem2", 100, 4, 17, 8 << 20, 8 << 20, nil},            // current_size
		{"d2v ", 100, 4, 17, 8 << 20, 8 << 20, nil},            // current_size
		{"CTXS", 100, 4, 17, 8 << 20, 8 << 20, nil},            // current_size
		{"tap\x00", 100, 4, 17, 8 << 20, 8 << 20, nil},         // current_size
		{"tap ", 100, 4, 17, 8 << 20, 100 * 4 * 17 * 512, nil}, // not "tap\0": CHS
		{"vpc ", 65535, 16, 255, 8 << 20, 8 << 20, nil},        // max geometry: current_size
		{"vpc ", 0, 0, 0, 8 << 20, 0, ErrBadSize},              // zero geometry
		{"win ", 100, 4, 17, 0xff000001 * 512, 0, ErrBadSize},  // over 2040 GiB
	}
	for _, c := range cases {
		s := base
		s.app, s.cyls, s.heads, s.secs = c.app, c.cyls, c.heads, c.secs
		b, _ := buildVHD(s)
		// the geometry and current size are patched in after building
		for _, f := range [][]byte{b[:512], b[len(b)-512:]} {
			binary.BigEndian.PutUint64(f[vfCurrentSize:], uint64(c.current))
			binary.BigEndian.PutUint16(f[vfCyls:], c.cyls)
			f[vfHeads], f[vfSecs] = c.heads, c.secs
			putFooterChecksum(f)
		}
		img, err := vhdOpenBytes(b, Options{})
		if c.wantErr != nil {
			if !errors.Is(err, c.wantErr) {
				t.Errorf("%q %d/%d/%d: err %v, want %v", c.app, c.cyls, c.heads, c.secs, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.app, err)
			continue
		}
		if img.Size() != c.want {
			t.Errorf("%q %d/%d/%d current %d: Size %d, want %d", c.app, c.cyls, c.heads, c.secs, c.current, img.Size(), c.want)
		}
	}
}

// ---- differencing ----

func diffChild(parentName string, locs []vhdLoc, size int64) (vhdSpec, []byte) {
	const bs = 1 << 20
	s := vhdSpec{diskType: vhdTypeDiff, size: size, blockSize: bs, parentName: parentName, locators: locs,
		blocks: map[int][]byte{}, bitmaps: map[int][]byte{}}
	own := testutil.MixedData(int(size), 99)
	for i := range own { // make the child's sectors recognisable (never zero)
		own[i] |= 0x01
	}
	// block 0: every third sector and a run of 40 from the child
	bm0 := make([]byte, bs/512/8)
	for sct := 0; sct < bs/512; sct++ {
		if sct%3 == 0 || (sct >= 100 && sct < 140) {
			bm0[sct/8] |= 0x80 >> (sct % 8)
		}
	}
	s.blocks[0], s.bitmaps[0] = own[0:bs], bm0
	// block 1: unallocated (parent). block 2: whole block from the child.
	s.blocks[2] = own[2*bs : 3*bs]
	// block 3: allocated but all bits clear (everything from the parent)
	s.blocks[3], s.bitmaps[3] = own[3*bs:4*bs], make([]byte, bs/512/8)
	return s, own
}

func TestVHDDifferencing(t *testing.T) {
	testutil.Tool(t, "qemu-img")
	dir := t.TempDir()
	const psize = 4 << 20
	pdata := testutil.MixedData(psize, 7)
	clear(pdata[2<<20:]) // the parent's second block stays unallocated
	praw := testutil.WriteFile(t, dir, "parent.raw", pdata)
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", praw, filepath.Join(dir, "parent.vhd"))
	pcontent, _ := os.ReadFile(praw)

	const csize = 6 << 20 // larger than the parent: its tail reads as zeros
	locs := []vhdLoc{
		{"W2ku", utf16Bytes(`C:\vms\parent.vhd`, binary.LittleEndian)},
		{"W2ru", utf16Bytes(`.\parent.vhd`, binary.LittleEndian)},
	}
	spec, own := diffChild("unused-name.vhd", locs, csize)
	child, _ := buildVHD(spec)
	cpath := testutil.WriteFile(t, dir, "child.vhd", child)

	want := make([]byte, csize)
	copy(want, pcontent)
	bs := int(spec.blockSize)
	for _, bi := range []int{0, 2, 3} {
		bm := spec.bitmaps[bi]
		for sct := 0; sct < bs/512; sct++ {
			if bm == nil || bm[sct/8]&(0x80>>(sct%8)) != 0 {
				o := bi*bs + sct*512
				copy(want[o:o+512], own[o:o+512])
			}
		}
	}

	img, err := vhdOpenFile(t, cpath, Options{Resolve: dirResolver(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if img.Size() != csize {
		t.Fatalf("Size %d", img.Size())
	}
	if got := readImage(t, img); !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("content differs first at byte %d (sector %d)", i, i/512)
			}
		}
	}
	// Unaligned small reads across child/parent sector boundaries.
	for _, off := range []int64{100, 511, 512*3 - 7, 1<<20 - 300, 2<<20 - 1, 3<<20 + 5} {
		p := make([]byte, 1500)
		if _, err := img.ReadAt(p, off); err != nil || !bytes.Equal(p, want[off:off+1500]) {
			t.Fatalf("ReadAt(%d): %v / mismatch", off, err)
		}
	}
	kinds := checkExtents(t, img, want)
	if kinds[Data] == 0 || kinds[Unallocated] == 0 {
		t.Errorf("kinds %v", kinds)
	}
	// A sector from the child is Data; a sector in a parent hole is Unallocated.
	// Child sector 0 and the parent's data after it form one Data run.
	if e, _ := img.Extent(0, 512*3); e.Kind != Data || e.Len != 512*3 {
		t.Errorf("Extent(0) = %+v", e)
	}
	// Block 2 is the child's; block 3 defers to a parent hole, then the parent ends.
	if e, _ := img.Extent(2<<20, 3<<20); e.Kind != Data || e.Len != 1<<20 {
		t.Errorf("Extent(2 MiB) = %+v", e)
	}
	if e, _ := img.Extent(3<<20, 3<<20); e.Kind != Unallocated || e.Len != 3<<20 {
		t.Errorf("Extent(3 MiB) = %+v", e)
	}
	info := img.Info()
	if info.BackingFile != "parent.vhd" || info.Backing == nil || info.Backing.Format != VHD || info.Details["subformat"] != "differencing" {
		t.Errorf("Info = %+v", info)
	}

	// Fallbacks: W2ku (absolute, unresolvable here) then the unicode name.
	spec2, _ := diffChild("parent.vhd", locs[:1], csize)
	child2, _ := buildVHD(spec2)
	img2, err := vhdOpenFile(t, testutil.WriteFile(t, dir, "child2.vhd", child2), Options{Resolve: dirResolver(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if img2.Info().BackingFile != "parent.vhd" || !bytes.Equal(readImage(t, img2), want) {
		t.Errorf("fallback to unicode name: backing %q", img2.Info().BackingFile)
	}
	// MacX file URL.
	spec3, _ := diffChild("", []vhdLoc{{"MacX", []byte("file://localhost/parent.vhd")}}, csize)
	child3, _ := buildVHD(spec3)
	img3, err := vhdOpenFile(t, testutil.WriteFile(t, dir, "child3.vhd", child3), Options{Resolve: dirResolver(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if img3.Info().BackingFile != "/parent.vhd" {
		t.Errorf("MacX: backing %q", img3.Info().BackingFile)
	}

	// Missing parent.
	spec4, _ := diffChild("gone.vhd", nil, csize)
	child4, _ := buildVHD(spec4)
	p4 := testutil.WriteFile(t, dir, "child4.vhd", child4)
	for _, o := range []Options{{}, {Resolve: dirResolver(dir)}} {
		if _, err := vhdOpenFile(t, p4, o); !errors.Is(err, ErrBackingNotFound) {
			t.Errorf("missing parent: %v", err)
		}
	}
	// No parent named at all.
	spec5, _ := diffChild("", nil, csize)
	child5, _ := buildVHD(spec5)
	if _, err := vhdOpenBytes(child5, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("no parent name: %v", err)
	}
	// Locator past the end of the file.
	spec6, _ := diffChild("parent.vhd", locs[1:], csize)
	child6, _ := buildVHD(spec6)
	binary.BigEndian.PutUint64(child6[512+vhLocators+16:], uint64(len(child6)))
	putHeaderChecksum(child6[512:1536])
	if _, err := vhdOpenBytes(child6, Options{Resolve: dirResolver(dir)}); !errors.Is(err, ErrTruncated) {
		t.Errorf("locator past EOF: %v", err)
	}

	// A loop: a.vhd's parent is b.vhd and b.vhd's parent is a.vhd.
	sa, _ := diffChild("b.vhd", nil, csize)
	sb, _ := diffChild("a.vhd", nil, csize)
	a, _ := buildVHD(sa)
	b, _ := buildVHD(sb)
	pa := testutil.WriteFile(t, dir, "a.vhd", a)
	testutil.WriteFile(t, dir, "b.vhd", b)
	if _, err := vhdOpenFile(t, pa, Options{Resolve: dirResolver(dir)}); !errors.Is(err, ErrBackingCycle) {
		t.Errorf("loop: %v", err)
	}
}

// ---- bad input ----

func TestVHDBadInput(t *testing.T) {
	testutil.Tool(t, "qemu-img")
	dir := t.TempDir()
	raw := testutil.WriteFile(t, dir, "s.raw", holeyData(8<<20, 3))
	dyn := filepath.Join(dir, "d.vhd")
	fix := filepath.Join(dir, "f.vhd")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", raw, dyn)
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", raw, fix)
	d, _ := os.ReadFile(dyn)
	f, _ := os.ReadFile(fix)
	good, err := vhdOpenBytes(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	goodData := readImage(t, good)

	// Layout of qemu's dynamic image: header at 512, BAT at 1536, blocks after.
	const batOff = 1536
	bat := func(b []byte, i int) []byte { return b[batOff+4*i:] }
	var allocated []int
	for i := 0; i < 4; i++ {
		if binary.BigEndian.Uint32(bat(d, i)) != vhdUnallocated {
			allocated = append(allocated, i)
		}
	}
	if len(allocated) < 2 {
		t.Fatalf("fixture has allocated blocks %v", allocated)
	}
	hdr := func(b []byte) []byte { return b[512:1536] }
	mut := func(src []byte, m func(b []byte)) []byte {
		b := bytes.Clone(src)
		m(b)
		return b
	}

	small, _ := buildVHD(vhdSpec{diskType: vhdTypeDynamic, size: 32 << 10, blockSize: 4096,
		blocks: map[int][]byte{1: testutil.MixedData(4096, 1)}})
	if _, err := vhdOpenBytes(small, Options{}); err != nil {
		t.Fatal(err)
	}
	notCorruptKind := func(err error) bool {
		return errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrChecksum)
	}
	cases := []struct {
		name  string
		b     []byte
		check func(error) bool
		want  string
	}{
		{"fixed trailing footer checksum", mut(f, func(b []byte) { b[len(b)-100] ^= 1 }), is(ErrChecksum), "ErrChecksum"},
		{"dynamic both footer checksums", mut(d, func(b []byte) { b[len(b)-100] ^= 1; b[100] ^= 1 }), is(ErrChecksum), "ErrChecksum"},
		{"dynamic header checksum", mut(d, func(b []byte) { hdr(b)[900] ^= 1 }), is(ErrChecksum), "ErrChecksum"},
		{"no dynamic header cookie", mut(d, func(b []byte) { hdr(b)[0] = 'X'; putHeaderChecksum(hdr(b)) }), notCorruptKind, "ErrCorrupt"},
		{"BAT entry past EOF", mut(d, func(b []byte) {
			binary.BigEndian.PutUint32(bat(b, allocated[0]), uint32(len(b)/512+10))
		}), is(ErrTruncated), "ErrTruncated"},
		{"BAT entry straddles EOF", mut(d, func(b []byte) {
			binary.BigEndian.PutUint32(bat(b, allocated[0]), uint32(len(b)/512-2))
		}), is(ErrTruncated), "ErrTruncated"},
		{"BAT entry at header", mut(d, func(b []byte) { binary.BigEndian.PutUint32(bat(b, allocated[0]), 1) }), notCorruptKind, "ErrCorrupt"},
		{"BAT entry at footer copy", mut(d, func(b []byte) { binary.BigEndian.PutUint32(bat(b, allocated[0]), 0) }), notCorruptKind, "ErrCorrupt"},
		{"BAT entry over trailing footer", mut(d, func(b []byte) {
			binary.BigEndian.PutUint32(bat(b, allocated[0]), uint32((len(b)-512-(2<<20))/512))
		}), notCorruptKind, "ErrCorrupt"},
		{"two BAT entries share a block", mut(d, func(b []byte) {
			copy(bat(b, allocated[1])[:4], bat(b, allocated[0])[:4])
		}), notCorruptKind, "ErrCorrupt"},
		{"BAT larger than the file", mut(small, func(b []byte) {
			binary.BigEndian.PutUint32(hdr(b)[vhMaxEntries:], 1000000)
			putHeaderChecksum(hdr(b))
		}), is(ErrTruncated), "ErrTruncated"},
		{"huge max_table_entries", mut(d, func(b []byte) {
			binary.BigEndian.PutUint32(hdr(b)[vhMaxEntries:], 0xFFFFFFFF)
			putHeaderChecksum(hdr(b))
		}), notCorruptKind, "ErrCorrupt"},
		{"BAT too small for the disk", mut(d, func(b []byte) {
			binary.BigEndian.PutUint32(hdr(b)[vhMaxEntries:], 1)
			putHeaderChecksum(hdr(b))
		}), notCorruptKind, "ErrCorrupt"},
		{"BAT over the header", mut(d, func(b []byte) {
			binary.BigEndian.PutUint64(hdr(b)[vhTableOffset:], 1024)
			putHeaderChecksum(hdr(b))
		}), notCorruptKind, "ErrCorrupt"},
		{"BAT offset past EOF", mut(d, func(b []byte) {
			binary.BigEndian.PutUint64(hdr(b)[vhTableOffset:], 1<<62)
			putHeaderChecksum(hdr(b))
		}), is(ErrTruncated), "ErrTruncated"},
		{"block size not a power of two", mut(d, func(b []byte) {
			binary.BigEndian.PutUint32(hdr(b)[vhBlockSize:], 3<<20)
			putHeaderChecksum(hdr(b))
		}), notCorruptKind, "ErrCorrupt"},
		{"block size 256 bytes", mut(d, func(b []byte) {
			binary.BigEndian.PutUint32(hdr(b)[vhBlockSize:], 256)
			putHeaderChecksum(hdr(b))
		}), notCorruptKind, "ErrCorrupt"},
		{"block size 2 GiB", mut(d, func(b []byte) {
			binary.BigEndian.PutUint32(hdr(b)[vhBlockSize:], 1<<31)
			putHeaderChecksum(hdr(b))
		}), is(ErrUnsupported), "ErrUnsupported"},
		{"header offset past EOF", mut(d, func(b []byte) {
			for _, ft := range [][]byte{b[:512], b[len(b)-512:]} {
				binary.BigEndian.PutUint64(ft[vfDataOffset:], 1<<40)
				putFooterChecksum(ft)
			}
		}), is(ErrTruncated), "ErrTruncated"},
		{"header overlapping footer copy", mut(d, func(b []byte) {
			for _, ft := range [][]byte{b[:512], b[len(b)-512:]} {
				binary.BigEndian.PutUint64(ft[vfDataOffset:], 0)
				putFooterChecksum(ft)
			}
		}), notCorruptKind, "ErrCorrupt"},
		{"disk type 5", mut(d, func(b []byte) {
			for _, ft := range [][]byte{b[:512], b[len(b)-512:]} {
				binary.BigEndian.PutUint32(ft[vfDiskType:], 5)
				putFooterChecksum(ft)
			}
		}), is(ErrUnsupported), "ErrUnsupported"},
		{"fixed disk larger than its data", mut(f, func(b []byte) {
			ft := b[len(b)-512:]
			binary.BigEndian.PutUint64(ft[vfCurrentSize:], uint64(len(b)))
			putFooterChecksum(ft)
		}), is(ErrTruncated), "ErrTruncated"},
		{"no footer", make([]byte, 4096), is(ErrUnknownFormat), "ErrUnknownFormat"},
		{"tiny file", []byte("conectix"), is(ErrTruncated), "ErrTruncated"},
	}
	for _, c := range cases {
		_, err := vhdOpenBytes(c.b, Options{Format: VHD})
		if !c.check(err) {
			t.Errorf("%s: err = %v, want %s", c.name, err, c.want)
		}
	}

	// A bad trailing footer with a good copy at 0: the copy is used.
	img, err := vhdOpenBytes(mut(d, func(b []byte) { b[len(b)-100] ^= 1 }), Options{})
	if err != nil || !bytes.Equal(readImage(t, img), goodData) {
		t.Errorf("bad trailing footer, good copy: %v", err)
	}

	// Truncation at many offsets.
	for _, cut := range []int{0, 1, 100, 511, 512, 513, 1000, 1535, 1536, 1600, 2047, 2048, 4096,
		len(d) / 3, len(d) / 2, len(d) - 2<<20, len(d) - 1<<20, len(d) - 513, len(d) - 512, len(d) - 511, len(d) - 100, len(d) - 1} {
		_, err := vhdOpenBytes(d[:cut], Options{Format: VHD})
		switch {
		case cut == 0:
			if !errors.Is(err, ErrBadSize) && !errors.Is(err, ErrTruncated) {
				t.Errorf("cut %d: %v", cut, err)
			}
		case cut < len(d)-512:
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("dynamic cut at %d: err = %v, want ErrTruncated", cut, err)
			}
		default: // only the trailing footer is damaged: the copy at 0 serves
			if err != nil {
				t.Errorf("dynamic cut at %d (in the trailing footer): %v", cut, err)
			}
		}
	}
	// (Cutting one byte leaves a valid old-style 511-byte footer, tested below.)
	for _, cut := range []int{100, 512, len(f) / 2, len(f) - 512, len(f) - 2} {
		if _, err := vhdOpenBytes(f[:cut], Options{Format: VHD}); !errors.Is(err, ErrUnknownFormat) && !errors.Is(err, ErrTruncated) {
			t.Errorf("fixed cut at %d: %v", cut, err)
		}
	}
}

func is(sentinel error) func(error) bool {
	return func(err error) bool { return errors.Is(err, sentinel) }
}

func TestVHD511ByteFooter(t *testing.T) {
	// An old fixed image whose footer lacks its last (reserved) byte.
	data := testutil.MixedData(64<<10, 5)
	s := vhdSpec{diskType: vhdTypeFixed, size: 64 << 10, blockSize: 512}
	b, _ := buildVHD(s)
	footer := b[len(b)-512 : len(b)-1]
	img, err := vhdOpenBytes(append(bytes.Clone(data), footer...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Size() != 64<<10 || !bytes.Equal(readImage(t, img), data) {
		t.Fatal("511-byte footer: wrong content")
	}
}

// ---- fuzzing ----

func vhdFuzzSeeds(t testing.TB) [][]byte {
	dir := t.TempDir()
	var seeds [][]byte
	raw := testutil.WriteFile(t, dir, "s.raw", testutil.MixedData(48<<10, 1))
	zero := testutil.WriteFile(t, dir, "z.raw", make([]byte, 4<<20))
	for i, c := range []struct{ src, opts string }{
		{raw, "subformat=fixed"},
		{raw, "subformat=fixed,force_size=on"},
		{zero, "subformat=dynamic"},
		{zero, "subformat=dynamic,force_size=on"},
	} {
		p := filepath.Join(dir, fmt.Sprintf("%d.vhd", i))
		testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", c.opts, c.src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	small := func(dt uint32) []byte {
		bm := []byte{0xA5}
		s := vhdSpec{diskType: dt, size: 32 << 10, blockSize: 4096, parentName: "p",
			locators: []vhdLoc{{"W2ru", utf16Bytes(`.\p`, binary.LittleEndian)}},
			blocks:   map[int][]byte{0: testutil.MixedData(4096, 2), 3: testutil.MixedData(4096, 3)},
			bitmaps:  map[int][]byte{3: bm}}
		b, _ := buildVHD(s)
		return b
	}
	return append(seeds, small(vhdTypeDynamic), small(vhdTypeDiff))
}

// vhdFixChecksums returns a copy of b with valid checksums in the footer copy
// at 0, the trailing footer and the dynamic header the footer points at.
func vhdFixChecksums(b []byte) []byte {
	b = bytes.Clone(b)
	if len(b) < vhdFooterSize {
		return b
	}
	for _, ft := range [][]byte{b[:512], b[len(b)-512:]} {
		if bytes.Equal(ft[:8], vhdCookie) {
			putFooterChecksum(ft)
			if off := binary.BigEndian.Uint64(ft[vfDataOffset:]); off <= uint64(len(b)-vhdHeaderSize) && len(b) >= vhdHeaderSize {
				putHeaderChecksum(b[off : off+vhdHeaderSize])
			}
		}
	}
	return b
}

func FuzzVHD(f *testing.F) {
	for _, s := range vhdFuzzSeeds(f) {
		f.Add(s)
	}
	parent := testutil.MixedData(24<<10, 9)
	resolve := func(p, b string) (Source, error) {
		return Source{Name: "parent", R: bytes.NewReader(parent), Size: int64(len(parent))}, nil
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Checksums gate almost every mutation; also try the input with its
		// footers' and dynamic header's checksums repaired, to reach past them.
		for i, opts := range []Options{{Resolve: resolve}, {Format: VHD, Resolve: resolve}, {Format: VHD}} {
			in := data
			if i == 1 {
				in = vhdFixChecksums(data)
			}
			img, err := vhdOpenBytes(in, opts)
			if err != nil {
				if !isSentinel(err) {
					t.Fatalf("open: non-sentinel error %v", err)
				}
				continue
			}
			size := img.Size()
			buf := make([]byte, 64<<10)
			off := int64(0)
			for step := 0; step < 64 && off < size; step++ {
				e, err := img.Extent(off, size-off)
				if err != nil {
					if !isSentinel(err) {
						t.Fatalf("extent: non-sentinel error %v", err)
					}
					break
				}
				if e.Off != off || e.Len < 1 || e.Len > size-off {
					t.Fatalf("Extent(%d) = %+v (size %d)", off, e, size)
				}
				n := min(e.Len, int64(len(buf)))
				if got, err := img.ReadAt(buf[:n], off); err != nil && err != io.EOF {
					if !isSentinel(err) {
						t.Fatalf("read: non-sentinel error %v", err)
					}
					if got < 0 || int64(got) >= n {
						t.Fatalf("ReadAt(%d, %d) = %d with %v: a failed read must fill fewer bytes than asked", off, n, got, err)
					}
				}
				off += e.Len
			}
			img.Close()
		}
	})
}

// TestVHDMutations sets every metadata byte of small images to a few
// extreme values (checksums repaired) and walks what still opens: no panic,
// only sentinel errors, and extents that tile the disk.
func TestVHDMutations(t *testing.T) {
	seeds := vhdFuzzSeeds(t)
	parent := testutil.MixedData(24<<10, 9)
	resolve := func(p, b string) (Source, error) {
		return Source{Name: "parent", R: bytes.NewReader(parent), Size: int64(len(parent))}, nil
	}
	opened := 0
	for si, seed := range seeds {
		if len(seed) > 64<<10 {
			continue
		}
		// metadata: footer copy, dynamic header, BAT, locators (first 4 KiB) and the trailing footer
		var offs []int
		meta := 4096
		if !bytes.Equal(seed[:8], vhdCookie) {
			meta = 0 // fixed: only the trailing footer is metadata
		}
		for o := 0; o < min(len(seed), meta); o++ {
			offs = append(offs, o)
		}
		for o := len(seed) - 512; o < len(seed); o++ {
			offs = append(offs, o)
		}
		for _, o := range offs {
			for _, v := range []byte{0, 1, 0x7f, 0x80, 0xff} {
				b := bytes.Clone(seed)
				if b[o] == v {
					continue
				}
				b[o] = v
				b = vhdFixChecksums(b)
				img, err := vhdOpenBytes(b, Options{Resolve: resolve})
				if err != nil {
					if !isSentinel(err) {
						t.Fatalf("seed %d byte %d=%#x: non-sentinel error %v", si, o, v, err)
					}
					continue
				}
				opened++
				size := img.Size()
				buf := make([]byte, 8<<10)
				off := int64(0)
				for step := 0; step < 16 && off < size; step++ {
					e, err := img.Extent(off, size-off)
					if err != nil {
						if !isSentinel(err) {
							t.Fatalf("seed %d byte %d=%#x: extent: %v", si, o, v, err)
						}
						break
					}
					if e.Off != off || e.Len < 1 || e.Len > size-off {
						t.Fatalf("seed %d byte %d=%#x: Extent(%d) = %+v", si, o, v, off, e)
					}
					if _, err := img.ReadAt(buf[:min(e.Len, int64(len(buf)))], off); err != nil && err != io.EOF && !isSentinel(err) {
						t.Fatalf("seed %d byte %d=%#x: read: %v", si, o, v, err)
					}
					off += e.Len
				}
				img.Close()
			}
		}
	}
	if opened == 0 {
		t.Fatal("no mutant opened")
	}
}
