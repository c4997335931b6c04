package manager

import (
	"context"
	"errors"

	"aerodisk/internal/catalog"
	"aerodisk/internal/formats"
	"aerodisk/internal/layer"
	"aerodisk/internal/overlay"
	"aerodisk/internal/sparse"
)

// PhaseCompact is the progress phase of CompactDisk.
const PhaseCompact = "compact"

// CompactResult is what CompactDisk reclaimed.
type CompactResult struct {
	// ReclaimedBytes is how much smaller the disk's files are.
	ReclaimedBytes int64
	// Files is how many files were compacted.
	Files int
}

// CompactDisk gives back the space disk id's files hold for nothing
// (docs/overlays.md and docs/aerospar.md, "Compaction"), in steps of the
// step budget with progress, its content unchanged at every moment:
//
//   - an AEROSPAR disk's freed slots are filled and the file cut (Aero's
//     browser reader accepts it afterwards), through this tab's writer if
//     it has one, else with the file held for writing (ErrInUse if another
//     tab writes it);
//   - each layer of a layered disk whose file is larger than its live
//     clusters is copied into a new layer file (pending until the commit
//     that names it; the old one goes to garbage). Layers a writer holds —
//     this tab's device, or another tab's — are left as they are (the
//     result counts only what was compacted).
//
// Other formats have nothing to compact.
func (m *Manager) CompactDisk(ctx context.Context, id string, progress func(Progress)) (CompactResult, error) {
	d, err := m.Get(id)
	if err != nil {
		return CompactResult{}, err
	}
	if d.Remote() {
		return CompactResult{}, &catalog.RemoteError{Name: d.Name}
	}
	if d.Layers != nil {
		return m.compactLayers(ctx, d, progress)
	}
	if formats.Format(d.Format) != formats.AeroSpar {
		return CompactResult{}, nil
	}
	return m.compactSparse(ctx, d, progress)
}

// compactSparse fills an AEROSPAR disk's freed slots in steps.
func (m *Manager) compactSparse(ctx context.Context, d *catalog.Disk, progress func(Progress)) (CompactResult, error) {
	report := func(moved, left int64, bs uint32) {
		if progress != nil {
			progress(Progress{Phase: PhaseCompact, ProcessedBytes: moved * int64(bs), TotalBytes: (moved + left) * int64(bs)})
		}
	}
	if dev := m.writerHere(d.ID); dev != nil {
		// This tab's device: the same steps as its background compaction,
		// the device held for each one.
		var moved int64
		for {
			if err := ctx.Err(); err != nil {
				return CompactResult{}, err
			}
			dev.mu.Lock()
			sd := dev.sparse
			if dev.closed || sd == nil {
				dev.mu.Unlock()
				break
			}
			done, n, left, err := sd.CompactStep(m.stepBudget())
			dev.mu.Unlock()
			if err != nil {
				return CompactResult{}, err
			}
			moved += n
			report(moved, left, sd.BlockSize())
			if done {
				break
			}
			m.yield()
		}
		// The file shrinks only at the end of a compaction: what it was is
		// not known here, so the result counts moved blocks' worth.
		return CompactResult{Files: btoi(moved > 0)}, nil
	}
	f, err := m.b.Open(d.FileName, true)
	if err != nil {
		return CompactResult{}, err
	}
	defer f.Close()
	before, err := f.Size()
	if err != nil {
		return CompactResult{}, err
	}
	sd, err := sparse.OpenPaced(f)
	if err != nil {
		return CompactResult{}, err
	}
	var moved int64
	for sd.CompactionPending() {
		if err := ctx.Err(); err != nil {
			sd.Close() // finishes at once: the file is never left with freed slots
			return CompactResult{}, err
		}
		_, n, left, err := sd.CompactStep(m.stepBudget())
		if err != nil {
			sd.Close()
			return CompactResult{}, err
		}
		moved += n
		report(moved, left, sd.BlockSize())
		m.yield()
	}
	if err := sd.Close(); err != nil {
		return CompactResult{}, err
	}
	after, err := f.Size()
	if err != nil {
		return CompactResult{}, err
	}
	if after == before {
		return CompactResult{}, nil
	}
	if err := m.recordFile(d.ID, f); err != nil {
		return CompactResult{}, err
	}
	return CompactResult{ReclaimedBytes: before - after, Files: 1}, nil
}

// compactLayers copies each of d's layers that holds unnamed clusters
// into a new file with the live ones.
func (m *Manager) compactLayers(ctx context.Context, d *catalog.Disk, progress func(Progress)) (CompactResult, error) {
	var res CompactResult
	held := map[string]bool{}
	if dev := m.writerHere(d.ID); dev != nil {
		dev.mu.Lock()
		if ld, ok := dev.dev.(*layeredDevice); ok {
			for _, n := range ld.v.names {
				held[n] = true
			}
		}
		dev.mu.Unlock()
	}
	for _, node := range d.Layers.Nodes {
		if held[node.FileName] {
			continue
		}
		reclaimed, err := m.compactLayer(ctx, d, node, progress)
		if errors.Is(err, ErrInUse) {
			continue // another tab writes it
		}
		if err != nil {
			return res, err
		}
		if reclaimed > 0 {
			res.ReclaimedBytes += reclaimed
			res.Files++
		}
	}
	return res, nil
}

// compactLayer copies one layer into a new file if it holds unnamed
// clusters, and swaps it in with one commit. It returns the bytes saved.
func (m *Manager) compactLayer(ctx context.Context, d *catalog.Disk, node catalog.Layer, progress func(Progress)) (int64, error) {
	// Held for writing (read through its own handle), so that no other
	// tab writes it while it is copied.
	src, err := m.b.Open(node.FileName, true)
	if err != nil {
		return 0, err
	}
	var from *layer.Layer
	closed := false
	closeSrc := func() {
		if !closed {
			closed = true
			if from != nil {
				from.Close()
			}
			src.Close()
		}
	}
	defer closeSrc()
	size, err := src.Size()
	if err != nil {
		return 0, err
	}
	if from, err = layer.Open(src, false); err != nil {
		return 0, err
	}
	live, err := from.LiveBytes()
	if err != nil {
		return 0, err
	}
	if size <= live {
		return 0, nil
	}
	name := layerFileName(d.ID, node.ID+"c"+m.newID()[:8])
	f, err := m.b.Create(name)
	if err != nil {
		return 0, err
	}
	err = func() error {
		h := from.Header()
		to, err := layer.Create(f, from.Size(), layer.Options{BlockSize: h.BlockSize, ParentName: h.ParentName, BaseSize: h.BaseSize})
		if err != nil {
			return err
		}
		if err := overlay.MergeUp(from, to, m.pacer(ctx, PhaseCompact, progress, from)); err != nil {
			to.Close()
			return err
		}
		if err := to.Close(); err != nil {
			return err
		}
		if err := f.Flush(); err != nil {
			return err
		}
		return f.Close()
	}()
	if err != nil {
		f.Discard()
		return 0, err
	}
	swapped := false
	err = m.update(func(c *catalog.Catalog) error {
		cur, err := c.Get(d.ID)
		if err != nil {
			return err
		}
		n := cur.Layers.Node(node.ID)
		if n == nil || n.FileName != node.FileName || cur.Pending != nil {
			return nil // changed meanwhile: the copy is dropped
		}
		n.FileName = name
		cur.Garbage = append(cur.Garbage, node.FileName)
		swapped = true
		return nil
	}, func() error {
		if swapped {
			return f.Finish()
		}
		return nil
	})
	if err != nil || !swapped {
		f.Discard()
		return 0, err
	}
	after, err := m.b.Open(name, false)
	if err != nil {
		return 0, err
	}
	newSize, err := after.Size()
	after.Close()
	if err != nil {
		return 0, err
	}
	closeSrc()
	m.removeGarbage(d.ID, []string{node.FileName})
	return size - newSize, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
