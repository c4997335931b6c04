package sparse

import (
	"aerodisk/internal/testutil"
	"aerodisk/internal/zero"
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
	"time"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/storage"
)

// ---- helpers ----

func mustCreate(t testing.TB, st storage.Storage, size int64, bs uint32) *Disk {
	t.Helper()
	d, err := Create(st, size, bs)
	if err != nil {
		t.Fatalf("Create(%d, %d): %v", size, bs, err)
	}
	return d
}

func mustOpen(t testing.TB, st storage.Storage, writable bool) *Disk {
	t.Helper()
	d, err := Open(st, writable)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return d
}

func fileStorage(t testing.TB) storage.Storage {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "disk.aerospar"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return storage.File{File: f}
}

func stSize(t testing.TB, st storage.Storage) int64 {
	t.Helper()
	n, err := st.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func stBytes(t testing.TB, st storage.Storage) []byte {
	t.Helper()
	b := make([]byte, stSize(t, st))
	if _, err := st.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

// checkDisk verifies d against the reference content: ReadAt of everything,
// Extent covering the disk exactly, unallocated extents zero in ref, and the
// number of allocated blocks matching the extents; then the file size.
func checkDisk(t testing.TB, d *Disk, ref []byte) {
	t.Helper()
	if d.Size() != int64(len(ref)) {
		t.Fatalf("Size %d, want %d", d.Size(), len(ref))
	}
	got := make([]byte, len(ref))
	if n, err := d.ReadAt(got, 0); n != len(ref) || err != nil {
		t.Fatalf("ReadAt all: %d, %v", n, err)
	}
	if !bytes.Equal(got, ref) {
		i := 0
		for got[i] == ref[i] {
			i++
		}
		t.Fatalf("content differs first at byte %d (block %d): got %#x want %#x", i, int64(i)/d.bs, got[i], ref[i])
	}
	var allocBytes, prevEnd int64
	var prevKind = -1
	for off := int64(0); off < d.Size(); {
		e, err := d.Extent(off, d.Size())
		if err != nil {
			t.Fatalf("Extent(%d): %v", off, err)
		}
		if e.Off != off || e.Len <= 0 || off+e.Len > d.Size() {
			t.Fatalf("Extent(%d) = %+v", off, e)
		}
		k := 0
		if e.Allocated {
			k = 1
			allocBytes += e.Len
		} else if !zero.Is(ref[off : off+e.Len]) {
			t.Fatalf("unallocated extent %+v holds non-zero reference data", e)
		}
		if k == prevKind && prevEnd == off {
			t.Fatalf("extents not merged at %d", off)
		}
		prevKind, prevEnd = k, off+e.Len
		off += e.Len
	}
	blocks := (allocBytes + d.bs - 1) / d.bs
	if blocks != d.MappedBlocks() {
		t.Fatalf("extents cover %d allocated blocks, MappedBlocks = %d", blocks, d.MappedBlocks())
	}
	if d.writable {
		if fs := stSize(t, d.st); fs != d.fileEnd(d.alloc) {
			t.Fatalf("file size %d, want %d for %d blocks", fs, d.fileEnd(d.alloc), d.alloc)
		}
	}
}

// reopenStrict reopens st read-only and requires a fully valid image (no
// recovery rule needed, no freed slot) that all of Aero's checks accept,
// with the given content (nil: not compared).
func reopenStrict(t testing.TB, st storage.Storage, ref []byte) {
	t.Helper()
	d := mustOpen(t, st, false)
	if d.recovered != 0 {
		t.Fatalf("image needed recovery %c", d.recovered)
	}
	if d.MappedBlocks() != d.AllocatedBlocks() {
		t.Fatalf("%d blocks mapped, allocated_blocks %d", d.MappedBlocks(), d.AllocatedBlocks())
	}
	if err := testutil.AeroCheck(st, stSize(t, st)); err != nil {
		t.Fatalf("Aero refuses the image: %v", err)
	}
	if ref != nil {
		checkDisk(t, d, ref)
	}
}

func randData(r *rand.Rand, n int) []byte {
	p := make([]byte, n)
	switch r.IntN(4) {
	case 0: // zeros
	case 1: // sparse non-zero
		if n > 0 {
			p[r.IntN(n)] = byte(1 + r.IntN(255))
		}
	default:
		for i := range p {
			p[i] = byte(r.Uint32())
		}
	}
	return p
}

// ---- basic round trips ----

func TestCreateOpenRoundTrip(t *testing.T) {
	cases := []struct {
		size int64
		bs   uint32
	}{
		{512, 512}, {1536, 1024}, {5 * 512, 1024}, {1 << 20, 0}, {3<<20 + 512, 1 << 20},
		{64 << 20, 64 << 20}, {10 << 20, 4096},
	}
	for _, c := range cases {
		for _, kind := range []string{"mem", "file"} {
			t.Run(fmt.Sprintf("%s/%d/%d", kind, c.size, c.bs), func(t *testing.T) {
				var st storage.Storage = storage.NewMem(nil)
				if kind == "file" {
					st = fileStorage(t)
				}
				d := mustCreate(t, st, c.size, c.bs)
				bs := int64(c.bs)
				if bs == 0 {
					bs = DefaultBlockSize
				}
				entries := (c.size + bs - 1) / bs
				dataOff := (64 + 8*entries + bs - 1) / bs * bs
				if got := stSize(t, st); got != dataOff {
					t.Fatalf("new file is %d bytes, want data_offset %d", got, dataOff)
				}
				b := stBytes(t, st)
				le := binary.LittleEndian
				if string(b[:8]) != Magic || le.Uint32(b[8:]) != 1 || le.Uint32(b[12:]) != 64 ||
					le.Uint32(b[16:]) != uint32(bs) || le.Uint32(b[20:]) != 0 ||
					le.Uint64(b[24:]) != uint64(c.size) || le.Uint64(b[32:]) != 64 ||
					le.Uint64(b[40:]) != uint64(entries) ||
					le.Uint64(b[48:]) != uint64((64+8*entries+bs-1)/bs*bs) || le.Uint64(b[56:]) != 0 {
					t.Fatalf("bad header % x", b[:64])
				}
				if !zero.Is(b[64:]) {
					t.Fatal("table not zero")
				}
				ref := make([]byte, c.size)
				checkDisk(t, d, ref)
				// write first and last byte, reopen
				ref[0], ref[c.size-1] = 1, 2
				if _, err := d.WriteAt([]byte{1}, 0); err != nil {
					t.Fatal(err)
				}
				if _, err := d.WriteAt([]byte{2}, c.size-1); err != nil {
					t.Fatal(err)
				}
				checkDisk(t, d, ref)
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				d = mustOpen(t, st, true)
				if d.BlockSize() != uint32(bs) || d.Size() != c.size {
					t.Fatalf("reopened %d/%d", d.Size(), d.BlockSize())
				}
				checkDisk(t, d, ref)
				reopenStrict(t, st, ref)
				r := OpenReaderTest(t, st)
				checkDisk(t, r, ref)
			})
		}
	}
}

// OpenReaderTest opens st through OpenReader.
func OpenReaderTest(t testing.TB, st storage.Storage) *Disk {
	t.Helper()
	d, err := OpenReader(st, stSize(t, st))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCreateBadArgs(t *testing.T) {
	for _, c := range []struct {
		size int64
		bs   uint32
	}{{0, 512}, {-512, 512}, {1000, 512}, {512, 256}, {4096, 3 * 512}, {4096, 128 << 20}, {4096, 1}, {1 << 62, 512}} {
		if _, err := Create(storage.NewMem(nil), c.size, c.bs); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("Create(%d, %d) = %v, want ErrBadSize", c.size, c.bs, err)
		}
		if _, err := NewWriter(storage.NewMem(nil), c.size, c.bs); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("NewWriter(%d, %d) = %v, want ErrBadSize", c.size, c.bs, err)
		}
	}
}

func TestCreate60GB(t *testing.T) {
	const size = 60 << 30
	for _, kind := range []string{"mem", "file"} {
		t.Run(kind, func(t *testing.T) {
			var st storage.Storage = storage.NewMem(nil)
			if kind == "file" {
				st = fileStorage(t)
			}
			start := time.Now()
			d := mustCreate(t, st, size, DefaultBlockSize)
			el := time.Since(start)
			if el > 200*time.Millisecond { // BenchmarkCreate60GB measures it properly
				t.Errorf("creating a 60 GiB disk took %v", el)
			}
			// header, table (491 584 bytes), zeros up to data_offset
			if got := stSize(t, st); got != 1<<20 || d.dataOff != 1<<20 {
				t.Fatalf("file size %d, data_offset %d; want both 1 MiB", got, d.dataOff)
			}
			e, err := d.Extent(0, size)
			if err != nil || e.Allocated || e.Len != size {
				t.Fatalf("Extent = %+v, %v", e, err)
			}
			if d.AllocatedBlocks() != 0 {
				t.Fatal("blocks allocated")
			}
			// a write in the middle grows the file by exactly one block
			if _, err := d.WriteAt([]byte("hello"), 30<<30); err != nil {
				t.Fatal(err)
			}
			if got := stSize(t, st); got != d.dataOff+DefaultBlockSize {
				t.Fatalf("after one write file is %d, want %d", got, d.dataOff+DefaultBlockSize)
			}
			d2 := mustOpen(t, st, false)
			p := make([]byte, 5)
			if _, err := d2.ReadAt(p, 30<<30); err != nil || string(p) != "hello" {
				t.Fatalf("read back %q, %v", p, err)
			}
		})
	}
}

// ---- random writes against a reference model ----

func TestRandomWrites(t *testing.T) {
	for _, c := range []struct {
		size int64
		bs   uint32
		file bool
	}{{64 << 10, 512, false}, {200 * 512, 4096, false}, {1 << 20, 64 << 10, false}, {300 * 512, 2048, true}} {
		t.Run(fmt.Sprintf("%d/%d/file=%v", c.size, c.bs, c.file), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(c.size), uint64(c.bs)))
			var st storage.Storage = storage.NewMem(nil)
			if c.file {
				st = fileStorage(t)
			}
			d := mustCreate(t, st, c.size, c.bs)
			ref := make([]byte, c.size)
			for i := 0; i < 400; i++ {
				off := r.Int64N(c.size)
				n := r.Int64N(min(c.size-off, 3*int64(c.bs))) + 1
				p := randData(r, int(n))
				if w, err := d.WriteAt(p, off); w != len(p) || err != nil {
					t.Fatalf("WriteAt(%d,+%d) = %d, %v", off, n, w, err)
				}
				copy(ref[off:], p)
				if i%50 == 0 {
					checkDisk(t, d, ref)
					d = mustOpen(t, st, true)
					checkDisk(t, d, ref)
				}
				// random reads
				ro := r.Int64N(c.size)
				rp := make([]byte, r.Int64N(c.size-ro)+1)
				if k, err := d.ReadAt(rp, ro); k != len(rp) || err != nil || !bytes.Equal(rp, ref[ro:ro+int64(len(rp))]) {
					t.Fatalf("ReadAt(%d,+%d) = %d, %v or wrong data", ro, len(rp), k, err)
				}
			}
			checkDisk(t, d, ref)
			reopenStrict(t, st, ref)
		})
	}
}

func TestZeroWritesAllocateNothing(t *testing.T) {
	st := storage.NewMem(nil)
	d := mustCreate(t, st, 1<<20, 4096)
	size0 := stSize(t, st)
	for _, w := range [][2]int64{{0, 1 << 20}, {100, 5000}, {4096, 4096}, {(1 << 20) - 1, 1}} {
		if _, err := d.WriteAt(make([]byte, w[1]), w[0]); err != nil {
			t.Fatal(err)
		}
	}
	if d.AllocatedBlocks() != 0 || stSize(t, st) != size0 {
		t.Fatalf("zero writes allocated %d blocks, file %d", d.AllocatedBlocks(), stSize(t, st))
	}
	// zero write into an allocated block does overwrite
	d.WriteAt([]byte{9, 9, 9}, 10)
	d.WriteAt([]byte{0}, 11)
	ref := make([]byte, 1<<20)
	ref[10], ref[12] = 9, 9
	checkDisk(t, d, ref)
	if d.AllocatedBlocks() != 1 {
		t.Fatal("want 1 block")
	}
}

func TestReadAtEOFAndBounds(t *testing.T) {
	st := storage.NewMem(nil)
	d := mustCreate(t, st, 4096, 512)
	d.WriteAt(bytes.Repeat([]byte{7}, 4096), 0)
	p := make([]byte, 100)
	if n, err := d.ReadAt(p, 4096-10); n != 10 || err != io.EOF {
		t.Fatalf("read across end: %d, %v", n, err)
	}
	if n, err := d.ReadAt(p, 4096); n != 0 || err != io.EOF {
		t.Fatalf("read at end: %d, %v", n, err)
	}
	if n, err := d.ReadAt(nil, 4096); n != 0 || err != nil {
		t.Fatalf("empty read at end: %d, %v", n, err)
	}
	if _, err := d.ReadAt(p, -1); err == nil {
		t.Fatal("negative offset accepted")
	}
	for _, w := range [][2]int64{{-1, 1}, {4096, 1}, {4000, 100}} {
		if _, err := d.WriteAt(make([]byte, w[1]), w[0]); !errors.Is(err, diskerr.ErrBadSize) {
			t.Fatalf("WriteAt(%d,+%d) = %v", w[0], w[1], err)
		}
	}
	if _, err := d.WriteAt(nil, 4096); err != nil {
		t.Fatalf("empty write at end: %v", err)
	}
	for _, e := range [][2]int64{{-1, 1}, {4096, 1}, {0, 0}} {
		if _, err := d.Extent(e[0], e[1]); !errors.Is(err, diskerr.ErrBadSize) {
			t.Fatalf("Extent(%d,%d) = %v", e[0], e[1], err)
		}
	}
	if e, _ := d.Extent(100, 1<<40); e.Len != 4096-100 || !e.Allocated {
		t.Fatalf("clamped extent %+v", e)
	}
	r := mustOpen(t, st, false)
	if _, err := r.WriteAt([]byte{1}, 0); !errors.Is(err, diskerr.ErrReadOnly) {
		t.Fatalf("read-only write: %v", err)
	}
	if err := r.Discard(0, 512); !errors.Is(err, diskerr.ErrReadOnly) {
		t.Fatalf("read-only discard: %v", err)
	}
	d.Close()
	if _, err := d.ReadAt(p, 0); err == nil {
		t.Fatal("read after close")
	}
	if err := d.Close(); err != nil {
		t.Fatal("second close:", err)
	}
}

// ---- discard ----

func TestDiscard(t *testing.T) {
	for _, c := range []struct {
		size int64
		bs   uint32
		file bool
	}{{64 << 10, 512, false}, {100*1024 + 512, 1024, false}, {300 * 512, 2048, true}} {
		t.Run(fmt.Sprintf("%d/%d/file=%v", c.size, c.bs, c.file), func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(c.bs)))
			var st storage.Storage = storage.NewMem(nil)
			if c.file {
				st = fileStorage(t)
			}
			d := mustCreate(t, st, c.size, c.bs)
			ref := make([]byte, c.size)
			for i := 0; i < 500; i++ {
				off := r.Int64N(c.size)
				n := r.Int64N(min(c.size-off, 8*int64(c.bs))) + 1
				if r.IntN(3) == 0 {
					before := d.AllocatedBlocks()
					if err := d.Discard(off, n); err != nil {
						t.Fatalf("Discard(%d,+%d): %v", off, n, err)
					}
					clear(ref[off : off+n])
					if d.AllocatedBlocks() > before {
						t.Fatal("discard allocated")
					}
				} else {
					p := randData(r, int(n))
					if _, err := d.WriteAt(p, off); err != nil {
						t.Fatal(err)
					}
					copy(ref[off:], p)
				}
				checkDisk(t, d, ref)
				if i%25 == 0 {
					reopenStrict(t, st, ref)
				}
			}
			// discard everything
			if err := d.Discard(0, c.size); err != nil {
				t.Fatal(err)
			}
			clear(ref)
			checkDisk(t, d, ref)
			if d.AllocatedBlocks() != 0 || stSize(t, st) != d.dataOff {
				t.Fatalf("after full discard: %d blocks, file %d", d.AllocatedBlocks(), stSize(t, st))
			}
			reopenStrict(t, st, ref)
		})
	}
}

func TestDiscardFreesWholeBlocksOnly(t *testing.T) {
	st := storage.NewMem(nil)
	d := mustCreate(t, st, 8*1024, 1024)
	ref := bytes.Repeat([]byte{0xAB}, 8*1024)
	d.WriteAt(ref, 0)
	if d.AllocatedBlocks() != 8 {
		t.Fatal(d.AllocatedBlocks())
	}
	// [1000, 4100): zeroes 24 bytes of block 0, frees 1,2,3, zeroes 4 bytes of block 4
	if err := d.Discard(1000, 3100); err != nil {
		t.Fatal(err)
	}
	clear(ref[1000:4100])
	if d.AllocatedBlocks() != 5 {
		t.Fatalf("want 5 blocks, have %d", d.AllocatedBlocks())
	}
	checkDisk(t, d, ref)
	reopenStrict(t, st, ref)
	if err := d.Discard(0, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.Discard(8*1024-1, 2); !errors.Is(err, diskerr.ErrBadSize) {
		t.Fatal(err)
	}
}

// ---- streaming writer ----

func TestWriterMatchesDisk(t *testing.T) {
	for seed := uint64(0); seed < 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		bs := uint32(512 << r.IntN(5))
		size := (r.Int64N(200) + 1) * 512
		stW, stD := storage.NewMem(nil), storage.NewMem(nil)
		w, err := NewWriter(stW, size, bs)
		if err != nil {
			t.Fatal(err)
		}
		d := mustCreate(t, stD, size, bs)
		ref := make([]byte, size)
		for off := int64(0); off < size; {
			off += r.Int64N(int64(bs)) * int64(r.IntN(2)) // holes
			if off >= size {
				break
			}
			var n int64
			switch r.IntN(3) {
			case 0:
				n = int64(bs) - off%int64(bs) // to a block boundary
			case 1:
				n = int64(bs) * (r.Int64N(3) + 1)
			default:
				n = r.Int64N(int64(bs)) + 1
			}
			n = min(n, size-off)
			p := randData(r, int(n))
			if _, err := w.WriteAt(p, off); err != nil {
				t.Fatal(err)
			}
			if _, err := d.WriteAt(p, off); err != nil {
				t.Fatal(err)
			}
			copy(ref[off:], p)
			off += n
			if r.IntN(4) == 0 {
				w.WriteAt(nil, off) // empty writes are fine
			}
		}
		// before Close the output is not an image
		if _, err := Open(storage.NewMem(stBytes(t, stW)), false); err == nil {
			t.Fatal("unfinished Writer output opens")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stBytes(t, stW), stBytes(t, stD)) {
			t.Fatalf("seed %d: Writer output (%d bytes) differs from Disk (%d bytes)", seed, stSize(t, stW), stSize(t, stD))
		}
		reopenStrict(t, stW, ref)
		if w.AllocatedBlocks() != d.AllocatedBlocks() {
			t.Fatal("allocated differ")
		}
	}
}

func TestWriterErrors(t *testing.T) {
	st := storage.NewMem([]byte("old content that must go away"))
	w, err := NewWriter(st, 4096, 512)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte{1, 2}, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte{1}, 101); !errors.Is(err, ErrNotSequential) {
		t.Fatalf("backwards: %v", err)
	}
	if _, err := w.WriteAt([]byte{1, 2}, 4095); !errors.Is(err, diskerr.ErrBadSize) {
		t.Fatalf("past end: %v", err)
	}
	if _, err := w.WriteAt(bytes.Repeat([]byte{3}, 512), 1024); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if stSize(t, st) != 0 {
		t.Fatal("Abort left data")
	}
	if _, err := w.WriteAt([]byte{1}, 2000); err == nil {
		t.Fatal("write after Abort")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after Abort succeeded")
	}
	// an empty stream is a valid empty image identical to Create's
	w, _ = NewWriter(st, 1<<20, 0)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st2 := storage.NewMem(nil)
	mustCreate(t, st2, 1<<20, 0)
	if !bytes.Equal(st.Bytes(), st2.Bytes()) {
		t.Fatal("empty Writer image differs from Create")
	}
}

// ---- validation ----

// validImage builds a small image: 16 blocks of 512 bytes, blocks 1, 3, 4, 9
// allocated (in slots 0..3 in that order); table at 64, data_offset 512.
func validImage(t testing.TB) []byte {
	st := storage.NewMem(nil)
	d := mustCreate(t, st, 16*512, 512)
	for _, b := range []int64{1, 3, 4, 9} {
		if _, err := d.WriteAt(bytes.Repeat([]byte{byte(b + 1)}, 512), b*512); err != nil {
			t.Fatal(err)
		}
	}
	return append([]byte(nil), st.Bytes()...)
}

func TestValidationErrors(t *testing.T) {
	le := binary.LittleEndian
	put32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { le.PutUint32(b[off:], v); return b }
	}
	put64 := func(off int, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { le.PutUint64(b[off:], v); return b }
	}
	entry := func(block int, v uint64) func([]byte) []byte { return put64(64+8*block, v) }
	cases := []struct {
		name string
		mut  func([]byte) []byte
		want error
		msg  string
	}{
		{"bad magic", func(b []byte) []byte { b[3] = 'X'; return b }, diskerr.ErrUnknownFormat, "magic"},
		{"version 2", put32(8, 2), diskerr.ErrUnsupported, "version"},
		{"version 0", put32(8, 0), diskerr.ErrUnsupported, "version"},
		{"header_size", put32(12, 128), diskerr.ErrCorrupt, "header_size"},
		{"reserved", put32(20, 1), diskerr.ErrUnsupported, "reserved"},
		{"block_size not pow2", put32(16, 1536), diskerr.ErrCorrupt, "block_size"},
		{"block_size small", put32(16, 256), diskerr.ErrCorrupt, "block_size"},
		{"block_size zero", put32(16, 0), diskerr.ErrCorrupt, "block_size"},
		{"block_size huge", put32(16, 128<<20), diskerr.ErrCorrupt, "block_size"},
		{"disk_size 0", put64(24, 0), diskerr.ErrBadSize, "disk_size"},
		{"disk_size odd", put64(24, 16*512-100), diskerr.ErrBadSize, "disk_size"},
		{"disk_size 2^63", put64(24, 1<<63), diskerr.ErrBadSize, "disk_size"},
		{"disk_size max", put64(24, ^uint64(0)-511), diskerr.ErrBadSize, "disk_size"},
		{"table_offset", put64(32, 512), diskerr.ErrCorrupt, "table_offset"},
		{"table_entries", put64(40, 17), diskerr.ErrCorrupt, "table_entries"},
		{"table_entries huge", put64(40, 1<<60), diskerr.ErrCorrupt, "table_entries"},
		{"disk_size vs entries", put64(24, 32*512), diskerr.ErrCorrupt, "table_entries"},
		{"data_offset", put64(48, 1024), diskerr.ErrCorrupt, "data_offset"},
		{"data_offset 0", put64(48, 0), diskerr.ErrCorrupt, "data_offset"},
		{"allocated > entries", put64(56, 17), diskerr.ErrCorrupt, "allocated_blocks"},
		{"table past end", func(b []byte) []byte {
			le.PutUint64(b[24:], 1<<40)
			le.PutUint64(b[40:], 1<<31)
			le.PutUint64(b[48:], (64+8<<31+511)/512*512)
			return b
		}, diskerr.ErrTruncated, "table"},
		{"entry below data_offset", entry(0, 64), diskerr.ErrCorrupt, "block 0"},
		{"entry misaligned", entry(1, 512+513), diskerr.ErrCorrupt, "block 1"},
		{"entry beyond allocated", entry(3, 512+512*7), diskerr.ErrCorrupt, "block 3"},
		{"entry huge", entry(3, 1<<63+512), diskerr.ErrCorrupt, "block 3"},
		{"duplicate", entry(4, 512), diskerr.ErrCorrupt, "blocks 1 and 4"},
		{"extra entry", entry(0, 512+4*512), diskerr.ErrCorrupt, "block 0"},     // at slot H but no data in file
		{"count low", put64(56, 5), diskerr.ErrTruncated, "5 allocated blocks"}, // a free slot the file lacks
		{"count zero", put64(56, 0), diskerr.ErrCorrupt, "beyond"},
		{"two extra", func(b []byte) []byte { le.PutUint64(b[56:], 2); return b }, diskerr.ErrCorrupt, "beyond"},
		{"data truncated", func(b []byte) []byte { return b[:len(b)-1] }, diskerr.ErrTruncated, "allocated blocks"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.mut(validImage(t))
			for _, writable := range []bool{false, true} {
				_, err := Open(storage.NewMem(b), writable)
				if !errors.Is(err, c.want) {
					t.Fatalf("Open = %v, want %v", err, c.want)
				}
				if !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("error %q does not mention %q", err, c.msg)
				}
			}
		})
	}
}

func TestTruncatedEverywhere(t *testing.T) {
	full := validImage(t)
	for n := 0; n < len(full); n++ {
		_, err := Open(storage.NewMem(full[:n]), false)
		if !errors.Is(err, diskerr.ErrTruncated) {
			t.Fatalf("truncated to %d: %v, want ErrTruncated", n, err)
		}
		// A reader shorter than its claimed size: the table is checked at
		// Open, data blocks when read.
		d, err := OpenReader(bytes.NewReader(full[:n]), int64(len(full)))
		if n < 64+16*8 {
			if !errors.Is(err, diskerr.ErrTruncated) {
				t.Fatalf("reader shorter than its size (%d): %v", n, err)
			}
		} else if _, err := d.ReadAt(make([]byte, 16*512), 0); !errors.Is(err, diskerr.ErrTruncated) {
			t.Fatalf("read from reader cut at %d: %v", n, err)
		}
	}
	if _, err := Open(storage.NewMem(full), false); err != nil {
		t.Fatal(err)
	}
	// longer files are fine
	if _, err := Open(storage.NewMem(append(full, make([]byte, 3000)...)), false); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(storage.NewMem([]byte("AEROSPAX")), false); !errors.Is(err, diskerr.ErrUnknownFormat) {
		t.Fatal(err)
	}
	if _, err := Open(storage.NewMem([]byte("QFI\xfb")), false); !errors.Is(err, diskerr.ErrUnknownFormat) {
		t.Fatal(err)
	}
}

// ---- crash consistency ----

// crashStorage applies the first `left` mutating operations (WriteAt,
// Truncate) and fails every one after that: a crash at that point.
type crashStorage struct {
	*storage.Mem
	left int
}

var errCrash = errors.New("simulated crash")

func (c *crashStorage) WriteAt(p []byte, off int64) (int, error) {
	if c.left <= 0 {
		return 0, errCrash
	}
	c.left--
	return c.Mem.WriteAt(p, off)
}

func (c *crashStorage) Truncate(n int64) error {
	if c.left <= 0 {
		return errCrash
	}
	c.left--
	return c.Mem.Truncate(n)
}

// checkOldOrNew requires every block of got to equal that block of old or new.
func checkOldOrNew(t *testing.T, d *Disk, old, new []byte) {
	t.Helper()
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for b := int64(0); b*d.bs < d.Size(); b++ {
		lo, hi := b*d.bs, min((b+1)*d.bs, d.Size())
		if !bytes.Equal(got[lo:hi], old[lo:hi]) && !bytes.Equal(got[lo:hi], new[lo:hi]) {
			t.Fatalf("block %d is neither old nor new content", b)
		}
	}
}

func TestCrashPoints(t *testing.T) {
	const bs = 1024
	const size = 16 * bs
	// base state: blocks 2, 5, 6, 7, 11 allocated (slots in that order)
	base := func(t *testing.T) ([]byte, []byte) {
		st := storage.NewMem(nil)
		d := mustCreate(t, st, size, bs)
		ref := make([]byte, size)
		for _, b := range []int64{2, 5, 6, 7, 11} {
			p := bytes.Repeat([]byte{byte(0x10 + b)}, bs)
			p[3] = 0xEE
			d.WriteAt(p, b*bs)
			copy(ref[b*bs:], p)
		}
		return append([]byte(nil), st.Bytes()...), ref
	}
	type op struct {
		name  string
		apply func(d *Disk, ref []byte) error // also updates ref
	}
	write := func(off int64, p []byte) func(d *Disk, ref []byte) error {
		return func(d *Disk, ref []byte) error {
			copy(ref[off:], p)
			_, err := d.WriteAt(p, off)
			return err
		}
	}
	discard := func(off, n int64) func(d *Disk, ref []byte) error {
		return func(d *Disk, ref []byte) error {
			clear(ref[off : off+n])
			return d.Discard(off, n)
		}
	}
	ops := []op{
		{"allocate partial", write(3*bs+100, []byte("new data"))},
		{"allocate full", write(0, bytes.Repeat([]byte{0x77}, bs))},
		{"overwrite", write(5*bs+10, []byte("over"))},
		{"span alloc+unalloc", write(4*bs-5, bytes.Repeat([]byte{0x55}, 3*bs+10))},
		{"allocate last", write(size-1, []byte{1})},
		{"discard top block", discard(11*bs, bs)},
		{"discard middle block (move)", discard(5*bs, bs)},
		{"discard first slot (move)", discard(2*bs, bs)},
		{"discard range", discard(bs+1, 10*bs)},
		{"discard all", discard(0, size)},
		{"discard partial edges only", discard(5*bs+1, bs)},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			img, oldRef := base(t)
			newRef := append([]byte(nil), oldRef...)
			completed := false
			for n := 0; !completed; n++ {
				if n > 100 {
					t.Fatal("operation never completes")
				}
				cs := &crashStorage{Mem: storage.NewMem(img), left: 1 << 30}
				d := mustOpen(t, cs, true)
				cs.left = n
				ref := append([]byte(nil), oldRef...)
				err := o.apply(d, ref)
				if err == nil {
					completed = true
					newRef = ref
				} else if !errors.Is(err, errCrash) {
					t.Fatalf("crash after %d writes: unexpected error %v", n, err)
				}
				after := cs.Mem.Bytes()
				// read-only open: valid, old or new per block
				ro := mustOpen(t, storage.NewMem(after), false)
				checkOldOrNew(t, ro, oldRef, ref)
				// writable open repairs; afterwards strictly valid, same content
				rst := storage.NewMem(after)
				rw := mustOpen(t, rst, true)
				got := make([]byte, size)
				rw.ReadAt(got, 0)
				checkOldOrNew(t, rw, oldRef, ref)
				gotRO := make([]byte, size)
				ro.ReadAt(gotRO, 0)
				if !bytes.Equal(got, gotRO) {
					t.Fatalf("crash after %d: writable and read-only opens disagree", n)
				}
				reopenStrict(t, rst, got)
				// the repaired disk keeps working
				if _, err := rw.WriteAt([]byte{0xAA}, 8*bs); err != nil {
					t.Fatal(err)
				}
				got[8*bs] = 0xAA
				reopenStrict(t, rst, got)
				if completed {
					checkDisk(t, d, newRef)
				}
			}
		})
	}
}

func TestCrashDuringCreateAndWriter(t *testing.T) {
	for n := 0; ; n++ {
		cs := &crashStorage{Mem: storage.NewMem([]byte("some old bytes, not an image")), left: n}
		_, err := Create(cs, 1<<20, 4096)
		if err == nil {
			reopenStrict(t, cs.Mem, make([]byte, 1<<20))
			break
		}
		if _, err := Open(storage.NewMem(cs.Mem.Bytes()), false); err == nil {
			t.Fatalf("crash in Create after %d: opens as an image", n)
		}
	}
	ref := make([]byte, 64<<10)
	for i := range ref {
		if (i/4096)%3 == 0 {
			ref[i] = byte(i)
		}
	}
	for n := 0; ; n++ {
		cs := &crashStorage{Mem: storage.NewMem(nil), left: n}
		w, err := NewWriter(cs, int64(len(ref)), 4096)
		if err == nil {
			_, err = w.WriteAt(ref, 0)
		}
		if err == nil {
			err = w.Close()
		}
		if err == nil {
			reopenStrict(t, cs.Mem, ref)
			break
		}
		if _, err := Open(storage.NewMem(cs.Mem.Bytes()), false); err == nil {
			t.Fatalf("crash in Writer after %d: opens as an image", n)
		}
	}
}

// Recovery A and B states built by hand, as documented.
func TestRecoveryStates(t *testing.T) {
	le := binary.LittleEndian
	// A: header says 3, four entries with the extra at slot 3.
	img := validImage(t)
	le.PutUint64(img[56:], 3)
	for _, w := range []bool{false, true} {
		st := storage.NewMem(img)
		d := mustOpen(t, st, w)
		if d.recovered != 'A' || d.AllocatedBlocks() != 4 {
			t.Fatalf("recovery A: %c %d", d.recovered, d.AllocatedBlocks())
		}
		if w && le.Uint64(st.Bytes()[56:]) != 4 {
			t.Fatal("header not repaired")
		}
	}
	// B: header 3, block 3's entry (slot 1) cleared, block 9 still at slot 3.
	img = validImage(t)
	le.PutUint64(img[56:], 3)
	le.PutUint64(img[64+8*3:], 0)
	ref := make([]byte, 16*512)
	for _, b := range []int{1, 4, 9} {
		for i := range 512 {
			ref[b*512+i] = byte(b + 1)
		}
	}
	for _, w := range []bool{false, true} {
		st := storage.NewMem(img)
		d := mustOpen(t, st, w)
		if d.recovered != 'B' || d.AllocatedBlocks() != 3 {
			t.Fatalf("recovery B: %c %d", d.recovered, d.AllocatedBlocks())
		}
		got := make([]byte, len(ref))
		d.ReadAt(got, 0)
		if !bytes.Equal(got, ref) {
			t.Fatal("recovery B content")
		}
		if w {
			reopenStrict(t, st, ref)
			if stSize(t, st) != 512+3*512 {
				t.Fatal("not truncated")
			}
		}
	}
	// B without the moved block's data in the file is corrupt
	_, err := Open(storage.NewMem(img[:len(img)-1]), false)
	if !errors.Is(err, diskerr.ErrCorrupt) {
		t.Fatal(err)
	}
}

// ---- benchmarks ----

func BenchmarkCreate60GB(b *testing.B) {
	for _, kind := range []string{"mem", "file"} {
		b.Run(kind, func(b *testing.B) {
			var st storage.Storage = storage.NewMem(nil)
			if kind == "file" {
				st = fileStorage(b)
			}
			for b.Loop() {
				if _, err := Create(st, 60<<30, DefaultBlockSize); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkWriteAt(b *testing.B) {
	for _, sz := range []int{4096, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("seq-%d", sz), func(b *testing.B) {
			const disk = 256 << 20
			st := fileStorage(b)
			d, err := Create(st, disk, DefaultBlockSize)
			if err != nil {
				b.Fatal(err)
			}
			p := bytes.Repeat([]byte{0x5A}, sz)
			b.SetBytes(int64(sz))
			off := int64(0)
			for b.Loop() {
				if _, err := d.WriteAt(p, off); err != nil {
					b.Fatal(err)
				}
				off = (off + int64(sz)) % disk
			}
		})
	}
	b.Run("random-4096-mem", func(b *testing.B) {
		const disk = 256 << 20
		d, _ := Create(storage.NewMem(nil), disk, 64<<10)
		p := bytes.Repeat([]byte{0x5A}, 4096)
		r := rand.New(rand.NewPCG(1, 2))
		b.SetBytes(4096)
		for b.Loop() {
			if _, err := d.WriteAt(p, r.Int64N(disk/4096)*4096); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// nullStorage accepts and drops writes: it measures the Writer itself.
type nullStorage struct{ size int64 }

func (n *nullStorage) ReadAt(p []byte, off int64) (int, error) { clear(p); return len(p), nil }
func (n *nullStorage) WriteAt(p []byte, off int64) (int, error) {
	n.size = max(n.size, off+int64(len(p)))
	return len(p), nil
}
func (n *nullStorage) Truncate(s int64) error { n.size = s; return nil }
func (n *nullStorage) Size() (int64, error)   { return n.size, nil }
func (n *nullStorage) Flush() error           { return nil }

func BenchmarkWriter(b *testing.B) {
	for _, c := range []struct {
		name string
		sz   int
		fill byte
		file bool
	}{
		{"file-chunk-64K", 64 << 10, 0x5A, true}, {"file-chunk-1M", 1 << 20, 0x5A, true},
		{"null-chunk-64K", 64 << 10, 0x5A, false}, {"null-chunk-1M", 1 << 20, 0x5A, false},
		{"null-chunk-4M", 4 << 20, 0x5A, false}, {"null-zeros-1M", 1 << 20, 0, false},
		{"null-chunk-1000", 1000, 0x5A, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			const disk = 1 << 30
			var st storage.Storage = &nullStorage{}
			if c.file {
				st = fileStorage(b)
			}
			p := bytes.Repeat([]byte{c.fill}, c.sz)
			var w *Writer
			off := int64(disk)
			b.SetBytes(int64(c.sz))
			for b.Loop() {
				if off+int64(c.sz) > disk {
					if w != nil {
						if err := w.Close(); err != nil {
							b.Fatal(err)
						}
					}
					w, _ = NewWriter(st, disk, DefaultBlockSize)
					off = 0
				}
				if _, err := w.WriteAt(p, off); err != nil {
					b.Fatal(err)
				}
				off += int64(c.sz)
			}
		})
	}
}

func TestConcurrentAccess(t *testing.T) {
	st := storage.NewMem(nil)
	d := mustCreate(t, st, 64*1024, 1024)
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			p := bytes.Repeat([]byte{byte(g + 1)}, 1024)
			q := make([]byte, 1024)
			for i := 0; i < 200; i++ {
				off := int64(g*16+i%16) * 1024
				d.WriteAt(p, off)
				d.ReadAt(q, off)
				if !bytes.Equal(p, q) {
					t.Errorf("goroutine %d read back wrong data", g)
					return
				}
				d.Extent(off, 4096)
				if i%7 == 0 {
					d.Discard(off, 1024)
				}
			}
		}(g)
	}
	for range 4 {
		<-done
	}
	mustOpen(t, st, false)
}
