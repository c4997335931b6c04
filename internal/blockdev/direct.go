package blockdev

import (
	"errors"
	"io"
	"io/fs"
	"sync"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
)

// The direct devices: a disk used as it is stored. A raw file and an
// AEROSPAR image are written in place; any other stored format (qcow2, VHD,
// DiskCopy, ISO, or any disk opened without writing) is read through its
// format reader and refuses writes.

// ZeroPiece is the size of the zero writes a raw Discard makes, and their
// alignment: bounded, so a discard of a whole disk never needs a buffer its
// size, and aligned to 4 MiB so that a store keeping data in 4 MiB chunks
// that cost nothing when all zero (IndexedDB, docs/idb.md) is handed whole
// chunks, which it frees without reading them first.
const ZeroPiece = 4 << 20

// errClosed is what a method of a closed device returns.
var errClosed = fs.ErrClosed

// readOnlyErr is the refusal of a write or discard on a read-only device.
func readOnlyErr() error {
	return diskerr.New("", diskerr.ErrReadOnly, "the disk is open read-only")
}

// Raw is a writable direct device over a raw disk file: byte off of the
// disk is byte off of st. Discard writes zeros.
type Raw struct {
	mu     sync.Mutex
	st     storage.Storage
	size   int64
	zeros  []byte // ZeroPiece zeros, made at the first discard and reused
	closed bool
}

var _ Device = (*Raw)(nil)

// NewRaw returns the device of the raw disk stored in st, whose size is
// size bytes (a positive multiple of SectorSize). It does not close st.
func NewRaw(st storage.Storage, size int64) (*Raw, error) {
	if size <= 0 || size%SectorSize != 0 {
		return nil, diskerr.New("raw", diskerr.ErrBadSize, "a raw disk of %d bytes is not a whole number of %d-byte sectors", size, SectorSize)
	}
	return &Raw{st: st, size: size}, nil
}

func (r *Raw) Size() int64    { return r.size }
func (r *Raw) ReadOnly() bool { return false }

func (r *Raw) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	n, err := readFull(r.st, p, off)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The file is shorter than the disk it holds.
		err = diskerr.New("raw", diskerr.ErrTruncated, "the disk file ends before byte %d of its %d bytes", off+int64(n), r.size)
	}
	return n, err
}

func (r *Raw) WriteAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	return writeFull(r.st, p, off)
}

// Discard writes zeros over the range, in ZeroPiece-aligned pieces from
// one buffer.
func (r *Raw) Discard(off, n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.check(off, n); err != nil {
		return err
	}
	if r.zeros == nil {
		r.zeros = make([]byte, ZeroPiece)
	}
	for end := off + n; off < end; {
		k := min(end-off, ZeroPiece-off%ZeroPiece)
		if _, err := writeFull(r.st, r.zeros[:k], off); err != nil {
			return err
		}
		off += k
	}
	return nil
}

func (r *Raw) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	return r.st.Flush()
}

// Close flushes; st stays open (it is the caller's).
func (r *Raw) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	r.zeros = nil
	return r.st.Flush()
}

func (r *Raw) check(off, n int64) error {
	if r.closed {
		return errClosed
	}
	return CheckRange(off, n, r.size)
}

// readFull reads all of p at off (formats.ReadFull's rule): a full read is
// never an error, even with io.EOF beside it; a short one always is.
func readFull(r io.ReaderAt, p []byte, off int64) (int, error) {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// writeFull writes all of p at off: a short write without an error is
// io.ErrShortWrite.
func writeFull(w io.WriterAt, p []byte, off int64) (int, error) {
	n, err := w.WriteAt(p, off)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// Sparse is a writable direct device over an AEROSPAR image opened for
// writing: writes allocate blocks, Discard frees whole blocks and zeroes
// the partial ones at its edges (sparse.Disk).
type Sparse struct {
	d *sparse.Disk
}

var _ Device = (*Sparse)(nil)

// NewSparse returns the device of d, which must be writable and a whole
// number of sectors long. Close closes d, not the storage under it.
func NewSparse(d *sparse.Disk) (*Sparse, error) {
	if !d.Writable() {
		return nil, diskerr.New("aerospar", diskerr.ErrReadOnly, "the AEROSPAR image was opened read-only")
	}
	if d.Size()%SectorSize != 0 {
		return nil, diskerr.New("aerospar", diskerr.ErrBadSize, "an AEROSPAR disk of %d bytes is not a whole number of %d-byte sectors", d.Size(), SectorSize)
	}
	return &Sparse{d: d}, nil
}

func (s *Sparse) Size() int64    { return s.d.Size() }
func (s *Sparse) ReadOnly() bool { return false }

func (s *Sparse) ReadAt(p []byte, off int64) (int, error) {
	if err := CheckRange(off, int64(len(p)), s.d.Size()); err != nil {
		return 0, err
	}
	return readFull(s.d, p, off)
}

func (s *Sparse) WriteAt(p []byte, off int64) (int, error) {
	if err := CheckRange(off, int64(len(p)), s.d.Size()); err != nil {
		return 0, err
	}
	return s.d.WriteAt(p, off)
}

func (s *Sparse) Discard(off, n int64) error {
	if err := CheckRange(off, n, s.d.Size()); err != nil {
		return err
	}
	return s.d.Discard(off, n)
}

func (s *Sparse) Flush() error { return s.d.Flush() }
func (s *Sparse) Close() error { return s.d.Close() }

// Image is what a read-only device reads: a stored format's reader
// (formats.Image has these methods), giving the disk's logical content.
// blockdev takes only this much of it so that the format readers may use
// this package.
type Image interface {
	io.ReaderAt
	Size() int64
	Close() error
}

// ReadOnly is a read-only device over any stored format's reader: reads
// give the disk's logical content (a qcow2's, a VHD's, through their
// backing chains), writes and discards fail with diskerr.ErrReadOnly.
type ReadOnly struct {
	mu     sync.Mutex
	img    Image
	closed bool
}

var _ Device = (*ReadOnly)(nil)

// NewReadOnly returns the device of img; Close closes img. A trailing
// partial sector of an image whose size is not a whole number of sectors
// cannot be addressed.
func NewReadOnly(img Image) *ReadOnly { return &ReadOnly{img: img} }

func (r *ReadOnly) Size() int64    { return r.img.Size() }
func (r *ReadOnly) ReadOnly() bool { return true }

func (r *ReadOnly) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, errClosed
	}
	if err := CheckRange(off, int64(len(p)), r.img.Size()); err != nil {
		return 0, err
	}
	return readFull(r.img, p, off)
}

// WriteAt checks the range first, like every method, then refuses.
func (r *ReadOnly) WriteAt(p []byte, off int64) (int, error) {
	if err := CheckRange(off, int64(len(p)), r.img.Size()); err != nil {
		return 0, err
	}
	return 0, readOnlyErr()
}

func (r *ReadOnly) Discard(off, n int64) error {
	if err := CheckRange(off, n, r.img.Size()); err != nil {
		return err
	}
	return readOnlyErr()
}

// Flush has nothing to make durable.
func (r *ReadOnly) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errClosed
	}
	return nil
}

func (r *ReadOnly) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.img.Close()
}
