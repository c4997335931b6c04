// Package blockdev is the block-device contract an emulator sees: 512-byte
// sector I/O on a disk of fixed size (docs/overlays.md, "Block devices").
// A Device is a disk file written in place (direct), a read-only view of
// any stored format, or a chain of copy-on-write layers (internal/overlay);
// the manager hands one out, the browser binds it. Platform-neutral.
package blockdev

import (
	"aerodisk/internal/diskerr"
)

// SectorSize is the unit of every offset and length.
const SectorSize = 512

// Device is a disk opened for block I/O. Offsets and lengths are multiples
// of SectorSize inside [0, Size()); CheckRange says so with a named error.
// ReadAt and WriteAt return the bytes done with the error, as io.ReaderAt
// does. Methods may be called from one goroutine at a time.
type Device interface {
	// Size is the disk's virtual size in bytes.
	Size() int64
	// ReadOnly: WriteAt and Discard fail with diskerr.ErrReadOnly.
	ReadOnly() bool
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt does not keep p after it returns.
	WriteAt(p []byte, off int64) (int, error)
	// Discard makes [off, off+n) read as zeros; whole blocks of the
	// underlying store are freed where it can.
	Discard(off, n int64) error
	// Flush makes every write before it survive a killed tab.
	Flush() error
	// Close flushes and releases the device.
	Close() error
}

// CheckRange is the rule of every Device method: off and n are multiples of
// SectorSize, n > 0, and [off, off+n) lies inside a disk of size bytes.
func CheckRange(off, n, size int64) error {
	switch {
	case off < 0 || n <= 0:
		return diskerr.New("", diskerr.ErrBadSize, "the range [%d, +%d) is empty or negative", off, n)
	case off%SectorSize != 0 || n%SectorSize != 0:
		return diskerr.New("", diskerr.ErrBadSize, "offset %d and length %d must be multiples of %d bytes", off, n, SectorSize)
	case off > size || n > size-off:
		return diskerr.New("", diskerr.ErrBadSize, "the range [%d, +%d) ends past the disk's %d bytes", off, n, size)
	}
	return nil
}
