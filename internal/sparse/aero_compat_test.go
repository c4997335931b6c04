package sparse

// Every file this package writes must pass Aero's own checks (AeroCheck,
// internal/testutil/aerorules.go), and files Aero's Rust writer leaves must open here.

import (
	"aerodisk/internal/testutil"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/storage"
)

// aeroAccepts fails t unless all of Aero's checks accept st's file and, for
// small disks, Aero reads the content ref (nil: don't compare).
func aeroAccepts(t testing.TB, st storage.Storage, ref []byte) {
	t.Helper()
	size := stSize(t, st)
	if err := testutil.AeroCheck(st, size); err != nil {
		t.Fatalf("Aero refuses the %d-byte file: %v", size, err)
	}
	if ref != nil {
		got, err := testutil.AeroContent(st, size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, ref) {
			t.Fatal("Aero reads different content")
		}
	}
}

// TestAeroAcceptsBlankDisks: Create's output is what Aero's create writes
// (header, zero table, zeros up to data_offset) and passes Aero's readers.
func TestAeroAcceptsBlankDisks(t *testing.T) {
	for _, c := range []struct {
		size   int64
		bs     uint32 // asked for; 0 = ChooseBlockSize
		wantBs uint32
		file   bool
	}{
		{512, 512, 512, false},
		{1440 << 10, 0, 1 << 20, false},
		{64 << 20, 0, 1 << 20, false},
		{1<<30 + 512, 4096, 4096, false},
		{20e9 / 512 * 512, 0, 1 << 20, false},
		{60 << 30, 0, 1 << 20, false}, // `aerodisk create --size 60G`: 1 MiB
		{60 << 30, 1 << 20, 1 << 20, true},
		{60e9 / 512 * 512, 0, 1 << 20, false},
		{60 << 30, 64 << 20, 64 << 20, true},
		{8 << 40, 0, 1 << 20, true},          // exactly MaxTableEntries at 1 MiB
		{8<<40 + 512, 0, 2 << 20, true},      // one more block: 2 MiB blocks
		{16 << 40, 0, 2 << 20, true},         // 16 TiB: 2 MiB blocks
		{MaxDiskSize, 0, MaxBlockSize, true}, // the largest disk Aero can read
	} {
		t.Run(fmt.Sprintf("%d/%d", c.size, c.bs), func(t *testing.T) {
			var st storage.Storage = storage.NewMem(nil)
			if c.file {
				st = fileStorage(t)
			}
			d := mustCreate(t, st, c.size, c.bs)
			if d.BlockSize() != c.wantBs {
				t.Fatalf("block size %d, want %d", d.BlockSize(), c.wantBs)
			}
			if c.bs == 0 && ChooseBlockSize(c.size) != c.wantBs {
				t.Fatalf("ChooseBlockSize(%d) = %d, want %d", c.size, ChooseBlockSize(c.size), c.wantBs)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			got := stSize(t, st)
			if got != d.dataOff {
				t.Fatalf("blank file is %d bytes, want data_offset %d", got, d.dataOff)
			}
			if n, err := BlankSize(c.size, c.bs); n != got || err != nil {
				t.Fatalf("BlankSize = %d, %v; file is %d", n, err, got)
			}
			if c.size == 60<<30 && c.wantBs == 1<<20 && got != 1<<20 {
				t.Fatalf("blank 60 GiB disk is %d bytes, want 1 MiB", got)
			}
			aeroAccepts(t, st, nil)
			if got <= 2<<20 {
				if want := testutil.AeroCreate(c.size, c.wantBs); !bytes.Equal(stBytes(t, st), want) {
					t.Fatal("Create's file differs from Aero's create")
				}
			}
			reopenStrict(t, st, nil)
		})
	}
}

// TestAeroAcceptsWriterOutput: the streaming writer's output (what
// conversion produces) passes Aero's readers, all-zero included.
func TestAeroAcceptsWriterOutput(t *testing.T) {
	for _, c := range []struct {
		size int64
		bs   uint32
		fill func(p []byte)
	}{
		{64 << 20, 0, func(p []byte) {}},                          // all zero: 1 MiB file
		{512, 512, func(p []byte) {}},                             // smallest
		{5*4096 + 1024, 4096, func(p []byte) { p[5*4096+7] = 1 }}, // partial last block
		{3 << 20, 1 << 20, func(p []byte) { p[0], p[2<<20+9] = 1, 2 }},
	} {
		t.Run(fmt.Sprintf("%d/%d", c.size, c.bs), func(t *testing.T) {
			ref := make([]byte, c.size)
			c.fill(ref)
			st := storage.NewMem(nil)
			w, err := NewWriter(st, c.size, c.bs)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.WriteAt(ref, 0); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			aeroAccepts(t, st, ref)
			want, err := FileSize(c.size, c.bs, w.AllocatedBlocks())
			if err != nil || stSize(t, st) != want {
				t.Fatalf("file %d bytes, FileSize %d, %v", stSize(t, st), want, err)
			}
		})
	}
}

// TestAeroTableLimit: a table Aero's TS reader cannot load is never
// written: an explicit block size that needs one is ErrBadSize (and the
// storage is left alone), block size 0 picks one that fits.
func TestAeroTableLimit(t *testing.T) {
	if MaxTableEntries != 8388608 {
		t.Fatalf("MaxTableEntries = %d; Aero's TS reader allows 64 MiB / 8 = 8388608", MaxTableEntries)
	}
	for _, c := range []struct {
		size int64
		bs   uint32
		msg  string
	}{
		{8 << 30, 512, "block size of at least 1024"},
		{8<<40 + 512, 1 << 20, "block size of at least 2097152"},
		{MaxDiskSize + 512, 0, "larger than"},
		{MaxDiskSize, MaxBlockSize / 2, "block size of at least 67108864"},
	} {
		old := []byte("previous content")
		st := storage.NewMem(old)
		_, err := Create(st, c.size, c.bs)
		if !errors.Is(err, diskerr.ErrBadSize) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Create(%d, %d) = %v; want ErrBadSize mentioning %q", c.size, c.bs, err, c.msg)
		}
		if !bytes.Equal(st.Bytes(), old) {
			t.Errorf("Create(%d, %d) changed the storage", c.size, c.bs)
		}
		if _, err := NewWriter(st, c.size, c.bs); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("NewWriter(%d, %d) = %v", c.size, c.bs, err)
		}
		if _, err := BlankSize(c.size, c.bs); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("BlankSize(%d, %d) = %v", c.size, c.bs, err)
		}
		if !bytes.Equal(st.Bytes(), old) {
			t.Errorf("NewWriter(%d, %d) changed the storage", c.size, c.bs)
		}
	}
	for size, want := range map[int64]uint32{
		512: 1 << 20, 60 << 30: 1 << 20, 8 << 40: 1 << 20, 8<<40 + 512: 2 << 20,
		16 << 40: 2 << 20, 16<<40 + 512: 4 << 20, MaxDiskSize: MaxBlockSize,
	} {
		if got := ChooseBlockSize(size); got != want {
			t.Errorf("ChooseBlockSize(%d) = %d, want %d", size, got, want)
		}
	}
	if MaxDiskSize != MaxTableEntries*MaxBlockSize {
		t.Fatal("MaxDiskSize")
	}
	// FileSize: data_offset + blocks·block_size
	for _, c := range []struct {
		size   int64
		bs     uint32
		blocks int64
		want   int64
	}{
		{60 << 30, 0, 0, 1 << 20}, {60 << 30, 0, 3, 4 << 20}, {512, 512, 1, 1024},
		{16 * 512, 512, 16, 512 + 16*512}, {60 << 30, 64 << 20, 0, 64 << 20},
	} {
		if got, err := FileSize(c.size, c.bs, c.blocks); got != c.want || err != nil {
			t.Errorf("FileSize(%d, %d, %d) = %d, %v; want %d", c.size, c.bs, c.blocks, got, err, c.want)
		}
	}
	for _, bad := range [][3]int64{{60 << 30, 0, -1}, {16 * 512, 512, 17}, {1000, 512, 0}, {512, 256, 0}} {
		if _, err := FileSize(bad[0], uint32(bad[1]), bad[2]); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("FileSize%v = %v, want ErrBadSize", bad, err)
		}
	}
}

// TestAeroAcceptsAfterDiscard: after every write and discard the file
// passes Aero's readers (mapped entries == allocated_blocks, as the TS
// reader demands) with the content Aero reads equal to ours.
func TestAeroAcceptsAfterDiscard(t *testing.T) {
	for _, c := range []struct {
		size int64
		bs   uint32
	}{{64 << 10, 512}, {100*1024 + 512, 1024}, {40 * 4096, 4096}} {
		t.Run(fmt.Sprintf("%d/%d", c.size, c.bs), func(t *testing.T) {
			r := rand.New(rand.NewPCG(11, uint64(c.bs)))
			st := storage.NewMem(nil)
			d := mustCreate(t, st, c.size, c.bs)
			ref := make([]byte, c.size)
			for i := 0; i < 300; i++ {
				off := r.Int64N(c.size)
				n := r.Int64N(min(c.size-off, 8*int64(c.bs))) + 1
				if r.IntN(3) == 0 {
					if err := d.Discard(off, n); err != nil {
						t.Fatal(err)
					}
					clear(ref[off : off+n])
				} else {
					p := randData(r, int(n))
					if _, err := d.WriteAt(p, off); err != nil {
						t.Fatal(err)
					}
					copy(ref[off:], p)
				}
				aeroAccepts(t, st, ref)
			}
			if err := d.Discard(0, c.size); err != nil {
				t.Fatal(err)
			}
			aeroAccepts(t, st, make([]byte, c.size))
			if stSize(t, st) != d.dataOff {
				t.Fatalf("after discarding everything the file is %d bytes, want data_offset %d", stSize(t, st), d.dataOff)
			}
		})
	}
}

// rustDiscard frees block b the way Aero's Rust writer does
// (AeroSparseDisk::deallocate_block_inner then trim_trailing_free_phys,
// crates/aero-storage/src/sparse.rs): the entry is zeroed; allocated_blocks
// drops only over trailing free slots, and then the file is cut there.
func rustDiscard(img []byte, b int) []byte {
	le := binary.LittleEndian
	bs := uint64(le.Uint32(img[16:]))
	entries := int(le.Uint64(img[40:]))
	dataOff := le.Uint64(img[48:])
	alloc := le.Uint64(img[56:])
	le.PutUint64(img[64+8*b:], 0)
	used := make([]bool, alloc)
	for i := 0; i < entries; i++ {
		if e := le.Uint64(img[64+8*i:]); e != 0 {
			used[(e-dataOff)/bs] = true
		}
	}
	n := alloc
	for n > 0 && !used[n-1] {
		n--
	}
	if n != alloc {
		le.PutUint64(img[56:], n)
		if end := dataOff + n*bs; end < uint64(len(img)) {
			img = img[:end]
		}
	}
	return img
}

// rustImage is 48 allocated 512-byte blocks (blocks 0..47 of a 64-block
// disk, slot = block), then Aero's Rust discard of block 20: allocated_blocks
// stays 48 with 47 mapped entries. It returns the image and its content.
func rustImage(t testing.TB) ([]byte, []byte) {
	t.Helper()
	const bs, blocks = 512, 64
	st := storage.NewMem(nil)
	d := mustCreate(t, st, blocks*bs, bs)
	ref := make([]byte, blocks*bs)
	for b := range 48 {
		p := bytes.Repeat([]byte{byte(b + 1)}, bs)
		p[7] = 0xC3
		if _, err := d.WriteAt(p, int64(b*bs)); err != nil {
			t.Fatal(err)
		}
		copy(ref[b*bs:], p)
	}
	img := rustDiscard(append([]byte(nil), st.Bytes()...), 20)
	clear(ref[20*bs : 21*bs])
	return img, ref
}

// TestRustFreedSlot: a file with a slot freed below the high-water mark, as
// Aero's Rust writer leaves after discard_range, opens and reads right
// (read-only: as it is; writable: compacted so Aero's TS reader accepts it
// too); duplicate, misaligned and out-of-range entries are still refused.
func TestRustFreedSlot(t *testing.T) {
	img, ref := rustImage(t)
	le := binary.LittleEndian
	if le.Uint64(img[56:]) != 48 {
		t.Fatalf("allocated_blocks %d", le.Uint64(img[56:]))
	}
	if err := testutil.AeroRustOpen(storage.NewMem(img), int64(len(img))); err != nil {
		t.Fatalf("Aero's Rust reader refuses its own file: %v", err)
	}
	if err := testutil.AeroTSOpen(storage.NewMem(img), int64(len(img))); err == nil {
		t.Fatal("Aero's TS reader accepts a freed slot; the test's model is wrong")
	}
	d := mustOpen(t, storage.NewMem(img), false)
	if d.AllocatedBlocks() != 48 || d.MappedBlocks() != 47 {
		t.Fatalf("allocated %d mapped %d", d.AllocatedBlocks(), d.MappedBlocks())
	}
	checkDisk(t, d, ref)
	r, err := OpenReader(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	checkDisk(t, r, ref)

	// writable: compacted at once, then Aero's TS reader accepts it
	st := storage.NewMem(img)
	w := mustOpen(t, st, true)
	if w.AllocatedBlocks() != 47 || w.MappedBlocks() != 47 {
		t.Fatalf("after writable open: allocated %d mapped %d", w.AllocatedBlocks(), w.MappedBlocks())
	}
	checkDisk(t, w, ref)
	aeroAccepts(t, st, ref)
	if _, err := w.WriteAt([]byte{9}, 20*512); err != nil {
		t.Fatal(err)
	}
	ref[20*512] = 9
	checkDisk(t, w, ref)
	reopenStrict(t, st, ref)

	// more Rust discards: the top block (trimmed), then two holes at once
	img2 := rustDiscard(append([]byte(nil), img...), 47)
	img2 = rustDiscard(img2, 3)
	img2 = rustDiscard(img2, 30)
	ref2 := append([]byte(nil), ref...)
	ref2[20*512] = 0
	for _, b := range []int{3, 30, 47} {
		clear(ref2[b*512 : (b+1)*512])
	}
	if le.Uint64(img2[56:]) != 47 {
		t.Fatalf("Rust trim: allocated_blocks %d", le.Uint64(img2[56:]))
	}
	checkDisk(t, mustOpen(t, storage.NewMem(img2), false), ref2)
	st2 := storage.NewMem(img2)
	checkDisk(t, mustOpen(t, st2, true), ref2)
	aeroAccepts(t, st2, ref2)
	reopenStrict(t, st2, ref2)

	// every slot freed but the header not trimmed (a Rust file can't be in
	// this state, but nothing forbids it): reads as zeros
	img3 := append([]byte(nil), img...)
	clear(img3[64 : 64+8*64])
	checkDisk(t, mustOpen(t, storage.NewMem(img3), false), make([]byte, 64*512))

	// still refused, with named errors
	entry := func(b int, v uint64) []byte {
		x := append([]byte(nil), img...)
		le.PutUint64(x[64+8*b:], v)
		return x
	}
	dataOff := uint64(512 + 512) // 64 entries: table ends at 576, data_offset 1024
	for _, c := range []struct {
		name string
		img  []byte
		want error
		msg  string
	}{
		{"duplicate", entry(50, dataOff+5*512), diskerr.ErrCorrupt, "blocks 5 and 50: duplicate"},
		{"duplicate into the hole's neighbour", entry(20, dataOff+21*512), diskerr.ErrCorrupt, "blocks 20 and 21: duplicate"},
		{"misaligned", entry(50, dataOff+20*512+8), diskerr.ErrCorrupt, "block 50: entry"},
		{"below data_offset", entry(50, 576), diskerr.ErrCorrupt, "below data_offset"},
		{"out of range", entry(50, dataOff+49*512), diskerr.ErrCorrupt, "beyond the 48 allocated blocks"},
		{"far out of range", entry(50, 1<<40), diskerr.ErrCorrupt, "beyond the 48 allocated blocks"},
		{"truncated", img[:len(img)-1], diskerr.ErrTruncated, "allocated blocks"},
	} {
		for _, writable := range []bool{false, true} {
			_, err := Open(storage.NewMem(c.img), writable)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%s (writable %v): %v; want %v mentioning %q", c.name, writable, err, c.want, c.msg)
			}
		}
	}
}

// TestPreFixBlankDisks: blank disks written before Create padded to
// data_offset (header + table only) still open; a writable open extends them
// to data_offset, and the first allocation works either way.
func TestPreFixBlankDisks(t *testing.T) {
	st := storage.NewMem(nil)
	d := mustCreate(t, st, 60<<30, 0)
	d.Close()
	old := append([]byte(nil), st.Bytes()[:64+8*61440]...)
	r := mustOpen(t, storage.NewMem(old), false)
	if r.AllocatedBlocks() != 0 || r.Size() != 60<<30 {
		t.Fatal(r.AllocatedBlocks(), r.Size())
	}
	wst := storage.NewMem(old)
	w := mustOpen(t, wst, true)
	if stSize(t, wst) != 1<<20 {
		t.Fatalf("writable open left the file at %d bytes", stSize(t, wst))
	}
	aeroAccepts(t, wst, nil)
	if _, err := w.WriteAt([]byte("x"), 5<<30); err != nil {
		t.Fatal(err)
	}
	aeroAccepts(t, wst, nil)
	if stSize(t, wst) != 2<<20 {
		t.Fatalf("after one block: %d bytes", stSize(t, wst))
	}
}

// TestOpenTableLargerThanAero: a file with more than MaxTableEntries entries
// (aerodisk wrote such files before the limit) still opens, read-only and
// writable; only creating one is refused.
func TestOpenTableLargerThanAero(t *testing.T) {
	const entries = MaxTableEntries + 1
	l := geometry(entries*512, 512)
	st := storage.NewMem(nil)
	st.Truncate(l.dataOff)
	h := l.header(0)
	st.WriteAt(h.marshal(), 0)
	if err := testutil.AeroTSOpen(st, l.dataOff); err == nil {
		t.Fatal("Aero's TS reader accepts the table")
	}
	d := mustOpen(t, st, true)
	if _, err := d.WriteAt([]byte{1}, 1000); err != nil {
		t.Fatal(err)
	}
	if d.MappedBlocks() != 1 {
		t.Fatal(d.MappedBlocks())
	}
	if _, err := Create(storage.NewMem(nil), entries*512, 512); !errors.Is(err, diskerr.ErrBadSize) {
		t.Fatalf("Create: %v", err)
	}
}

// TestCrashDuringCompaction: a writable open compacts a file with freed
// slots; a crash after any number of its writes leaves an image that opens
// with the same content, and the next writable open finishes the job.
func TestCrashDuringCompaction(t *testing.T) {
	img, ref := rustImage(t)
	for _, b := range []int{3, 30, 10, 11} {
		img = rustDiscard(img, b)
		clear(ref[b*512 : (b+1)*512])
	}
	for n := 0; ; n++ {
		if n > 100 {
			t.Fatal("compaction never completes")
		}
		cs := &crashStorage{Mem: storage.NewMem(img), left: n}
		_, err := Open(cs, true)
		if err != nil && !errors.Is(err, errCrash) {
			t.Fatalf("crash after %d writes: %v", n, err)
		}
		after := cs.Mem.Bytes()
		checkDisk(t, mustOpen(t, storage.NewMem(after), false), ref)
		st := storage.NewMem(after)
		checkDisk(t, mustOpen(t, st, true), ref)
		reopenStrict(t, st, ref)
		if err == nil {
			if n < 4 {
				t.Fatalf("compaction took only %d writes", n)
			}
			break
		}
	}
}

// TestPacedCompaction: with OpenPaced, Discard only frees; writes and
// reads go on between CompactStep's steps (each at least one move), every
// state between steps is a valid image with the model's content, and once
// done (or closed) Aero's readers all accept the file. A crash inside a
// step leaves an image that opens with the same content.
func TestPacedCompaction(t *testing.T) {
	const size, bs = 1 << 20, 4096
	r := rand.New(rand.NewPCG(3, 4))
	st := storage.NewMem(nil)
	mustCreate(t, st, size, bs).Close()
	d, err := OpenPaced(st)
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]byte, size)
	p := randData(r, size)
	if _, err := d.WriteAt(p, 0); err != nil {
		t.Fatal(err)
	}
	copy(ref, p)
	var steps, moves int64
	for round := 0; round < 40; round++ {
		off := r.Int64N(size/bs-8) * bs
		n := (1 + r.Int64N(8)) * bs
		if err := d.Discard(off, n); err != nil {
			t.Fatal(err)
		}
		clear(ref[off : off+n])
		for d.CompactionPending() && r.IntN(3) > 0 {
			done, moved, left, err := d.CompactStep(0)
			if err != nil {
				t.Fatal(err)
			}
			steps++
			moves += moved
			if moved != 1 && !done {
				t.Fatalf("a step with no budget moved %d blocks", moved)
			}
			if done != (left == 0) {
				t.Fatalf("done %v with %d freed slots left", done, left)
			}
			checkDisk(t, mustOpen(t, storage.NewMem(st.Bytes()), false), ref)
			// A write between steps fills a freed slot.
			w := r.Int64N(size/bs) * bs
			q := randData(r, bs)
			if _, err := d.WriteAt(q, w); err != nil {
				t.Fatal(err)
			}
			copy(ref[w:], q)
		}
		checkDisk(t, d, ref)
	}
	if steps == 0 || moves == 0 {
		t.Fatalf("%d steps moved %d blocks", steps, moves)
	}
	// A crash inside the remaining work: the image opens with the content.
	if !d.CompactionPending() {
		if err := d.Discard(0, 64*bs); err != nil {
			t.Fatal(err)
		}
		clear(ref[:64*bs])
	}
	img := st.Bytes()
	for n := 0; n < 12; n++ {
		cs := &crashStorage{Mem: storage.NewMem(append([]byte(nil), img...)), left: n}
		cd, err := OpenPaced(cs)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = cd.CompactStep(time.Hour)
		if err != nil && !errors.Is(err, errCrash) {
			t.Fatalf("crash after %d writes: %v", n, err)
		}
		checkDisk(t, mustOpen(t, storage.NewMem(cs.Mem.Bytes()), false), ref)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	aeroAccepts(t, st, ref)
}
