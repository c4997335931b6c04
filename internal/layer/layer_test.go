package layer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/storage"
)

// model is the disk as it must read: every test compares a layer's view
// with one.
type model []byte

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustView(t *testing.T, l *Layer, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if n, err := l.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt whole disk: %d, %v", n, err)
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("view differs from the model at byte %d (block %d): %#x, want %#x", i, int64(i)/l.BlockSize(), got[i], want[i])
			}
		}
	}
}

// op is one random operation on a layer and its model.
func randomOp(r *rand.Rand, l *Layer, m model) (off, n int64, kind string) {
	size := int64(len(m))
	off = r.Int64N(size)
	switch r.IntN(8) {
	case 0: // sector-aligned
		off = off / 512 * 512
		n = min(size-off, 512*(1+r.Int64N(40)))
	case 1: // whole blocks
		off = off / l.bs * l.bs
		n = min(size-off, l.bs*(1+r.Int64N(4)))
	default:
		n = min(size-off, 1+r.Int64N(3*l.bs))
	}
	if r.IntN(6) == 0 {
		return off, n, "discard"
	}
	if r.IntN(10) == 0 {
		return off, n, "zeros"
	}
	return off, n, "write"
}

func apply(t *testing.T, r *rand.Rand, l *Layer, m model, off, n int64, kind string) {
	t.Helper()
	switch kind {
	case "discard":
		if err := l.Discard(off, n); err != nil {
			t.Fatalf("Discard(%d, %d): %v", off, n, err)
		}
		clear(m[off : off+n])
	default:
		p := make([]byte, n)
		if kind == "write" {
			p = randomBytes(r, int(n))
		}
		if k, err := l.WriteAt(p, off); k != len(p) || err != nil {
			t.Fatalf("WriteAt(%d bytes, %d): %d, %v", n, off, k, err)
		}
		copy(m[off:], p)
	}
}

func TestLayerMatchesModel(t *testing.T) {
	cases := []struct {
		name string
		size int64
		bs   uint32
	}{
		{"64K blocks", 8 << 20, DefaultBlockSize},
		{"4K blocks, short last block", 3<<20 + 1536, MinBlockSize},
		{"1M blocks, one table", 5<<20 + 512, MaxBlockSize},
		{"4K blocks, many tables", 5 << 20, MinBlockSize}, // 512 blocks per table: 3 tables
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(c.size), uint64(c.bs)))
			base := randomBytes(r, int(c.size))
			m := model(append([]byte(nil), base...))
			st := storage.NewMem(nil)
			l, err := Create(st, c.size, Options{BlockSize: c.bs, ParentName: "base.img", BaseSize: c.size})
			if err != nil {
				t.Fatal(err)
			}
			l.SetBelow(bytes.NewReader(base))
			mustView(t, l, m)
			for i := range 300 {
				off, n, kind := randomOp(r, l, m)
				apply(t, r, l, m, off, n, kind)
				if i%50 == 49 { // reopen: everything comes from the file
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					if l, err = Open(st, true); err != nil {
						t.Fatalf("reopen: %v", err)
					}
					l.SetBelow(bytes.NewReader(base))
					if h := l.Header(); h.ParentName != "base.img" || h.BaseSize != c.size {
						t.Fatalf("header after reopen: %+v", h)
					}
				}
				if i%25 == 0 {
					mustView(t, l, m)
				}
			}
			mustView(t, l, m)
			s, err := l.Check()
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if s.DataBlocks == 0 || s.Tables == 0 {
				t.Fatalf("Check found nothing: %+v", s)
			}
			// Read-only over the same bytes: the same view, and no writes.
			ro, err := OpenReader(bytes.NewReader(st.Bytes()), int64(len(st.Bytes())))
			if err != nil {
				t.Fatal(err)
			}
			ro.SetBelow(bytes.NewReader(base))
			mustView(t, ro, m)
			if _, err := ro.WriteAt([]byte{1}, 0); !errors.Is(err, diskerr.ErrReadOnly) {
				t.Fatalf("write to a read-only layer: %v", err)
			}
		})
	}
}

// TestLayerChain stacks three layers on a base: each sees its own writes
// over the ones below, and the base is never written.
func TestLayerChain(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const size = 4 << 20
	base := randomBytes(r, size)
	pristine := append([]byte(nil), base...)
	var below io.ReaderAt = bytes.NewReader(base)
	var models []model
	m := model(append([]byte(nil), base...))
	var layers []*Layer
	for k := range 3 {
		l, err := Create(storage.NewMem(nil), size, Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.SetBelow(below)
		for range 60 {
			off, n, kind := randomOp(r, l, m)
			apply(t, r, l, m, off, n, kind)
		}
		mustView(t, l, m)
		models = append(models, append(model(nil), m...))
		layers = append(layers, l)
		below = l
		_ = k
	}
	// The frozen layers still read as they were when the next one started.
	for k, l := range layers {
		mustView(t, l, models[k])
	}
	if !bytes.Equal(base, pristine) {
		t.Fatal("the base was written")
	}
}

func TestLayerBounds(t *testing.T) {
	l, err := Create(storage.NewMem(nil), 1<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.WriteAt(make([]byte, 2), 1<<20-1); !errors.Is(err, diskerr.ErrBadSize) {
		t.Fatalf("write past the end: %v", err)
	}
	if err := l.Discard(-512, 512); !errors.Is(err, diskerr.ErrBadSize) {
		t.Fatalf("negative discard: %v", err)
	}
	p := make([]byte, 1024)
	if n, err := l.ReadAt(p, 1<<20-512); n != 512 || err != io.EOF {
		t.Fatalf("read across the end: %d %v", n, err)
	}
	if _, _, err := l.Lookup(l.Blocks()); !errors.Is(err, diskerr.ErrBadSize) {
		t.Fatalf("lookup past the end: %v", err)
	}
	for _, c := range []struct {
		size int64
		bs   uint32
	}{{0, 0}, {1000, 0}, {MaxDiskSize + 512, 0}, {1 << 20, 3000}, {1 << 20, 2048}, {1 << 20, 2 << 20}} {
		if _, err := Create(storage.NewMem(nil), c.size, Options{BlockSize: c.bs}); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("Create(%d, %d): %v", c.size, c.bs, err)
		}
	}
}

// TestLayerFileSize: a new layer reaches data_offset and no further, and a
// 60 GB one is small.
func TestLayerFileSize(t *testing.T) {
	st := storage.NewMem(nil)
	if _, err := Create(st, 60e9, Options{}); err != nil {
		t.Fatal(err)
	}
	// 60e9/64 KiB = 915,528 blocks; 112 L1 entries: 4096 + 896 bytes, one block.
	if n := len(st.Bytes()); n != DefaultBlockSize {
		t.Fatalf("a blank 60 GB layer is %d bytes, want %d", n, DefaultBlockSize)
	}
}

// TestHeaderSlots: SetParent writes the spare slot; a torn newest slot
// leaves the previous header in force; two bad slots are ErrCorrupt.
func TestHeaderSlots(t *testing.T) {
	st := storage.NewMem(nil)
	l, err := Create(st, 1<<20, Options{ParentName: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetParent("b", 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := l.SetParent("c", 1<<20); err != nil {
		t.Fatal(err)
	}
	l.Close()
	open := func() (Header, error) {
		l, err := Open(st, false)
		if err != nil {
			return Header{}, err
		}
		return l.Header(), nil
	}
	if h, err := open(); err != nil || h.ParentName != "c" || h.Sequence != 3 {
		t.Fatalf("after two relinks: %+v %v", h, err)
	}
	// "c" went to slot 0 (sequence 3). Tear it.
	st.Bytes()[100] ^= 0xff
	if h, err := open(); err != nil || h.ParentName != "b" {
		t.Fatalf("torn newest slot: %+v %v", h, err)
	}
	st.Bytes()[slotSize+100] ^= 0xff
	if _, err := open(); !errors.Is(err, diskerr.ErrCorrupt) {
		t.Fatalf("two torn slots: %v", err)
	}
}

// TestCorruptLayers: damaged files are refused with a named error, and
// Check finds what Open does not look at.
func TestCorruptLayers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const size = 2 << 20
	good := func() []byte {
		st := storage.NewMem(nil)
		l, err := Create(st, size, Options{BlockSize: MinBlockSize})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			off := r.Int64N(size-8192) / 512 * 512
			l.WriteAt(randomBytes(r, 8192), off)
		}
		l.Close()
		return append([]byte(nil), st.Bytes()...)
	}
	g := newGeometry(MinBlockSize, size)
	firstL2 := func(b []byte) int64 {
		for i := range g.l1Entries {
			if e := binary.LittleEndian.Uint64(b[l1Offset+8*i:]); e != 0 {
				return int64(e)
			}
		}
		t.Fatal("no L2 table")
		return 0
	}
	firstData := func(b []byte) (int64, int64) { // entry offset, value
		at := firstL2(b)
		for j := range g.perL2 {
			if e := binary.LittleEndian.Uint64(b[at+8*j:]); e > 1 {
				return at + 8*j, int64(e)
			}
		}
		t.Fatal("no data entry")
		return 0, 0
	}
	cases := []struct {
		name   string
		damage func(b []byte) []byte
		want   error
		check  bool // found only by Check (or the first read)
	}{
		{"shorter than the header", func(b []byte) []byte { return b[:1000] }, diskerr.ErrTruncated, false},
		{"ends before data_offset", func(b []byte) []byte { return b[:l1Offset+8] }, diskerr.ErrTruncated, false},
		{"not a layer", func(b []byte) []byte { copy(b, "XXXXXXXX"); return b }, diskerr.ErrCorrupt, false},
		{"L1 entry misaligned", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[l1Offset:], uint64(g.dataOff+100))
			return b
		}, diskerr.ErrCorrupt, false},
		{"L1 entry past the end", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[l1Offset:], uint64(len(b)))
			return b
		}, diskerr.ErrCorrupt, false},
		{"L1 entry in the header", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[l1Offset:], 0x1000)
			return b
		}, diskerr.ErrCorrupt, false},
		{"L2 entry past the end", func(b []byte) []byte {
			at, _ := firstData(b)
			binary.LittleEndian.PutUint64(b[at:], uint64(len(b)+1<<20))
			return b
		}, diskerr.ErrCorrupt, true},
		{"L2 entry 2", func(b []byte) []byte {
			at, _ := firstData(b)
			binary.LittleEndian.PutUint64(b[at:], 2)
			return b
		}, diskerr.ErrCorrupt, true},
		{"two blocks share a cluster", func(b []byte) []byte {
			at, v := firstData(b)
			binary.LittleEndian.PutUint64(b[at+8:], uint64(v))
			if binary.LittleEndian.Uint64(b[at+8:]) == 0 {
				t.Fatal("no neighbour")
			}
			return b
		}, diskerr.ErrCorrupt, true},
		{"a block names its table", func(b []byte) []byte {
			at, _ := firstData(b)
			binary.LittleEndian.PutUint64(b[at:], uint64(firstL2(b)))
			return b
		}, diskerr.ErrCorrupt, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.damage(good())
			l, err := OpenReader(bytes.NewReader(b), int64(len(b)))
			if !c.check {
				if !errors.Is(err, c.want) {
					t.Fatalf("Open: %v, want %v", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if _, err := l.Check(); !errors.Is(err, c.want) {
				t.Fatalf("Check: %v, want %v", err, c.want)
			}
		})
	}
}

// logStorage records every write so a test can rebuild the file as it was
// after any prefix of them: what a killed tab leaves (docs/overlays.md,
// "Crash rules").
type logStorage struct {
	*storage.Mem
	log []logged
}

type logged struct {
	off      int64
	data     []byte
	truncate bool
}

func (s *logStorage) WriteAt(p []byte, off int64) (int, error) {
	s.log = append(s.log, logged{off: off, data: append([]byte(nil), p...)})
	return s.Mem.WriteAt(p, off)
}

func (s *logStorage) Truncate(n int64) error {
	s.log = append(s.log, logged{off: n, truncate: true})
	return s.Mem.Truncate(n)
}

func replay(start []byte, log []logged) *storage.Mem {
	m := storage.NewMem(start)
	for _, w := range log {
		if w.truncate {
			m.Truncate(w.off)
		} else {
			m.WriteAt(w.data, w.off)
		}
	}
	return m
}

// TestCrashAtEveryWrite cuts the write log of a random workload after
// every single write: each cut opens, passes Check, and reads as the disk
// after the operations that finished, except that the blocks of the one in
// progress may read as before or after it.
func TestCrashAtEveryWrite(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const size = 1 << 20
	const bs = MinBlockSize
	base := randomBytes(r, size)
	st := &logStorage{Mem: storage.NewMem(nil)}
	l, err := Create(st, size, Options{BlockSize: bs})
	if err != nil {
		t.Fatal(err)
	}
	l.SetBelow(bytes.NewReader(base))
	start := append([]byte(nil), st.Bytes()...)
	st.log = nil
	type step struct {
		before, after model
		logEnd        int
		off, n        int64
	}
	m := model(append([]byte(nil), base...))
	var steps []step
	for range 120 {
		before := append(model(nil), m...)
		off, n, kind := randomOp(r, l, m)
		n = min(n, 2*bs)
		apply(t, r, l, m, off, n, kind)
		steps = append(steps, step{before: before, after: append(model(nil), m...), logEnd: len(st.log), off: off, n: n})
	}
	cut := 0
	for i, s := range steps {
		begin := 0
		if i > 0 {
			begin = steps[i-1].logEnd
		}
		for k := begin; k <= s.logEnd; k++ {
			cut++
			f := replay(start, st.log[:k])
			l, err := Open(f, false)
			if err != nil {
				t.Fatalf("cut after write %d (op %d): Open: %v", k, i, err)
			}
			if _, err := l.Check(); err != nil {
				t.Fatalf("cut after write %d (op %d): Check: %v", k, i, err)
			}
			l.SetBelow(bytes.NewReader(base))
			got := make([]byte, size)
			if _, err := l.ReadAt(got, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
			// Blocks of the op in progress: before or after, whole.
			for b := int64(0); b < size/bs; b++ {
				g, was, will := got[b*bs:(b+1)*bs], s.before[b*bs:(b+1)*bs], s.after[b*bs:(b+1)*bs]
				inOp := b*bs < s.off+s.n && s.off < (b+1)*bs
				if bytes.Equal(g, was) || (inOp && bytes.Equal(g, will)) {
					continue
				}
				t.Fatalf("cut after write %d (op %d [%d,+%d)): block %d reads neither as before nor as after", k, i, s.off, s.n, b)
			}
		}
	}
	t.Logf("%d cuts checked", cut)
}

// sliceSource is a DeltaSource over one layer.
type layerSource struct{ l *Layer }

func (s layerSource) Changed(yield func(int64, State) bool) error { return s.l.Walk(yield) }
func (s layerSource) ReadBlock(b int64, p []byte) error {
	_, err := s.l.ReadBlock(b, p)
	return err
}

func TestDeltaRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const size = 6<<20 + 512
	base := randomBytes(r, size)
	m := model(append([]byte(nil), base...))
	l, err := Create(storage.NewMem(nil), size, Options{BlockSize: MinBlockSize})
	if err != nil {
		t.Fatal(err)
	}
	l.SetBelow(bytes.NewReader(base))
	for range 200 {
		off, n, kind := randomOp(r, l, m)
		apply(t, r, l, m, off, n, kind)
	}
	stats, _ := l.Check()
	var out bytes.Buffer
	f, err := WriteDelta(&out, DeltaInfo{DiskSize: size, BlockSize: MinBlockSize, BaseCRC32: 0x12345678, BaseName: "base.img"}, layerSource{l})
	if err != nil {
		t.Fatal(err)
	}
	if f.DataBlocks != stats.DataBlocks || f.ZeroBlocks != stats.ZeroBlocks {
		t.Fatalf("footer %+v, layer %+v", f, stats)
	}
	b := out.Bytes()
	if got, err := VerifyDelta(bytes.NewReader(b), int64(len(b))); err != nil || got != f {
		t.Fatalf("VerifyDelta: %+v %v, want %+v", got, err, f)
	}
	d, err := OpenReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if h := d.Header(); h.Flags != FlagDelta || h.BaseCRC32 != 0x12345678 || h.BaseSize != size || h.ParentName != "base.img" {
		t.Fatalf("delta header %+v", h)
	}
	// The footer ends the file inside one more cluster: the only one
	// nothing names.
	if s, err := d.Check(); err != nil || s.Leaked != 1 || s.DataBlocks != f.DataBlocks {
		t.Fatalf("delta Check: %+v %v", s, err)
	}
	d.SetBelow(bytes.NewReader(base))
	mustView(t, d, m)

	// Imported and written to: an ordinary layer.
	st := storage.NewMem(b)
	w, err := Open(st, true)
	if err != nil {
		t.Fatal(err)
	}
	w.SetBelow(bytes.NewReader(base))
	if err := w.ClearDelta(); err != nil {
		t.Fatal(err)
	}
	apply(t, r, w, m, 0, 3*MinBlockSize, "write")
	mustView(t, w, m)

	// Any change or cut is found.
	for _, bad := range [][]byte{b[:len(b)-1], b[:len(b)-FooterSize], flip(b, len(b)/2), flip(b, 10), flip(b, len(b)-FooterSize+9)} {
		if _, err := VerifyDelta(bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, diskerr.ErrCorrupt) {
			t.Errorf("a damaged delta of %d bytes: %v", len(bad), err)
		}
	}
	// Streamed in pieces of any size, the check is the same.
	c := NewFooterCheck()
	for rest := b; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(3000))
		c.Write(rest[:n])
		rest = rest[n:]
	}
	if got, err := c.Verify(); err != nil || got != f {
		t.Fatalf("streamed check: %+v %v", got, err)
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}
