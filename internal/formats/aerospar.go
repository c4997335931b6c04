package formats

import (
	"io"

	"aerodisk/internal/sparse"
)

// AEROSPAR: aerodisk's own sparse format (docs/aerospar.md), read through
// internal/sparse. Images are opened read-only here.

func probeAeroSpar(r io.ReaderAt, size int64) bool {
	b := readMagic(r, 0, len(sparse.Magic), size)
	return b != nil && string(b) == sparse.Magic
}

func openAeroSpar(o *opener, src Source) (Image, error) {
	d, err := sparse.OpenReader(src.R, src.Size)
	if err != nil {
		return nil, err
	}
	return &aeroSpar{d: d, info: Info{
		Format:      AeroSpar,
		VirtualSize: d.Size(),
		FileSize:    src.Size,
		ClusterSize: int64(d.BlockSize()),
		Details: map[string]any{
			"version":          sparse.Version,
			"allocated-blocks": d.AllocatedBlocks(),
			"mapped-blocks":    d.MappedBlocks(), // fewer after Aero's Rust discard_range
			"block-size":       d.BlockSize(),
		},
	}}, nil
}

type aeroSpar struct {
	d    *sparse.Disk
	info Info
}

func (a *aeroSpar) Size() int64  { return a.d.Size() }
func (a *aeroSpar) Info() Info   { return a.info }
func (a *aeroSpar) Close() error { return a.d.Close() }

// ReadAt has io.SectionReader semantics (sparse.Disk implements them).
func (a *aeroSpar) ReadAt(p []byte, off int64) (int, error) { return a.d.ReadAt(p, off) }

func (a *aeroSpar) Extent(off, n int64) (Extent, error) {
	n, err := checkExtentArgs(off, n, a.d.Size())
	if err != nil {
		return Extent{}, err
	}
	e, err := a.d.Extent(off, n)
	if err != nil {
		return Extent{}, err
	}
	k := Unallocated
	if e.Allocated {
		k = Data
	}
	return Extent{Off: e.Off, Len: e.Len, Kind: k}, nil
}
