package formats

import (
	"fmt"
	"io"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/layer"
)

// AEROLAYR: one copy-on-write layer over the file it names
// (docs/overlays.md), read through internal/layer. Its parent is opened
// like a qcow2 backing file, relative to the layer; a layer that names no
// parent (the browser keeps its chains in the catalog) reads as zeros
// where it has no block.

func probeAeroLayr(r io.ReaderAt, size int64) bool {
	for _, at := range []int64{0, 2048} { // either header slot
		if b := readMagic(r, at, len(layer.Magic), size); b != nil && layer.Probe(b) {
			return true
		}
	}
	return false
}

func openAeroLayr(o *opener, src Source) (Image, error) {
	l, err := layer.OpenReader(src.R, src.Size)
	if err != nil {
		return nil, err
	}
	h := l.Header()
	a := &aeroLayr{l: l}
	a.info = Info{Format: AeroLayr, VirtualSize: l.Size(), FileSize: src.Size, ClusterSize: l.BlockSize(),
		BackingFile: h.ParentName, Details: map[string]any{"version": layer.Version, "block-size": l.BlockSize()}}
	if h.Flags&layer.FlagDelta != 0 {
		a.info.Details["delta"] = true
		a.info.Details["base-crc32"] = fmt.Sprintf("%08x", h.BaseCRC32)
		a.info.Details["base-size"] = h.BaseSize
	}
	if h.ParentName != "" && h.Flags&layer.FlagDelta == 0 {
		b, err := o.openBacking(src, h.ParentName, "")
		if err != nil {
			return nil, err
		}
		if b.Size() != l.Size() {
			b.Close()
			return nil, diskerr.New(string(AeroLayr), ErrUnsupported, "the parent %q is %d bytes, the layer %d", h.ParentName, b.Size(), l.Size())
		}
		a.backing = b
		l.SetBelow(b)
		bi := b.Info()
		a.info.Backing = &bi
	}
	return a, nil
}

type aeroLayr struct {
	l       *layer.Layer
	backing Image
	info    Info
}

func (a *aeroLayr) Size() int64 { return a.l.Size() }
func (a *aeroLayr) Info() Info  { return a.info }
func (a *aeroLayr) Close() error {
	err := a.l.Close()
	if a.backing != nil {
		if e := a.backing.Close(); err == nil {
			err = e
		}
	}
	return err
}

// ReadAt has io.SectionReader semantics (layer.Layer implements them).
func (a *aeroLayr) ReadAt(p []byte, off int64) (int, error) { return a.l.ReadAt(p, off) }

// Extent: the layer's own blocks are Data or Zero; where it has none the
// parent decides, run by run.
func (a *aeroLayr) Extent(off, n int64) (Extent, error) {
	n, err := checkExtentArgs(off, n, a.l.Size())
	if err != nil {
		return Extent{}, err
	}
	bs := a.l.BlockSize()
	b := off / bs
	s, _, err := a.l.Lookup(b)
	if err != nil {
		return Extent{}, err
	}
	end := min(off+n, (b+1)*bs)
	for end < off+n {
		s2, _, err := a.l.Lookup(end / bs)
		if err != nil || s2 != s {
			break // an error is reported by the query that starts there
		}
		end = min(off+n, end+bs)
	}
	switch s {
	case layer.Data:
		return Extent{Off: off, Len: end - off, Kind: Data}, nil
	case layer.Zero:
		return Extent{Off: off, Len: end - off, Kind: Zero}, nil
	}
	return backingExtent(a.backing, off, end-off)
}
