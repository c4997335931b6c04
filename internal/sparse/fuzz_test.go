package sparse

import (
	"aerodisk/internal/testutil"
	"aerodisk/internal/zero"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/storage"
)

func fuzzSeeds(f *testing.F) {
	add := func(size int64, bs uint32, writes map[int64]string) []byte {
		st := storage.NewMem(nil)
		d, err := Create(st, size, bs)
		if err != nil {
			f.Fatal(err)
		}
		for off, s := range writes {
			if _, err := d.WriteAt([]byte(s), off); err != nil {
				f.Fatal(err)
			}
		}
		img := append([]byte(nil), st.Bytes()...)
		f.Add(img)
		return img
	}
	add(512, 512, nil)
	add(4096, 512, map[int64]string{0: "a", 1000: "bb", 4095: "z"})
	add(5*512, 1024, map[int64]string{2048: "last partial block"})
	add(8192, 1024, map[int64]string{1024: "x", 5000: "y"})
	img := add(8*512, 512, map[int64]string{512: "1", 1536: "2", 3000: "3"})
	// recovery A: header one short
	a := append([]byte(nil), img...)
	binary.LittleEndian.PutUint64(a[offAllocated:], 2)
	f.Add(a)
	// recovery B: header one short and the entry of the block in slot 0 cleared
	b := append([]byte(nil), img...)
	binary.LittleEndian.PutUint64(b[offAllocated:], 2)
	binary.LittleEndian.PutUint64(b[64+8*1:], 0)
	f.Add(b)
	// files aerodisk writes now: blank (reaching data_offset), Writer output
	// all zero and with data
	add(64*512, 4096, nil)
	for _, data := range [][]byte{make([]byte, 8*1024), bytes.Repeat([]byte("zq\x00\x00"), 2*1024)} {
		st := storage.NewMem(nil)
		w, err := NewWriter(st, int64(len(data)), 1024)
		if err != nil {
			f.Fatal(err)
		}
		w.WriteAt(data, 0)
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte(nil), st.Bytes()...))
	}
	// a blank disk as aerodisk wrote it before padding to data_offset
	blank := add(16*1024, 1024, nil)
	f.Add(append([]byte(nil), blank[:64+8*16]...))
	// slots freed by Aero's Rust writer (discard_range): a hole below the
	// high-water mark, and an untrimmed free top slot
	hole := append([]byte(nil), img...)
	binary.LittleEndian.PutUint64(hole[64+8*3:], 0)
	f.Add(hole)
	top := append([]byte(nil), img...)
	binary.LittleEndian.PutUint64(top[64+8*5:], 0) // block 5 is in the top slot
	f.Add(top)
	f.Add([]byte("AEROSPAR"))
	f.Add([]byte{})
}

// window is a range of the disk whose expected content the fuzzer tracks.
type window struct {
	lo  int64
	buf []byte
}

func FuzzAeroSpar(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Open(storage.NewMem(data), false)
		if err != nil {
			for _, s := range []error{diskerr.ErrCorrupt, diskerr.ErrUnsupported, diskerr.ErrBadSize, diskerr.ErrUnknownFormat} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Open: unexpected error %v", err)
		}
		readAllChecked(t, d)
		if d.bs > 1<<20 {
			return // keep each run cheap
		}

		// Writable: recovery (if any) is written, then a few changes; the
		// result must reopen strictly valid with the expected content.
		st := storage.NewMem(data)
		w, err := Open(st, true)
		if err != nil {
			t.Fatalf("opens read-only but not writable: %v", err)
		}
		size := w.Size()
		var wins []window
		for _, r := range [][2]int64{{0, 1500}, {size/3 - 700, size/3 + 700}, {size/2 - 100, size/2 + 100}, {2*size/3 - 700, 2*size/3 + 700}, {size - 1500, size}} {
			lo, hi := max(r[0], 0), min(r[1], size)
			if lo >= hi {
				continue
			}
			buf := make([]byte, hi-lo)
			if _, err := d.ReadAt(buf, lo); err != nil {
				t.Fatal(err)
			}
			wins = append(wins, window{lo, buf})
		}
		apply := func(off int64, p []byte) { // p nil: zeros of length n
			for _, wn := range wins {
				lo, hi := max(off, wn.lo), min(off+int64(len(p)), wn.lo+int64(len(wn.buf)))
				if lo < hi {
					copy(wn.buf[lo-wn.lo:hi-wn.lo], p[lo-off:hi-off])
				}
			}
		}
		pat := bytes.Repeat([]byte{0xA5, 0x5A, 0x01}, 300)
		for _, op := range []struct {
			off     int64
			n       int64
			discard bool
		}{
			{0, min(size, 700), false},
			{size / 2, min(size-size/2, 10), false},
			{size - 1, 1, false},
			{size / 3, size / 3, true},
			{size / 3, min(size-size/3, 500), false},
		} {
			if op.n <= 0 {
				continue
			}
			var err error
			if op.discard {
				err = w.Discard(op.off, op.n)
				apply(op.off, make([]byte, op.n))
			} else {
				p := pat[:op.n]
				_, err = w.WriteAt(p, op.off)
				apply(op.off, p)
			}
			if err != nil {
				t.Fatalf("op %+v: %v", op, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := Open(storage.NewMem(st.Bytes()), false)
		if err != nil {
			t.Fatalf("reopen after writes: %v", err)
		}
		if r.recovered != 0 {
			t.Fatalf("reopen needed recovery %c", r.recovered)
		}
		// What aerodisk writes, Aero reads (unless the input's table was
		// already too large for Aero's TS reader).
		if r.MappedBlocks() != r.AllocatedBlocks() {
			t.Fatalf("after writes %d blocks mapped, allocated_blocks %d", r.MappedBlocks(), r.AllocatedBlocks())
		}
		if r.entries <= MaxTableEntries {
			if err := testutil.AeroCheck(st, int64(len(st.Bytes()))); err != nil {
				t.Fatalf("Aero refuses the image after writes: %v", err)
			}
		}
		if fs := int64(len(st.Bytes())); fs < r.fileEnd(r.alloc) {
			t.Fatalf("file %d bytes, image needs %d", fs, r.fileEnd(r.alloc))
		}
		for _, wn := range wins {
			got := make([]byte, len(wn.buf))
			if _, err := r.ReadAt(got, wn.lo); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, wn.buf) {
				t.Fatalf("window at %d differs after writes", wn.lo)
			}
		}
		readAllChecked(t, r)
	})
}

// readAllChecked walks the disk with Extent, reads every allocated extent
// and a sample of every unallocated one (zeros), and checks that the extents
// account for exactly AllocatedBlocks blocks. Work is bounded by the table
// (extents) and by the file (allocated data).
func readAllChecked(t *testing.T, d *Disk) {
	t.Helper()
	var blocks int64
	buf := make([]byte, 64<<10)
	for off := int64(0); off < d.Size(); {
		e, err := d.Extent(off, d.Size())
		if err != nil {
			t.Fatalf("Extent(%d): %v", off, err)
		}
		if e.Off != off || e.Len <= 0 || e.Len > d.Size()-off {
			t.Fatalf("Extent(%d) = %+v", off, e)
		}
		if e.Allocated {
			if off%d.bs != 0 {
				t.Fatalf("allocated extent %+v not block-aligned", e)
			}
			blocks += (e.Len + d.bs - 1) / d.bs
			for p := off; p < off+e.Len; {
				n := min(int64(len(buf)), off+e.Len-p)
				if k, err := d.ReadAt(buf[:n], p); k != int(n) || err != nil {
					t.Fatalf("ReadAt(%d,+%d) = %d, %v", p, n, k, err)
				}
				p += n
			}
		} else {
			n := min(int64(len(buf)), e.Len)
			if k, err := d.ReadAt(buf[:n], off); k != int(n) || err != nil || !zero.Is(buf[:n]) {
				t.Fatalf("unallocated ReadAt(%d,+%d) = %d, %v", off, n, k, err)
			}
		}
		off += e.Len
	}
	if blocks != d.MappedBlocks() {
		t.Fatalf("extents hold %d blocks, MappedBlocks %d", blocks, d.MappedBlocks())
	}
}
