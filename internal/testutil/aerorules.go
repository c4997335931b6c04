package testutil

// Aero's three AEROSPAR checks, reimplemented from Aero's source
// (github.com/wilsonzlin/aero, commit 98dafdd328f56863b4ec0b5f310801c0dbf6aa03;
// docs/aerospar.md, "What Aero's readers accept", lists the rules with the
// same citations). They are deliberately written from Aero's code, not from
// this package, so that a file this package writes and Aero refuses fails a
// test:
//
//   - AeroTSOpen: web/src/storage/opfs_sparse.ts, decodeHeader and
//     OpfsAeroSparseDisk.open (the browser runtime's reader);
//   - AeroRustOpen: crates/aero-storage/src/sparse.rs, AeroSparseHeader::decode
//     and AeroSparseDisk::open (the emulator's reader and writer);
//   - AeroImportCheck: web/src/storage/disk_worker.ts,
//     sniffAerosparseDiskSizeBytesFromFile (the check on importing a file).
//
// AeroCheck requires all three to accept. They live here, among the test
// helpers, so that every package's tests (and the browser suite, on the
// files the browser stored) check files with the same rules.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

const (
	aeroTSMaxTableBytes   = 64 << 20  // opfs_sparse.ts MAX_TABLE_BYTES
	aeroRustMaxTableBytes = 128 << 20 // sparse.rs MAX_TABLE_BYTES
	aeroMaxBlockSize      = 64 << 20  // MAX_BLOCK_SIZE_BYTES in both
	jsMaxSafeInteger      = 1<<53 - 1 // Number.MAX_SAFE_INTEGER
)

// aeroHeader is the raw header; every field as stored.
type aeroHeader struct {
	version, headerSize, blockSize                          uint32
	diskSize, tableOffset, entries, dataOffset, allocBlocks uint64
}

func readAeroHeader(r io.ReaderAt, size int64) (aeroHeader, error) {
	if size < 64 {
		return aeroHeader{}, errors.New("short header read")
	}
	var b [64]byte
	if n, _ := r.ReadAt(b[:], 0); n != 64 {
		return aeroHeader{}, errors.New("short header read")
	}
	if string(b[:8]) != "AEROSPAR" {
		return aeroHeader{}, errors.New("bad sparse magic")
	}
	le := binary.LittleEndian
	return aeroHeader{
		version: le.Uint32(b[8:]), headerSize: le.Uint32(b[12:]), blockSize: le.Uint32(b[16:]),
		diskSize: le.Uint64(b[24:]), tableOffset: le.Uint64(b[32:]), entries: le.Uint64(b[40:]),
		dataOffset: le.Uint64(b[48:]), allocBlocks: le.Uint64(b[56:]),
	}, nil
}

func pow2(n uint64) bool { return n > 0 && n&(n-1) == 0 }

// commonHeaderRules are the header checks all three share (same order as
// decodeHeader in opfs_sparse.ts).
func commonHeaderRules(h aeroHeader) error {
	switch {
	case h.version != 1:
		return fmt.Errorf("unsupported sparse version %d", h.version)
	case h.headerSize != 64:
		return fmt.Errorf("unexpected header size %d", h.headerSize)
	case h.tableOffset != 64:
		return fmt.Errorf("unsupported tableOffset %d", h.tableOffset)
	case h.blockSize == 0 || h.blockSize%512 != 0 || !pow2(uint64(h.blockSize)) || h.blockSize > aeroMaxBlockSize:
		return fmt.Errorf("invalid blockSizeBytes=%d", h.blockSize)
	case h.diskSize == 0 || h.diskSize%512 != 0:
		return fmt.Errorf("invalid diskSizeBytes=%d", h.diskSize)
	}
	bs := uint64(h.blockSize)
	if h.entries != (h.diskSize-1)/bs+1 { // ceil(disk_size / block_size); disk_size > 0
		return fmt.Errorf("tableEntries mismatch: %d", h.entries)
	}
	return nil
}

// covers reports size >= dataOff + alloc*bs without overflowing (Aero
// computes it in BigInt or checked u64 arithmetic).
func covers(size int64, dataOff, alloc, bs uint64) bool {
	hi, lo := bits.Mul64(alloc, bs)
	need, carry := bits.Add64(lo, dataOff, 0)
	return hi == 0 && carry == 0 && uint64(size) >= need
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) / a * a }

// AeroTSOpen: decodeHeader + OpfsAeroSparseDisk.open (opfs_sparse.ts).
func AeroTSOpen(r io.ReaderAt, size int64) error {
	h, err := readAeroHeader(r, size)
	if err != nil {
		return err
	}
	// toSafeNumber on diskSizeBytes, tableOffset, tableEntries, dataOffset, allocatedBlocks
	for _, v := range []uint64{h.diskSize, h.tableOffset, h.entries, h.dataOffset, h.allocBlocks} {
		if v > jsMaxSafeInteger {
			return fmt.Errorf("field is not a safe JS integer (%d)", v)
		}
	}
	if err := commonHeaderRules(h); err != nil {
		return err
	}
	if h.entries == 0 {
		return errors.New("invalid tableEntries=0")
	}
	if h.entries*8 > aeroTSMaxTableBytes {
		return fmt.Errorf("sparse table too large: %d bytes (max %d)", h.entries*8, aeroTSMaxTableBytes)
	}
	bs := uint64(h.blockSize)
	if h.dataOffset != alignUp(64+h.entries*8, bs) {
		return errors.New("dataOffset mismatch")
	}
	if h.allocBlocks > h.entries {
		return errors.New("allocatedBlocks out of range")
	}
	// open(): file-size checks
	if uint64(size) < h.dataOffset {
		return errors.New("data region out of bounds")
	}
	minLen := h.dataOffset + h.allocBlocks*bs
	if minLen > jsMaxSafeInteger {
		return errors.New("expectedMinLen is not a safe JS integer")
	}
	if uint64(size) < minLen {
		return errors.New("allocated blocks extend beyond end of image")
	}
	seen := make(map[uint64]bool)
	var count uint64
	err = forEachEntry(r, h.entries, func(i, phys uint64) error {
		if phys > jsMaxSafeInteger {
			return fmt.Errorf("table[%d] is not a safe JS integer", i)
		}
		if phys == 0 {
			return nil
		}
		count++
		if count > h.allocBlocks {
			return errors.New("allocatedBlocks does not match allocation table")
		}
		if phys < h.dataOffset {
			return errors.New("data block offset before data region")
		}
		rel := phys - h.dataOffset
		if rel%bs != 0 {
			return errors.New("misaligned data block offset")
		}
		idx := rel / bs
		if idx >= h.allocBlocks || phys+bs > minLen {
			return errors.New("data block offset out of bounds")
		}
		if seen[idx] {
			return errors.New("duplicate data block offset")
		}
		seen[idx] = true
		return nil
	})
	if err != nil {
		return err
	}
	if count != h.allocBlocks {
		return fmt.Errorf("allocatedBlocks does not match allocation table (%d mapped, allocatedBlocks %d)", count, h.allocBlocks)
	}
	return nil
}

// AeroRustOpen: AeroSparseHeader::decode + AeroSparseDisk::open (sparse.rs).
// Unlike the TS reader it allows fewer mapped entries than allocated_blocks
// (slots freed by discard_range below the high-water mark).
func AeroRustOpen(r io.ReaderAt, size int64) error {
	h, err := readAeroHeader(r, size)
	if err != nil {
		return err
	}
	if err := commonHeaderRules(h); err != nil {
		return err
	}
	if h.entries == 0 {
		return errors.New("table_entries must be non-zero")
	}
	if h.entries > aeroRustMaxTableBytes/8 {
		return errors.New("aerosparse allocation table too large")
	}
	bs := uint64(h.blockSize)
	if h.dataOffset != alignUp(64+h.entries*8, bs) {
		return errors.New("unexpected data_offset")
	}
	if h.allocBlocks > h.entries {
		return errors.New("allocated_blocks exceeds table_entries")
	}
	if uint64(size) < 64+h.entries*8 {
		return errors.New("allocation table out of bounds")
	}
	if uint64(size) < h.dataOffset {
		return errors.New("data region out of bounds")
	}
	minLen := h.dataOffset + h.allocBlocks*bs
	if uint64(size) < minLen {
		return errors.New("allocated blocks extend beyond end of image")
	}
	seen := make(map[uint64]bool)
	return forEachEntry(r, h.entries, func(i, phys uint64) error {
		if phys == 0 {
			return nil
		}
		if phys < h.dataOffset {
			return errors.New("data block offset before data region")
		}
		rel := phys - h.dataOffset
		if rel%bs != 0 {
			return errors.New("misaligned data block offset")
		}
		idx := rel / bs
		if idx >= h.allocBlocks || phys+bs > minLen {
			return errors.New("data block offset out of bounds")
		}
		if seen[idx] {
			return errors.New("duplicate data block offset")
		}
		seen[idx] = true
		return nil
	})
}

// AeroImportCheck: sniffAerosparseDiskSizeBytesFromFile (disk_worker.ts), the
// header-only check an import runs. (A version other than 1 makes it treat
// the file as not AEROSPAR at all; for our purpose that is a refusal.)
func AeroImportCheck(r io.ReaderAt, size int64) error {
	h, err := readAeroHeader(r, size)
	if err != nil {
		return fmt.Errorf("aerospar header too small: %w", err)
	}
	if err := commonHeaderRules(h); err != nil {
		return err
	}
	bs := uint64(h.blockSize)
	dataOff := alignUp(64+h.entries*8, bs)
	if h.dataOffset != dataOff {
		return errors.New("unexpected aerospar data offset")
	}
	if h.allocBlocks > h.entries {
		return errors.New("aerospar allocated blocks out of range")
	}
	if !covers(size, dataOff, h.allocBlocks, bs) {
		return errors.New("aerospar file is truncated")
	}
	if h.diskSize > jsMaxSafeInteger {
		return errors.New("aerospar disk size is too large for JS")
	}
	return nil
}

// AeroCheck requires every one of Aero's checks to accept the file.
func AeroCheck(r io.ReaderAt, size int64) error {
	if err := AeroImportCheck(r, size); err != nil {
		return fmt.Errorf("the import check of Aero (disk_worker.ts): %w", err)
	}
	if err := AeroTSOpen(r, size); err != nil {
		return fmt.Errorf("the TS reader of Aero (opfs_sparse.ts): %w", err)
	}
	if err := AeroRustOpen(r, size); err != nil {
		return fmt.Errorf("the Rust reader of Aero (sparse.rs): %w", err)
	}
	return nil
}

// AeroContent reads the logical content the way both Aero readers do
// (OpfsAeroSparseDisk.readBlockInto / AeroSparseDisk::read_at): a zero entry
// is zeros, any other entry is block_size bytes at that offset. For small
// disks only; the image must have passed AeroRustOpen.
func AeroContent(r io.ReaderAt, size int64) ([]byte, error) {
	h, err := readAeroHeader(r, size)
	if err != nil {
		return nil, err
	}
	bs := uint64(h.blockSize)
	out := make([]byte, h.diskSize)
	err = forEachEntry(r, h.entries, func(i, phys uint64) error {
		if phys == 0 {
			return nil
		}
		blk := make([]byte, bs)
		if n, _ := r.ReadAt(blk, int64(phys)); uint64(n) != bs {
			return fmt.Errorf("short block read at=%d", phys)
		}
		copy(out[i*bs:], blk)
		return nil
	})
	return out, err
}

// aeroEncodeHeader is encodeHeader (opfs_sparse.ts) / AeroSparseHeader::encode
// (sparse.rs): reserved and table_offset are constants.
func aeroEncodeHeader(bs uint32, diskSize, entries, dataOffset, alloc uint64) []byte {
	b := make([]byte, 64)
	copy(b, "AEROSPAR")
	le := binary.LittleEndian
	le.PutUint32(b[8:], 1)
	le.PutUint32(b[12:], 64)
	le.PutUint32(b[16:], bs)
	le.PutUint32(b[20:], 0)
	le.PutUint64(b[24:], diskSize)
	le.PutUint64(b[32:], 64)
	le.PutUint64(b[40:], entries)
	le.PutUint64(b[48:], dataOffset)
	le.PutUint64(b[56:], alloc)
	return b
}

// aeroCreate is the file OpfsAeroSparseDisk.create (opfs_sparse.ts) and
// AeroSparseDisk::create (sparse.rs) leave: truncate(dataOffset) (zeros),
// the header at 0, the zeroed table. Small disks only.
func AeroCreate(diskSize int64, bs uint32) []byte {
	entries := uint64((diskSize-1)/int64(bs) + 1)
	dataOffset := alignUp(64+8*entries, uint64(bs))
	f := make([]byte, dataOffset)
	copy(f, aeroEncodeHeader(bs, uint64(diskSize), entries, dataOffset, 0))
	return f
}

// forEachEntry streams the table in 64 KiB chunks.
func forEachEntry(r io.ReaderAt, entries uint64, f func(i, phys uint64) error) error {
	buf := make([]byte, 64<<10)
	for i := uint64(0); i < entries; {
		n := min(uint64(len(buf))/8, entries-i)
		if k, _ := r.ReadAt(buf[:8*n], int64(64+8*i)); uint64(k) != 8*n {
			return errors.New("short table read")
		}
		for j := uint64(0); j < n; j++ {
			if err := f(i+j, binary.LittleEndian.Uint64(buf[8*j:])); err != nil {
				return fmt.Errorf("table[%d]: %w", i+j, err)
			}
		}
		i += n
	}
	return nil
}
