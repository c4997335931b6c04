// Package layer reads and writes AEROLAYR files: one layer of written
// blocks on top of a disk below it (docs/overlays.md). A Layer is also the
// view of the disk through it: ReadAt reads its own blocks and asks the
// layer below (Below) for the rest, so a chain is layers stacked on a base.
//
// Like internal/sparse it validates every structure against the file
// before allocating for it, returns diskerr sentinels, never panics on any
// input, and holds a bounded number of tables in memory.
package layer

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"unicode/utf8"

	"aerodisk/internal/diskerr"
)

const (
	// Magic starts each header slot.
	Magic = "AEROLAYR"
	// FooterMagic starts a delta's footer.
	FooterMagic = "AEROLEND"
	// Version is the only version written and read.
	Version = 1

	// DefaultBlockSize is the overlay block: small enough that a guest's
	// 4 KiB writes copy little, large enough that a 60 GB disk's tables
	// stay small (L1 960 bytes; one L2 table covers 512 MiB).
	DefaultBlockSize = 64 << 10
	MinBlockSize     = 4 << 10
	MaxBlockSize     = 1 << 20
	// MaxDiskSize is the largest virtual size (the page's limit too).
	MaxDiskSize = 2 << 40
	// MaxParentName bounds parent_name in bytes.
	MaxParentName = 1024
	// FooterSize is the length of a delta's footer.
	FooterSize = 512

	// FlagDelta marks a self-contained delta (base identity, footer).
	FlagDelta = 1

	slotSize  = 2048
	l1Offset  = 2 * slotSize
	crcOffset = 2040

	entryAbsent = 0
	entryZero   = 1
)

// Header is a layer's current header slot.
type Header struct {
	BlockSize  uint32
	DiskSize   int64
	Sequence   uint64
	Flags      uint32
	BaseSize   int64  // the virtual size of the layer below, 0 unknown
	BaseCRC32  uint32 // a delta's base identity
	ParentName string // the file below, relative to this one; "" none
}

// geometry is what follows from the block and disk sizes.
type geometry struct {
	bs, size  int64
	blocks    int64 // blocks of the disk
	perL2     int64 // entries in one L2 table
	l1Entries int64
	dataOff   int64
}

func newGeometry(bs uint32, size int64) geometry {
	g := geometry{bs: int64(bs), size: size}
	g.blocks = (size + g.bs - 1) / g.bs
	g.perL2 = g.bs / 8
	g.l1Entries = (g.blocks + g.perL2 - 1) / g.perL2
	g.dataOff = roundUp(l1Offset+8*g.l1Entries, g.bs)
	return g
}

func (g geometry) blockLen(b int64) int64 { return min(g.bs, g.size-b*g.bs) }

func roundUp(n, m int64) int64 { return (n + m - 1) / m * m }

func errf(sentinel error, msg string, args ...any) error {
	return diskerr.New("aerolayr", sentinel, msg, args...)
}

// checkSizes validates the sizes a layer is made with or read with.
func checkSizes(bs uint32, size int64) error {
	if bs < MinBlockSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
		return errf(diskerr.ErrBadSize, "block size %d is not a power of two from %d to %d", bs, MinBlockSize, MaxBlockSize)
	}
	if size <= 0 || size%512 != 0 || size > MaxDiskSize {
		return errf(diskerr.ErrBadSize, "disk size %d is not a positive multiple of 512 up to %d bytes", size, int64(MaxDiskSize))
	}
	return nil
}

func (h Header) marshal() []byte {
	b := make([]byte, slotSize)
	copy(b, Magic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], Version)
	le.PutUint32(b[12:], h.BlockSize)
	le.PutUint64(b[16:], uint64(h.DiskSize))
	le.PutUint64(b[24:], h.Sequence)
	g := newGeometry(h.BlockSize, h.DiskSize)
	le.PutUint32(b[32:], uint32(g.l1Entries))
	le.PutUint32(b[36:], h.Flags)
	le.PutUint64(b[40:], uint64(g.dataOff))
	le.PutUint64(b[48:], uint64(h.BaseSize))
	le.PutUint32(b[56:], h.BaseCRC32)
	le.PutUint16(b[60:], uint16(len(h.ParentName)))
	copy(b[64:64+MaxParentName], h.ParentName)
	le.PutUint32(b[crcOffset:], crc32.ChecksumIEEE(b))
	return b
}

// parseSlot reads one header slot; ok is false for a slot that is not a
// whole, current-version header (a torn or never-written slot).
func parseSlot(b []byte) (h Header, ok bool, err error) {
	if len(b) < slotSize || string(b[:8]) != Magic {
		return h, false, nil
	}
	le := binary.LittleEndian
	sum := le.Uint32(b[crcOffset:])
	tmp := make([]byte, slotSize)
	copy(tmp, b[:slotSize])
	le.PutUint32(tmp[crcOffset:], 0)
	if crc32.ChecksumIEEE(tmp) != sum {
		return h, false, nil
	}
	if v := le.Uint32(b[8:]); v != Version {
		return h, false, errf(diskerr.ErrUnsupported, "version %d (this reader knows version %d)", v, Version)
	}
	h = Header{
		BlockSize: le.Uint32(b[12:]),
		DiskSize:  int64(le.Uint64(b[16:])),
		Sequence:  le.Uint64(b[24:]),
		Flags:     le.Uint32(b[36:]),
		BaseSize:  int64(le.Uint64(b[48:])),
		BaseCRC32: le.Uint32(b[56:]),
	}
	if err := checkSizes(h.BlockSize, h.DiskSize); err != nil {
		return h, false, err
	}
	g := newGeometry(h.BlockSize, h.DiskSize)
	if int64(le.Uint32(b[32:])) != g.l1Entries || int64(le.Uint64(b[40:])) != g.dataOff {
		return h, false, errf(diskerr.ErrCorrupt, "l1_entries %d and data_offset %d do not match a %d-byte disk of %d-byte blocks",
			le.Uint32(b[32:]), le.Uint64(b[40:]), h.DiskSize, h.BlockSize)
	}
	if h.Flags&^FlagDelta != 0 {
		return h, false, errf(diskerr.ErrUnsupported, "unknown flags %#x", h.Flags)
	}
	if h.BaseSize < 0 {
		return h, false, errf(diskerr.ErrCorrupt, "base size %d", h.BaseSize)
	}
	n := int(le.Uint16(b[60:]))
	if n > MaxParentName {
		return h, false, errf(diskerr.ErrCorrupt, "parent name of %d bytes (at most %d)", n, MaxParentName)
	}
	name := b[64 : 64+n]
	if !utf8.Valid(name) {
		return h, false, errf(diskerr.ErrCorrupt, "parent name is not UTF-8")
	}
	h.ParentName = string(name)
	return h, true, nil
}

// readHeader reads both slots and returns the current one and its index.
func readHeader(r io.ReaderAt, fileSize int64) (Header, int, error) {
	if fileSize < l1Offset {
		return Header{}, 0, errf(diskerr.ErrTruncated, "file of %d bytes is shorter than the %d-byte header", fileSize, l1Offset)
	}
	b := make([]byte, l1Offset)
	if n, err := r.ReadAt(b, 0); n < len(b) {
		if err == nil || err == io.EOF {
			err = errf(diskerr.ErrTruncated, "header")
		}
		return Header{}, 0, err
	}
	best, bestSlot, found := Header{}, 0, false
	var firstErr error
	for i := range 2 {
		h, ok, err := parseSlot(b[i*slotSize : (i+1)*slotSize])
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if ok && (!found || h.Sequence > best.Sequence) {
			best, bestSlot, found = h, i, true
		}
	}
	if !found {
		if firstErr != nil {
			return Header{}, 0, firstErr
		}
		return Header{}, 0, errf(diskerr.ErrCorrupt, "no header slot is whole")
	}
	return best, bestSlot, nil
}

// Probe says whether b (the file's first bytes) is a layer file.
func Probe(b []byte) bool { return len(b) >= 8 && string(b[:8]) == Magic }
