package convert

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"aerodisk/internal/formats"
	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
	"aerodisk/internal/testutil"
)

// ---- Aero's converter, reimplemented from its source ----
//
// web/src/storage/import_convert.ts in github.com/wilsonzlin/aero (commit
// 98dafdd328f56863b4ec0b5f310801c0dbf6aa03): convertRawToSparse (raw input;
// convertRawSliceToSparse for fixed VHDs is the same loop) driving
// AeroSparseWriter over a FileSystemSyncAccessHandle. The steps below are
// that code's, in its order; only the handle is simulated.

// syncHandle is the part of a sync access handle AeroSparseWriter uses:
// truncate (zero-extends or cuts), write at an offset (extends), getSize.
type syncHandle struct{ b []byte }

func (h *syncHandle) truncate(n int) {
	if n <= len(h.b) {
		h.b = h.b[:n]
		return
	}
	h.b = append(h.b, make([]byte, n-len(h.b))...)
}

func (h *syncHandle) write(p []byte, at int) {
	if at+len(p) > len(h.b) {
		h.truncate(at + len(p))
	}
	copy(h.b[at:], p)
}

func (h *syncHandle) getSize() int { return len(h.b) }

// encodeAeroSparseHeader (import_convert.ts).
func encodeAeroSparseHeader(bs, diskSize, entries, dataOffset, alloc int) []byte {
	b := make([]byte, 64)
	copy(b, "AEROSPAR")
	le := binary.LittleEndian
	le.PutUint32(b[8:], 1)   // AEROSPAR_VERSION
	le.PutUint32(b[12:], 64) // AEROSPAR_HEADER_SIZE
	le.PutUint32(b[16:], uint32(bs))
	le.PutUint32(b[20:], 0)
	le.PutUint64(b[24:], uint64(diskSize))
	le.PutUint64(b[32:], 64) // table_offset
	le.PutUint64(b[40:], uint64(entries))
	le.PutUint64(b[48:], uint64(dataOffset))
	le.PutUint64(b[56:], uint64(alloc))
	return b
}

// aeroConvertRaw is convertRawToSparse(src, sync, blockSize): the bytes of
// the .aerospar file Aero's importer writes for the raw image src.
func aeroConvertRaw(t *testing.T, src []byte, blockSize int) []byte {
	t.Helper()
	const maxTableEntries = 64 * 1024 * 1024 / 8 // AEROSPAR_MAX_TABLE_ENTRIES
	logicalSize := len(src)
	// new AeroSparseWriter(sync, logicalSize, blockSize)
	entries := (logicalSize + blockSize - 1) / blockSize // divCeil
	if entries > maxTableEntries {
		t.Fatalf("Aero refuses: aerosparse allocation table too large")
	}
	tableBytes := entries * 8
	dataOffset := (64 + tableBytes + blockSize - 1) / blockSize * blockSize // alignUp
	table := make([]int, entries)
	alloc, nextPhys := 0, dataOffset
	h := &syncHandle{}
	h.truncate(dataOffset)
	h.write(encodeAeroSparseHeader(blockSize, logicalSize, entries, dataOffset, 0), 0)
	zeroChunk := make([]byte, min(64*1024, tableBytes))
	for off, remaining := 64, tableBytes; remaining > 0; {
		n := min(remaining, len(zeroChunk))
		h.write(zeroChunk[:n], off)
		off += n
		remaining -= n
	}
	// the block loop of convertRawToSparse
	buf := make([]byte, blockSize)
	for blockIndex := 0; blockIndex < entries; blockIndex++ {
		clear(buf) // buf.fill(0)
		off := blockIndex * blockSize
		n := min(blockSize, logicalSize-off)
		copy(buf, src[off:off+n])
		if !bytes.Equal(buf, make([]byte, blockSize)) { // any non-zero byte
			// writer.writeBlock(blockIndex, buf)
			phys := table[blockIndex]
			if phys == 0 {
				phys = nextPhys
				table[blockIndex] = phys
				alloc++
				nextPhys += blockSize
				if nextPhys > h.getSize() {
					h.truncate(nextPhys)
				}
			}
			h.write(buf, phys)
		}
	}
	// writer.finalize()
	h.write(encodeAeroSparseHeader(blockSize, logicalSize, entries, dataOffset, alloc), 0)
	const chunkEntries = 1024
	tb := make([]byte, chunkEntries*8)
	for i := 0; i < entries; i += chunkEntries {
		count := min(chunkEntries, entries-i)
		for j := range count {
			binary.LittleEndian.PutUint64(tb[j*8:], uint64(table[i+j]))
		}
		h.write(tb[:count*8], 64+i*8)
	}
	h.truncate(nextPhys)
	return h.b
}

// ---- the comparison ----

func rawImage(t *testing.T, data []byte) formats.Image {
	t.Helper()
	img, err := formats.Open(formats.Source{Name: "in.img", R: bytes.NewReader(data), Size: int64(len(data))}, formats.Options{Format: formats.Raw})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestToAeroSparMatchesAeroConverter: convert.ToAeroSpar writes exactly the
// bytes Aero's converter writes at the same block size (header fields, block
// order, zero blocks left out, the last partial block stored whole and
// zero-padded, the file ending at data_offset when nothing is stored), also
// when the input's zero runs arrive as Zero/Unallocated extents.
func TestToAeroSparMatchesAeroConverter(t *testing.T) {
	const mib = 1 << 20
	mixed := func(n int, seed uint64, zeroBlocks ...[2]int) []byte {
		b := testutil.MixedData(n, seed)
		for _, z := range zeroBlocks {
			clear(b[z[0]:z[1]])
		}
		return b
	}
	cases := []struct {
		name string
		data []byte
		bs   []int
	}{
		{"all zero 64M", make([]byte, 64*mib), []int{mib, 64 << 10, 4096}},
		{"all zero 512", make([]byte, 512), []int{512, mib}},
		{"all zero odd size", make([]byte, 3*mib+1536), []int{mib, 2 * mib}},
		{"mixed with zero blocks", mixed(8*mib, 5, [2]int{mib, 3 * mib}, [2]int{5*mib + 4096, 6 * mib}), []int{512, 4096, 64 << 10, mib, 2 * mib}},
		{"data in the last partial block", mixed(3*mib+1536, 6, [2]int{0, 3 * mib}), []int{mib, 4096, 2 * mib}},
		{"zero last partial block", mixed(3*mib+1536, 7, [2]int{3 * mib, 3*mib + 1536}), []int{mib, 2 * mib}},
		{"one byte at the end", func() []byte { b := make([]byte, 5*4096+512); b[len(b)-1] = 1; return b }(), []int{4096, mib}},
	}
	for _, c := range cases {
		for _, bs := range c.bs {
			t.Run(fmt.Sprintf("%s/%d", c.name, bs), func(t *testing.T) {
				want := aeroConvertRaw(t, c.data, bs)
				for _, src := range []formats.Image{rawImage(t, c.data), holeyOf(c.data)} {
					st := storage.NewMem(nil)
					if _, err := ToAeroSpar(context.Background(), src, st, uint32(bs), Options{ChunkSize: 3<<20 + 512}); err != nil {
						t.Fatal(err)
					}
					if got := st.Bytes(); !bytes.Equal(got, want) {
						t.Fatalf("%d bytes; Aero's converter writes %d bytes; first difference at %d", len(got), len(want), firstDiff(got, want))
					}
				}
				// the default block size is Aero's (RANGE_STREAM_CHUNK_SIZE, 1 MiB)
				if bs == mib {
					st := storage.NewMem(nil)
					if _, err := ToAeroSpar(context.Background(), rawImage(t, c.data), st, 0, Options{}); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(st.Bytes(), want) {
						t.Fatal("block size 0 differs from Aero's default")
					}
				}
			})
		}
	}
	// all zero: the file ends at data_offset (1 MiB for 64 MiB at 1 MiB blocks)
	st := storage.NewMem(nil)
	if _, err := ToAeroSpar(context.Background(), rawImage(t, make([]byte, 64*mib)), st, 0, Options{}); err != nil {
		t.Fatal(err)
	}
	if len(st.Bytes()) != mib {
		t.Fatalf("all-zero 64 MiB image converts to %d bytes, want 1 MiB", len(st.Bytes()))
	}
}

// holeyOf presents data with its all-zero 64 KiB grains as Zero or
// Unallocated extents, alternating.
func holeyOf(data []byte) *holey {
	h := &holey{data: data}
	const g = 64 << 10
	for off, i := 0, 0; off < len(data); off, i = off+g, i+1 {
		n := min(g, len(data)-off)
		k := formats.Data
		if bytes.Equal(data[off:off+n], make([]byte, n)) {
			k = formats.Zero
			if i%2 == 0 {
				k = formats.Unallocated
			}
		}
		h.ext = append(h.ext, formats.Extent{Off: int64(off), Len: int64(n), Kind: k})
	}
	return h
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestToAeroSparTableLimit: a block size that makes a table Aero cannot
// read is refused (ErrBadSize) before anything is written.
func TestToAeroSparTableLimit(t *testing.T) {
	big := &holey{data: nil, ext: []formats.Extent{{Off: 0, Len: 8 << 30, Kind: formats.Unallocated}}}
	sized := sizedHoley{big, 8 << 30}
	old := []byte("old")
	st := storage.NewMem(old)
	_, err := ToAeroSpar(context.Background(), sized, st, 512, Options{})
	if err == nil || !bytes.Equal(st.Bytes(), old) {
		t.Fatalf("8 GiB at 512-byte blocks: %v, storage %q", err, st.Bytes())
	}
	if _, err := sparse.BlankSize(8<<30, 512); err == nil {
		t.Fatal("BlankSize accepts 512-byte blocks for 8 GiB")
	}
	// block size 0 picks 1 MiB
	st = storage.NewMem(nil)
	if _, err := ToAeroSpar(context.Background(), sized, st, 0, Options{}); err != nil {
		t.Fatal(err)
	}
	if d, err := sparse.Open(st, false); err != nil || d.BlockSize() != 1<<20 || len(st.Bytes()) != 1<<20 {
		t.Fatalf("%v %d bytes", err, len(st.Bytes()))
	}
}

// sizedHoley is a holey image whose size is given (its data is not stored).
type sizedHoley struct {
	*holey
	size int64
}

func (s sizedHoley) Size() int64 { return s.size }
