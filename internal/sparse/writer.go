package sparse

import (
	"aerodisk/internal/zero"
	"encoding/binary"
	"io/fs"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/storage"
)

// Writer streams a new image front to back (for conversion). Writes must
// come at non-decreasing offsets; skipped ranges read as zeros. It buffers at
// most one block (plus the table, 8 bytes per block), stores only blocks with
// a non-zero byte, and writes the header last, in Close, so an unfinished
// output is never a valid image. The result is byte-identical to Create
// followed by the same WriteAt calls on a Disk, and to what Aero's converter
// writes for the same content and block size (docs/aerospar.md).
type Writer struct {
	layout
	st    storage.Storage
	table []int64
	alloc int64
	pos   int64  // the next write may not start below this
	cur   int64  // block held in buf, -1 none
	buf   []byte // one block, allocated on first partial write
	done  bool
	err   error // sticky
}

// NewWriter starts an image of diskSize bytes on st, replacing any content.
// blockSize 0 means ChooseBlockSize(diskSize). Invalid sizes, and block sizes
// whose table Aero cannot read, are ErrBadSize, and st is left untouched.
func NewWriter(st storage.Storage, diskSize int64, blockSize uint32) (*Writer, error) {
	l, err := newLayout(diskSize, blockSize)
	if err != nil {
		return nil, err
	}
	if err := st.Truncate(0); err != nil {
		return nil, err
	}
	return &Writer{layout: l, st: st, table: make([]int64, l.entries), cur: -1}, nil
}

// WriteAt writes p at off, which must not be below the end of the previous
// write (ErrNotSequential) and with p must fit in the disk (ErrBadSize).
// Full, block-aligned pieces of p are written without copying.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	if w.done {
		return 0, fs.ErrClosed
	}
	if w.err != nil {
		return 0, w.err
	}
	if off < w.pos {
		return 0, ErrNotSequential
	}
	if int64(len(p)) > w.size-off {
		return 0, errf(diskerr.ErrBadSize, "write [%d,+%d) outside disk of %d bytes", off, len(p), w.size)
	}
	for n := int64(0); n < int64(len(p)); {
		pos := off + n
		b, in := pos/w.bs, pos%w.bs
		c := min(w.bs-in, int64(len(p))-n)
		chunk := p[n : n+c]
		if b != w.cur {
			if err := w.flushBuf(); err != nil {
				return int(n), err
			}
		}
		if c == w.bs { // a whole block (so in == 0 and nothing buffered for it)
			if !zero.Is(chunk) {
				if err := w.store(b, chunk); err != nil {
					return int(n), err
				}
			}
		} else {
			if w.cur < 0 {
				if w.buf == nil {
					w.buf = make([]byte, w.bs)
				} else {
					clear(w.buf)
				}
				w.cur = b
			}
			copy(w.buf[in:], chunk)
			if in+c == w.blockLen(b) {
				if err := w.flushBuf(); err != nil {
					return int(n), err
				}
			}
		}
		n += c
	}
	w.pos = off + int64(len(p))
	return len(p), nil
}

// flushBuf stores the buffered block if it holds a non-zero byte.
func (w *Writer) flushBuf() error {
	if w.cur < 0 {
		return nil
	}
	b := w.cur
	w.cur = -1
	if zero.Is(w.buf) {
		return nil
	}
	return w.store(b, w.buf)
}

// store appends block b's data at the next slot.
func (w *Writer) store(b int64, data []byte) error {
	phys := w.slotOff(w.alloc)
	if err := writeFull(w.st, data, phys); err != nil {
		w.err = err
		return err
	}
	w.table[b] = phys
	w.alloc++
	return nil
}

// AllocatedBlocks is the number of blocks stored so far.
func (w *Writer) AllocatedBlocks() int64 { return w.alloc }

// Close writes the buffered block, the table, flushes, then writes the
// header and flushes again. The image is valid only once Close succeeds.
func (w *Writer) Close() error {
	if w.done {
		return w.err
	}
	w.done = true
	if w.err != nil {
		return w.err
	}
	w.err = w.finish()
	return w.err
}

func (w *Writer) finish() error {
	if err := w.flushBuf(); err != nil {
		return err
	}
	buf := make([]byte, min(64<<10, 8*w.entries))
	for b := int64(0); b < w.entries; {
		chunk := buf[:min(int64(len(buf)), 8*(w.entries-b))]
		start := b
		for i := 0; i < len(chunk); i, b = i+8, b+1 {
			binary.LittleEndian.PutUint64(chunk[i:], uint64(w.table[b]))
		}
		if err := writeFull(w.st, chunk, w.entryOff(start)); err != nil {
			return err
		}
	}
	// The file ends at data_offset + the stored blocks, as Aero's converter
	// leaves it (AeroSparseWriter.finalize truncates to nextPhys): with no
	// block stored, the zeros between the table and data_offset.
	if err := w.st.Truncate(w.fileEnd(w.alloc)); err != nil {
		return err
	}
	if err := w.st.Flush(); err != nil {
		return err
	}
	h := w.header(w.alloc)
	if err := writeFull(w.st, h.marshal(), 0); err != nil {
		return err
	}
	return w.st.Flush()
}

// Abort abandons the image and truncates the storage to zero bytes.
func (w *Writer) Abort() error {
	w.done = true
	w.cur = -1
	if w.err == nil {
		w.err = fs.ErrClosed
	}
	return w.st.Truncate(0)
}
