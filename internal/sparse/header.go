// Package sparse implements AEROSPAR v1, the writable sparse disk format
// aerodisk shares with Aero (github.com/wilsonzlin/aero): a 64-byte header, a
// flat table of one u64 file offset per block, zeros up to data_offset, and
// densely packed data blocks. docs/aerospar.md is the specification,
// including what Aero's readers accept (every file written here passes
// them), the write order that keeps images valid across crashes and the
// roll-forward states that Open repairs.
//
// Disk gives random read/write/discard access over a storage.Storage;
// Writer streams a new image sequentially (conversion). Neither imports
// internal/formats; formats wraps a read-only Disk as an Image.
package sparse

import (
	"encoding/binary"
	"errors"
	"io"

	"aerodisk/internal/diskerr"
)

// Format constants of AEROSPAR v1.
const (
	Magic            = "AEROSPAR"
	Version          = 1
	HeaderSize       = 64
	DefaultBlockSize = 1 << 20 // Aero's converter default (RANGE_STREAM_CHUNK_SIZE)
	MinBlockSize     = 512
	MaxBlockSize     = 64 << 20 // MAX_BLOCK_SIZE_BYTES in both of Aero's readers
	// MaxTableEntries is the largest table Create and NewWriter write: Aero's
	// TS reader (web/src/storage/opfs_sparse.ts, MAX_TABLE_BYTES) refuses a
	// table over 64 MiB, i.e. 8 Mi entries (its Rust reader allows 128 MiB).
	// 8 TiB at the default 1 MiB blocks. Open is bounded by the file size
	// instead, so older files with larger tables still open.
	MaxTableEntries = 64 << 20 / 8
	// MaxDiskSize is the largest disk Create and NewWriter accept: a full
	// table of MaxBlockSize blocks (512 TiB).
	MaxDiskSize = MaxTableEntries * MaxBlockSize
)

const formatName = "aerospar"

// Header field offsets.
const (
	offVersion      = 0x08
	offHeaderSize   = 0x0C
	offBlockSize    = 0x10
	offReserved     = 0x14
	offDiskSize     = 0x18
	offTableOffset  = 0x20
	offTableEntries = 0x28
	offDataOffset   = 0x30
	offAllocated    = 0x38
)

// ErrNotSequential: a Writer was given an offset below the end of the previous write.
var ErrNotSequential = errors.New("aerospar: streaming write offset goes backwards")

func errf(sentinel error, msg string, args ...any) error {
	return diskerr.New(formatName, sentinel, msg, args...)
}

// header is the decoded 64-byte header.
type header struct {
	version, headerSize, blockSize, reserved                   uint32
	diskSize, tableOffset, tableEntries, dataOffset, allocated uint64
}

func (h *header) marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	le := binary.LittleEndian
	le.PutUint32(b[offVersion:], h.version)
	le.PutUint32(b[offHeaderSize:], h.headerSize)
	le.PutUint32(b[offBlockSize:], h.blockSize)
	le.PutUint32(b[offReserved:], h.reserved)
	le.PutUint64(b[offDiskSize:], h.diskSize)
	le.PutUint64(b[offTableOffset:], h.tableOffset)
	le.PutUint64(b[offTableEntries:], h.tableEntries)
	le.PutUint64(b[offDataOffset:], h.dataOffset)
	le.PutUint64(b[offAllocated:], h.allocated)
	return b
}

func parseHeader(b []byte) header {
	le := binary.LittleEndian
	return header{
		version:      le.Uint32(b[offVersion:]),
		headerSize:   le.Uint32(b[offHeaderSize:]),
		blockSize:    le.Uint32(b[offBlockSize:]),
		reserved:     le.Uint32(b[offReserved:]),
		diskSize:     le.Uint64(b[offDiskSize:]),
		tableOffset:  le.Uint64(b[offTableOffset:]),
		tableEntries: le.Uint64(b[offTableEntries:]),
		dataOffset:   le.Uint64(b[offDataOffset:]),
		allocated:    le.Uint64(b[offAllocated:]),
	}
}

// layout is the geometry derived from disk size and block size.
type layout struct {
	size    int64 // logical disk size
	bs      int64 // block size
	entries int64 // table entries
	dataOff int64 // first data block
}

func validBlockSize(bs uint32) bool {
	return bs >= MinBlockSize && bs <= MaxBlockSize && bs&(bs-1) == 0
}

// geometry computes table_entries and data_offset; size and bs must already
// be valid (size > 0, bs a valid block size), so nothing overflows.
func geometry(size, bs int64) layout {
	entries := (size-1)/bs + 1
	tableEnd := HeaderSize + 8*entries
	dataOff := (tableEnd + bs - 1) / bs * bs
	return layout{size: size, bs: bs, entries: entries, dataOff: dataOff}
}

func (l layout) tableEnd() int64            { return HeaderSize + 8*l.entries }
func (l layout) slotOff(slot int64) int64   { return l.dataOff + slot*l.bs }
func (l layout) entryOff(block int64) int64 { return HeaderSize + 8*block }

// fileEnd is the file size of an image with alloc blocks: data_offset plus
// the blocks. A blank image reaches data_offset too (zeros after the table),
// which both Aero readers require.
func (l layout) fileEnd(alloc int64) int64 { return l.slotOff(alloc) }

// blockLen is the logical length of block b (the last may be short).
func (l layout) blockLen(b int64) int64 { return min(l.bs, l.size-b*l.bs) }

func (l layout) header(alloc int64) header {
	return header{
		version: Version, headerSize: HeaderSize, blockSize: uint32(l.bs),
		diskSize: uint64(l.size), tableOffset: HeaderSize,
		tableEntries: uint64(l.entries), dataOffset: uint64(l.dataOff),
		allocated: uint64(alloc),
	}
}

// newLayout validates Create/NewWriter arguments (ErrBadSize): never a
// layout Aero's readers refuse (docs/aerospar.md, "What Aero's readers
// accept"). blockSize 0 is ChooseBlockSize(diskSize).
func newLayout(diskSize int64, blockSize uint32) (layout, error) {
	if diskSize <= 0 || diskSize%512 != 0 {
		return layout{}, errf(diskerr.ErrBadSize, "disk size %d is not a non-zero multiple of 512 bytes", diskSize)
	}
	if blockSize == 0 {
		blockSize = ChooseBlockSize(diskSize)
	}
	if !validBlockSize(blockSize) {
		return layout{}, errf(diskerr.ErrBadSize, "block size %d is not a power of two between %d and %d", blockSize, MinBlockSize, MaxBlockSize)
	}
	if diskSize > MaxDiskSize {
		return layout{}, errf(diskerr.ErrBadSize, "disk size %d is larger than %d bytes (512 TiB), the largest AEROSPAR disk Aero can read", diskSize, int64(MaxDiskSize))
	}
	l := geometry(diskSize, int64(blockSize))
	if l.entries > MaxTableEntries {
		// Only an explicit block size gets here: ChooseBlockSize fits.
		return layout{}, errf(diskerr.ErrBadSize, "block size %d is too small for a %d-byte disk: it needs %d table entries and Aero reads at most %d (a 64 MiB table); use a block size of at least %d", blockSize, diskSize, l.entries, MaxTableEntries, smallestBlockSize(diskSize, MinBlockSize))
	}
	return l, nil
}

// ChooseBlockSize is the block size Create and NewWriter use when given 0:
// DefaultBlockSize (Aero's converter's default too, so the files are the
// same), or the smallest larger power of two whose table fits in
// MaxTableEntries (disks over 8 TiB). For a disk over MaxDiskSize it returns
// MaxBlockSize, with which Create refuses the size.
func ChooseBlockSize(diskSize int64) uint32 {
	return smallestBlockSize(diskSize, DefaultBlockSize)
}

// smallestBlockSize is the smallest power of two from bs up to MaxBlockSize
// whose table for diskSize fits in MaxTableEntries (else MaxBlockSize).
func smallestBlockSize(diskSize, bs int64) uint32 {
	for bs < MaxBlockSize && (diskSize-1)/bs+1 > MaxTableEntries {
		bs *= 2
	}
	return uint32(bs)
}

// FileSize is the size in bytes of an AEROSPAR file of diskSize bytes with
// blockSize-byte blocks (0: ChooseBlockSize) holding blocks data blocks:
// data_offset + blocks·block_size, exactly what Create, Disk and Writer
// leave (and Aero's converter writes). Arguments Create refuses, or blocks
// outside [0, table entries], are ErrBadSize.
func FileSize(diskSize int64, blockSize uint32, blocks int64) (int64, error) {
	l, err := newLayout(diskSize, blockSize)
	if err != nil {
		return 0, err
	}
	if blocks < 0 || blocks > l.entries {
		return 0, errf(diskerr.ErrBadSize, "%d blocks for a disk of %d blocks", blocks, l.entries)
	}
	return l.fileEnd(blocks), nil
}

// BlankSize is the size of the file Create writes: FileSize(diskSize,
// blockSize, 0), i.e. data_offset (1 MiB for 60 GB at 1 MiB blocks).
func BlankSize(diskSize int64, blockSize uint32) (int64, error) {
	return FileSize(diskSize, blockSize, 0)
}

// zeros is a shared source of zero bytes (read-only), for zeroing the
// partial edges of a discard.
var zeros [64 << 10]byte

// readFull reads exactly len(p) bytes at off; a short file is ErrTruncated.
func readFull(r io.ReaderAt, p []byte, off int64, what string) error {
	_, err := readFullN(r, p, off, what)
	return err
}

// readFullN is readFull returning how many bytes of p were read, for a
// caller that must report the bytes it filled before an error.
func readFullN(r io.ReaderAt, p []byte, off int64, what string) (int, error) {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	n = max(n, 0)
	if err == nil || err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return n, errf(diskerr.ErrTruncated, "%s at offset %d (%d bytes) lies past the end of the file", what, off, len(p))
	}
	return n, err
}

// writeFull writes all of p at off.
func writeFull(w io.WriterAt, p []byte, off int64) error {
	n, err := w.WriteAt(p, off)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return err
}

func writeU64(w io.WriterAt, v uint64, off int64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return writeFull(w, b[:], off)
}
