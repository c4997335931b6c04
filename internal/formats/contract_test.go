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
	"regexp"
	"testing"

	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
	"aerodisk/internal/testutil"
)

// The contract every reader keeps (image.go): ReadAt returns the bytes it
// filled along with the error, Extent reports an error only for the first
// byte of a run, Details keys are kebab-case.

var errInjected = errors.New("injected read error")

// badRegion is a container file with unreadable bytes [bad, bad+badLen)
// (none while badLen is 0): a read that reaches them fills what precedes
// them and fails, like a disk with a bad sector.
type badRegion struct {
	b           []byte
	bad, badLen int64
}

func (r *badRegion) ReadAt(p []byte, off int64) (int, error) {
	if r.badLen > 0 && off < r.bad+r.badLen && off+int64(len(p)) > r.bad {
		n := 0
		if off < r.bad {
			n = copy(p, r.b[off:r.bad])
		}
		return n, errInjected
	}
	return bytes.NewReader(r.b).ReadAt(p, off)
}

// contractRand is random content: every 32-byte string of it occurs once,
// so the container offset that holds a logical byte can be found by search.
func contractRand(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// physOf returns the offset in container that holds the logical byte l of
// want (found by the 32 bytes from l, which must occur exactly once).
func physOf(t *testing.T, container, want []byte, l int64) int64 {
	t.Helper()
	key := want[l : l+32]
	if c := bytes.Count(container, key); c != 1 {
		t.Fatalf("the content at logical %d occurs %d times in the container", l, c)
	}
	return int64(bytes.Index(container, key))
}

// contractImage is a disk image of one reader, for the contract tests.
type contractImage struct {
	name    string
	top     []byte // the container
	backing []byte // its backing file's container (raw, or nil)
	want    []byte // logical content
	hole    int64  // an unallocated (all-zero) 64 KiB stretch starts here
}

// open opens the image; then the bytes of the container that holds the
// logical byte l (the top one, or the backing file's when inBacking) become
// unreadable from there on for badLen bytes (none when badLen is 0).
func (c contractImage) open(t *testing.T, l int64, inBacking bool, badLen int64) Image {
	t.Helper()
	top := &badRegion{b: c.top}
	back := &badRegion{b: c.backing}
	img, err := Open(Source{Name: c.name, R: top, Size: int64(len(c.top))}, Options{
		Resolve: func(parent, name string) (Source, error) {
			if c.backing == nil {
				return Source{}, fmt.Errorf("%w: %s", ErrBackingNotFound, name)
			}
			return Source{Name: "backing.raw", R: back, Size: int64(len(c.backing))}, nil
		},
	})
	if err != nil {
		t.Fatalf("%s: open: %v", c.name, err)
	}
	t.Cleanup(func() { img.Close() })
	if badLen > 0 {
		r := top
		if inBacking {
			r = back
		}
		r.bad, r.badLen = physOf(t, r.b, c.want, l), badLen
	}
	return img
}

const contractSize = 1 << 20

// contractContent is random data with an all-zero 64 KiB stretch at hole.
func contractContent(n int, seed uint64, hole int64) []byte {
	b := contractRand(n, seed)
	clear(b[hole : hole+64<<10])
	return b
}

// contractImages builds one image per reader (and per VHD and qcow2 layout).
func contractImages(t *testing.T) []contractImage {
	testutil.Tool(t, "qemu-img")
	testutil.Tool(t, "xorriso")
	dir := t.TempDir()
	const hole = 128 << 10
	want := contractContent(contractSize, 1, hole)
	raw := testutil.WriteFile(t, dir, "disk.raw", want)
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	qemu := func(name string, args ...string) []byte {
		p := filepath.Join(dir, name)
		testutil.QemuImg(t, append(append([]string{"convert", "-f", "raw"}, args...), raw, p)...)
		return read(p)
	}
	imgs := []contractImage{
		{name: "raw", top: want, want: want, hole: hole},
		{name: "qcow2 v2", top: qemu("v2.qcow2", "-O", "qcow2", "-o", "compat=0.10,cluster_size=4096"), want: want, hole: hole},
		{name: "qcow2 v3", top: qemu("v3.qcow2", "-O", "qcow2", "-o", "compat=1.1"), want: want, hole: hole},
		{name: "vhd fixed", top: qemu("f.vhd", "-O", "vpc", "-o", "subformat=fixed,force_size=on"), want: want, hole: hole},
		{name: "vhd dynamic", top: qemu("d.vhd", "-O", "vpc", "-o", "subformat=dynamic,force_size=on"), want: want, hole: hole},
	}

	// qcow2 over a raw backing file that holds everything
	child := filepath.Join(dir, "child.qcow2")
	testutil.QemuImg(t, "create", "-f", "qcow2", "-b", "disk.raw", "-F", "raw", child)
	imgs = append(imgs, contractImage{name: "qcow2 over raw backing", top: read(child), backing: want, want: want, hole: hole})

	// VHD differencing: its one block (1 MiB) has its first 160 KiB from
	// the child, the rest from the raw parent.
	parent := contractContent(contractSize, 2, hole)
	own := contractRand(contractSize, 3)
	bm := make([]byte, 256)
	for s := range 320 {
		bm[s/8] |= 0x80 >> (s % 8)
	}
	vhd, _ := buildVHD(vhdSpec{diskType: vhdTypeDiff, size: contractSize, blockSize: contractSize,
		parentName: "backing.raw", blocks: map[int][]byte{0: own}, bitmaps: map[int][]byte{0: bm}})
	diffWant := bytes.Clone(parent)
	copy(diffWant, own[:160<<10])
	imgs = append(imgs, contractImage{name: "vhd differencing", top: vhd, backing: parent, want: diffWant, hole: hole})

	// DiskCopy 4.2: a 400K floppy
	dcWant := contractContent(409600, 4, hole)
	imgs = append(imgs, contractImage{name: "dc42", top: testutil.DC42("contract", dcWant, nil), want: dcWant, hole: hole})

	// ISO 9660: the logical disk is the whole file
	content := filepath.Join(dir, "iso")
	os.Mkdir(content, 0o755)
	testutil.WriteFile(t, content, "DATA.BIN", contractRand(contractSize, 5))
	iso := filepath.Join(dir, "c.iso")
	testutil.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-o", iso, content)
	isoBytes := read(iso)
	isoHole := int64(bytes.Index(isoBytes, contractRand(64, 5))) + 200<<10
	clear(isoBytes[isoHole : isoHole+64<<10])
	imgs = append(imgs, contractImage{name: "iso", top: isoBytes, want: isoBytes, hole: isoHole})

	// AEROSPAR with 4 KiB blocks: the hole's blocks are not stored
	st := storage.NewMem(nil)
	d, err := sparse.Create(st, contractSize, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	imgs = append(imgs, contractImage{name: "aerospar", top: st.Bytes(), want: want, hole: hole})
	return imgs
}

// TestReadAtCountsFilledBytes: a read that runs into an unreadable or
// corrupt region returns the error with n = the bytes it filled before the
// region, and those bytes are the disk's content — for every reader, and
// through backing images.
func TestReadAtCountsFilledBytes(t *testing.T) {
	for _, c := range contractImages(t) {
		t.Run(c.name, func(t *testing.T) {
			// The read starts before the zero hole and runs through it into
			// data whose container bytes fail from logical byte l on (in the
			// backing file when there is one: the VHD's read starts in the
			// child's sectors and goes on in the parent's).
			off := c.hole - 10000
			l := c.hole + 64<<10 + 7001
			img := c.open(t, l, c.backing != nil, 4096)
			p := bytes.Repeat([]byte{0xa5}, int(l-off)+100000)
			n, err := img.ReadAt(p, off)
			if !errors.Is(err, errInjected) {
				t.Fatalf("ReadAt: %v, want the injected error", err)
			}
			if want := int(l - off); n != want {
				t.Fatalf("ReadAt returned n = %d, want %d (the bytes before the bad region)", n, want)
			}
			if i := firstDiff(p[:n], c.want[off:l]); i >= 0 {
				t.Fatalf("byte %d of the %d reported filled differs from the disk", i, n)
			}
			// The same read without the bad region succeeds whole.
			q := make([]byte, len(p))
			if n, err := c.open(t, l, false, 0).ReadAt(q, off); n != len(q) || (err != nil && err != io.EOF) {
				t.Fatalf("clean ReadAt = %d, %v", n, err)
			}
		})
	}
}

// TestReadAtCountsFilledBytesCorrupt: the same with structural problems
// found while reading: a qcow2 L2 entry that is not cluster-aligned, and a
// qcow2 file cut inside a data cluster.
func TestReadAtCountsFilledBytesCorrupt(t *testing.T) {
	testutil.Tool(t, "qemu-img")
	dir := t.TempDir()
	want := contractRand(contractSize, 6)
	raw := testutil.WriteFile(t, dir, "disk.raw", want)
	path := filepath.Join(dir, "d.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw, path)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const cs = 4096
	l2 := int64(binary.BigEndian.Uint64(file[int64(binary.BigEndian.Uint64(file[40:])):]) & qcowOffsetMask)
	l := int64(150*cs + 1234)
	off := int64(100*cs + 17)

	corrupt := bytes.Clone(file)
	e := binary.BigEndian.Uint64(corrupt[l2+8*(l/cs):])
	binary.BigEndian.PutUint64(corrupt[l2+8*(l/cs):], e+512) // not cluster-aligned
	cut := file[:physOf(t, file, want, l)]
	for _, c := range []struct {
		name  string
		file  []byte
		wantN int64
		is    error
	}{
		{"unaligned L2 entry", corrupt, l/cs*cs - off, ErrCorrupt},
		{"file cut inside a cluster", cut, l - off, ErrTruncated},
	} {
		img, err := Open(memSource(c.name, c.file), Options{})
		if err != nil {
			t.Fatalf("%s: open: %v", c.name, err)
		}
		p := make([]byte, 200*cs)
		n, err := img.ReadAt(p, off)
		if !errors.Is(err, c.is) {
			t.Errorf("%s: ReadAt: %v, want %v", c.name, err, c.is)
		}
		if int64(n) != c.wantN || !bytes.Equal(p[:n], want[off:off+int64(n)]) {
			t.Errorf("%s: ReadAt returned n = %d, want %d of the disk's bytes", c.name, n, c.wantN)
		}
		img.Close()
	}
}

// TestExtentErrorEndsRun: a problem found while extending a run ends it
// before the bad spot without an error; the query that starts there
// reports it, and a walk yields every good extent first.
func TestExtentErrorEndsRun(t *testing.T) {
	testutil.Tool(t, "qemu-img")
	dir := t.TempDir()

	// qcow2: an L2 entry that is not cluster-aligned at cluster 150
	want := contractRand(contractSize, 7)
	raw := testutil.WriteFile(t, dir, "disk.raw", want)
	path := filepath.Join(dir, "d.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw, path)
	q, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	l2 := int64(binary.BigEndian.Uint64(q[int64(binary.BigEndian.Uint64(q[40:])):]) & qcowOffsetMask)
	binary.BigEndian.PutUint64(q[l2+8*150:], binary.BigEndian.Uint64(q[l2+8*150:])+512)
	qimg, err := Open(memSource("q", q), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer qimg.Close()

	// VHD differencing: block 0 the child's, block 1's sector bitmap unreadable
	const bs = 1 << 20
	own := contractRand(2*bs, 8)
	vhd, lay := buildVHD(vhdSpec{diskType: vhdTypeDiff, size: 2 * bs, blockSize: bs, parentName: "p.raw",
		blocks: map[int][]byte{0: own[:bs], 1: own[bs:]}})
	vimg, err := Open(Source{Name: "v", R: &badRegion{b: vhd, bad: lay.blockOff[1], badLen: 512}, Size: int64(len(vhd))}, Options{
		Resolve: func(parent, name string) (Source, error) {
			return Source{Name: "p.raw", R: bytes.NewReader(make([]byte, 2*bs)), Size: 2 * bs}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer vimg.Close()

	for _, c := range []struct {
		name string
		img  Image
		bad  int64 // where the problem lies
		is   error
	}{
		{"qcow2", qimg, 150 * 4096, ErrCorrupt},
		{"vhd differencing", vimg, bs, errInjected},
	} {
		e, err := c.img.Extent(0, c.img.Size())
		if err != nil || e != (Extent{Off: 0, Len: c.bad, Kind: Data}) {
			t.Errorf("%s: Extent(0) = %+v, %v; want the data run up to %d and no error", c.name, e, err, c.bad)
		}
		if _, err := c.img.Extent(c.bad, c.img.Size()-c.bad); !errors.Is(err, c.is) {
			t.Errorf("%s: Extent(%d): %v, want %v", c.name, c.bad, err, c.is)
		}
		var got []Extent
		var walkErr error
		for e, err := range Extents(c.img, 0, c.img.Size()) {
			if err != nil {
				walkErr = err
				break
			}
			got = append(got, e)
		}
		if !errors.Is(walkErr, c.is) || len(got) == 0 || got[len(got)-1].End() != c.bad {
			t.Errorf("%s: walk yielded %+v then %v; want extents up to %d, then %v", c.name, got, walkErr, c.bad, c.is)
		}
	}
}

// scripted is an Image whose Extent answers are given.
type scripted struct {
	size  int64
	ext   func(off, n int64) (Extent, error)
	calls int
}

func (s *scripted) ReadAt(p []byte, off int64) (int, error) { return 0, io.EOF }
func (s *scripted) Size() int64                             { return s.size }
func (s *scripted) Info() Info                              { return Info{Format: "test"} }
func (s *scripted) Close() error                            { return nil }
func (s *scripted) Extent(off, n int64) (Extent, error) {
	s.calls++
	return s.ext(off, n)
}

func TestExtents(t *testing.T) {
	// 1000-byte extents alternating Data and Zero, over a 4500-byte disk
	alternating := func(off, n int64) (Extent, error) {
		k := Data
		if off/1000%2 == 1 {
			k = Zero
		}
		return Extent{Off: off, Len: min(n, 1000-off%1000), Kind: k}, nil
	}
	walk := func(img Image, off, end int64, stopAfter int) ([]Extent, error) {
		var got []Extent
		for e, err := range Extents(img, off, end) {
			if err != nil {
				return got, err
			}
			got = append(got, e)
			if len(got) == stopAfter {
				break
			}
		}
		return got, nil
	}
	img := &scripted{size: 4500, ext: alternating}
	got, err := walk(img, 0, 4500, -1)
	want := []Extent{{0, 1000, Data}, {1000, 1000, Zero}, {2000, 1000, Data}, {3000, 1000, Zero}, {4000, 500, Data}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("whole disk: %v, %v; want %v", got, err, want)
	}
	// a sub-range: the first and last extents are cut to it
	got, err = walk(img, 1500, 3200, -1)
	want = []Extent{{1500, 500, Zero}, {2000, 1000, Data}, {3000, 200, Zero}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("[1500,3200): %v, %v; want %v", got, err, want)
	}
	// the sequence can be walked again, from the start
	seq := Extents(img, 0, 4500)
	for range seq {
	}
	n := 0
	for e := range seq {
		if n == 0 && e.Off != 0 {
			t.Fatalf("second walk starts at %d", e.Off)
		}
		n++
	}
	if n != 5 {
		t.Fatalf("second walk yielded %d extents", n)
	}
	// an empty range asks nothing
	img.calls = 0
	if got, err := walk(img, 700, 700, -1); len(got) != 0 || err != nil || img.calls != 0 {
		t.Fatalf("empty range: %v, %v after %d queries", got, err, img.calls)
	}
	// breaking out of the loop stops the queries
	img.calls = 0
	if got, _ := walk(img, 0, 4500, 2); len(got) != 2 || img.calls != 2 {
		t.Fatalf("break after 2: %d extents, %d queries", len(got), img.calls)
	}
	// an error is yielded once, where it lies, after the extents before it
	bad := &scripted{size: 4500, ext: func(off, n int64) (Extent, error) {
		if off >= 2000 {
			return Extent{}, ErrCorrupt
		}
		return alternating(off, n)
	}}
	if got, err := walk(bad, 0, 4500, -1); len(got) != 2 || !errors.Is(err, ErrCorrupt) || bad.calls != 3 {
		t.Fatalf("error at 2000: %v, %v after %d queries", got, err, bad.calls)
	}
	// answers that break Extent's contract end the walk with an error
	for name, ext := range map[string]func(off, n int64) (Extent, error){
		"empty run":       func(off, n int64) (Extent, error) { return Extent{Off: off, Kind: Data}, nil },
		"wrong start":     func(off, n int64) (Extent, error) { return Extent{Off: off + 1, Len: 1, Kind: Data}, nil },
		"past the range":  func(off, n int64) (Extent, error) { return Extent{Off: off, Len: n + 1, Kind: Data}, nil },
		"negative length": func(off, n int64) (Extent, error) { return Extent{Off: off, Len: -5, Kind: Data}, nil },
	} {
		s := &scripted{size: 4500, ext: ext}
		if got, err := walk(s, 0, 4500, -1); err == nil || len(got) != 0 || s.calls != 1 {
			t.Errorf("%s: %v, %v after %d queries; want an error at once", name, got, err, s.calls)
		}
	}
}

type shortReader struct {
	data []byte
	err  error // returned with every read, full or short
}

func (r shortReader) ReadAt(p []byte, off int64) (int, error) {
	return copy(p, r.data[min(off, int64(len(r.data))):]), r.err
}

func TestReadFull(t *testing.T) {
	data := []byte("0123456789")
	for _, c := range []struct {
		r     io.ReaderAt
		n     int
		off   int64
		wantN int
		is    error
	}{
		{shortReader{data, nil}, 10, 0, 10, nil},
		{shortReader{data, io.EOF}, 4, 6, 4, nil}, // io.EOF with the last byte is a full read
		{shortReader{data, nil}, 8, 6, 4, io.ErrUnexpectedEOF},
		{shortReader{data, io.EOF}, 8, 6, 4, io.ErrUnexpectedEOF},
		{shortReader{data, errInjected}, 8, 6, 4, errInjected},
	} {
		p := make([]byte, c.n)
		n, err := ReadFull(c.r, p, c.off)
		if n != c.wantN || !errors.Is(err, c.is) || string(p[:n]) != string(data[c.off:c.off+int64(n)]) {
			t.Errorf("ReadFull(%d at %d, %v) = %d, %v; want %d, %v", c.n, c.off, c.r.(shortReader).err, n, err, c.wantN, c.is)
		}
	}
	// readFull: a short container file is ErrTruncated, with the count
	n, err := readFull(shortReader{data, io.EOF}, make([]byte, 8), 6, Raw, "test")
	if n != 4 || !errors.Is(err, ErrTruncated) {
		t.Errorf("readFull short: %d, %v", n, err)
	}
}

// TestDC42TagsCount: Tags keeps ReadAt's contract too.
func TestDC42TagsCount(t *testing.T) {
	tags := contractRand(9600, 9)
	file := testutil.DC42("tags", make([]byte, 409600), tags)
	r := &badRegion{b: file}
	img, err := Open(Source{Name: "t", R: r, Size: int64(len(file))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.bad, r.badLen = dc42HeaderSize+409600+5000, 100
	p := make([]byte, 4000)
	n, err := img.(*DC42Image).Tags(p, 3000)
	if !errors.Is(err, errInjected) || n != 2000 || !bytes.Equal(p[:n], tags[3000:5000]) {
		t.Fatalf("Tags = %d, %v; want 2000 and the injected error", n, err)
	}
}

var kebab = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// TestDetailsKeysKebabCase: every reader's Info.Details keys (and the keys
// of maps inside them) are kebab-case, as in qemu-img's JSON.
func TestDetailsKeysKebabCase(t *testing.T) {
	var check func(name, path string, v any)
	check = func(name, path string, v any) {
		switch m := v.(type) {
		case map[string]any:
			for k, x := range m {
				if !kebab.MatchString(k) {
					t.Errorf("%s: Details key %q is not kebab-case", name, path+k)
				}
				check(name, path+k+".", x)
			}
		case map[string]int:
			for k := range m {
				if !kebab.MatchString(k) {
					t.Errorf("%s: Details key %q is not kebab-case", name, path+k)
				}
			}
		}
	}
	for _, c := range contractImages(t) {
		img := c.open(t, 0, false, 0)
		for info := img.Info(); ; info = *info.Backing {
			check(c.name, "", info.Details)
			if info.Backing == nil {
				break
			}
		}
	}
}
