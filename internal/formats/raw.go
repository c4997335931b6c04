package formats

import (
	"io"

	"aerodisk/internal/diskerr"
)

// Raw: the file is the disk. Its size must be a whole number of 512-byte
// sectors, like every hard disk's.

func openRaw(o *opener, src Source) (Image, error) {
	if src.Size == 0 || src.Size%512 != 0 {
		return nil, diskerr.New(string(Raw), ErrBadSize, "raw image size %d is not a non-zero multiple of 512 bytes", src.Size)
	}
	return &flat{r: src.R, size: src.Size, info: Info{Format: Raw, VirtualSize: src.Size, FileSize: src.Size}}, nil
}

// flat is a disk stored contiguously at base in a file (raw, ISO, DiskCopy
// data, fixed VHD). Every byte is Data: the file has no allocation map.
type flat struct {
	r    io.ReaderAt
	base int64
	size int64
	info Info
}

func (f *flat) Size() int64  { return f.size }
func (f *flat) Info() Info   { return f.info }
func (f *flat) Close() error { return nil }

func (f *flat) ReadAt(p []byte, off int64) (int, error) {
	q, eof := clampRead(p, off, f.size)
	if len(q) == 0 {
		return 0, eof
	}
	if n, err := readFull(f.r, q, f.base+off, f.info.Format, "data"); err != nil {
		return n, err
	}
	return len(q), eof
}

// HoleReporter is an io.ReaderAt that knows where it stores nothing: a
// sparse file, or IndexedDB's chunks, where an absent chunk reads as zeros.
// A flat image over one reports those holes as Zero extents, so conversion,
// export and checksums skip them unread.
type HoleReporter interface {
	// DataRun reports whether [off, off+n) starts with data or a hole, and
	// how long that run is (1 ≤ run ≤ n).
	DataRun(off, n int64) (data bool, run int64, err error)
}

func (f *flat) Extent(off, n int64) (Extent, error) {
	n, err := checkExtentArgs(off, n, f.size)
	if err != nil {
		return Extent{}, err
	}
	if h, ok := f.r.(HoleReporter); ok {
		data, run, err := h.DataRun(f.base+off, n)
		if err != nil {
			return Extent{}, err
		}
		if run > 0 && run <= n {
			kind := Data
			if !data {
				kind = Zero
			}
			return Extent{Off: off, Len: run, Kind: kind}, nil
		}
	}
	return Extent{Off: off, Len: n, Kind: Data}, nil
}
