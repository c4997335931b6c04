package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"aerodisk/internal/catalog"
	"aerodisk/internal/checksum"
	"aerodisk/internal/convert"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/formats"
	"aerodisk/internal/layer"
	"aerodisk/internal/overlay"
	"aerodisk/internal/sparse"
)

// Layered disks: overlays, checkpoints, deltas (docs/overlays.md). The
// layer files are made like imports (pending until a commit names them)
// and leave only through the record's garbage list, so a killed tab never
// loses a layer a record needs nor leaves one nobody can prove is garbage.

// layerFileName is a layer's file: its own stem (IndexedDB keys a file's
// chunks by stem), the disk's id first so a person can tell whose it is.
func layerFileName(diskID, layerID string) string {
	return diskID + "-" + layerID + ".aerolayr"
}

// isLayerFile reports whether name is a layer file's name.
func isLayerFile(name string) bool { return strings.HasSuffix(name, ".aerolayr") }

// chainLen counts the layers under and including layer top of d, its
// parent disks' layers included.
func chainLen(cat *catalog.Catalog, d *catalog.Disk, top string) (int, error) {
	n := 0
	for depth := 0; d != nil; depth++ {
		if depth > overlay.MaxChain {
			return 0, diskerr.New("", diskerr.ErrBackingCycle, "the overlays of %q loop", d.Name)
		}
		if d.Layers != nil {
			chain, ok := d.Layers.Chain(top)
			if !ok {
				return 0, diskerr.New("", diskerr.ErrCorrupt, "the layers of %q do not form a chain", d.Name)
			}
			n += len(chain)
		}
		if d.ParentID == "" {
			break
		}
		p, err := cat.Get(d.ParentID)
		if err != nil {
			return 0, diskerr.New("", diskerr.ErrBackingNotFound, "the base disk of %q is gone", d.Name)
		}
		d = p
		if d.Layers != nil {
			top = d.Layers.Head
		}
	}
	return n, nil
}

// headOf is the layer a disk reads through now ("" its base).
func headOf(d *catalog.Disk) string {
	if d.Layers == nil {
		return ""
	}
	return d.Layers.Head
}

// view is a layered disk as a formats.Image: the layers of one chain over
// the disk's base.
type view struct {
	layers []*layer.Layer // bottom first
	files  []File
	names  []string // the layers' file names
	rw     []bool   // which files are open for writing
	base   formats.Image
	info   formats.Info
}

// openView opens d as of layer top ("" its base alone). The top layer is
// writable when writable is set.
func (m *Manager) openView(cat *catalog.Catalog, d *catalog.Disk, top string, writable bool) (*view, error) {
	v := &view{}
	var err error
	if d.ParentID != "" {
		p, perr := cat.Get(d.ParentID)
		if perr != nil {
			return nil, diskerr.New("", diskerr.ErrBackingNotFound, "the base disk of %q is gone", d.Name)
		}
		if n, err := chainLen(cat, d, top); err != nil {
			return nil, err
		} else if n > overlay.MaxChain {
			return nil, diskerr.New("", diskerr.ErrUnsupported, "%q has %d layers (at most %d)", d.Name, n, overlay.MaxChain)
		}
		v.base, err = m.openImage(cat, p)
	} else {
		v.base, err = m.openFileImage(cat, d)
	}
	if err != nil {
		return nil, err
	}
	v.info = v.base.Info()
	chain, ok := d.Layers.Chain(top)
	if !ok {
		v.Close()
		return nil, diskerr.New("", diskerr.ErrCorrupt, "the layers of %q do not form a chain", d.Name)
	}
	var below io.ReaderAt = v.base
	for i := len(chain) - 1; i >= 0; i-- {
		n := chain[i]
		w := writable && i == 0
		f, err := m.b.Open(n.FileName, w)
		if err != nil {
			v.Close()
			return nil, err
		}
		v.files = append(v.files, f)
		v.names = append(v.names, n.FileName)
		v.rw = append(v.rw, w)
		l, err := layer.Open(f, w)
		if err != nil {
			v.Close()
			return nil, err
		}
		if l.Size() != v.base.Size() {
			v.Close()
			return nil, diskerr.New("aerolayr", diskerr.ErrCorrupt, "layer %s is %d bytes over a base of %d", n.ID, l.Size(), v.base.Size())
		}
		l.SetBelow(below)
		v.layers = append(v.layers, l)
		below = l
	}
	return v, nil
}

func (v *view) top() io.ReaderAt {
	if len(v.layers) == 0 {
		return v.base
	}
	return v.layers[len(v.layers)-1]
}

// below is what layer i of the view reads through to.
func (v *view) below(i int) io.ReaderAt {
	if i == 0 {
		return v.base
	}
	return v.layers[i-1]
}

// layerNamed is the index of the layer stored in fileName, or -1.
func (v *view) layerNamed(fileName string) int { return slices.Index(v.names, fileName) }

// makeWritable reopens layer i (not the top) for writing, in place: a
// merge writes into a frozen layer the view reads through. A file cannot
// be held twice, so the read-only handle goes first; if the writable open
// is refused, the read-only one is taken again.
func (m *Manager) makeWritable(v *view, i int) error {
	if v.rw[i] {
		return nil
	}
	reopen := func(w bool) error {
		f, err := m.b.Open(v.names[i], w)
		if err != nil {
			return err
		}
		l, err := layer.Open(f, w)
		if err != nil {
			f.Close()
			return err
		}
		l.SetBelow(v.below(i))
		v.layers[i], v.files[i], v.rw[i] = l, f, w
		if i+1 < len(v.layers) {
			v.layers[i+1].SetBelow(l)
		}
		return nil
	}
	if err := errors.Join(v.layers[i].Close(), v.files[i].Close()); err != nil {
		return err
	}
	if err := reopen(true); err != nil {
		return errors.Join(err, reopen(false))
	}
	return nil
}

// dropLayer takes layer i (not the top), merged into the one above it,
// out of the view and closes its file, so that it can be removed.
func (v *view) dropLayer(i int) error {
	v.layers[i+1].SetBelow(v.below(i))
	err := errors.Join(v.layers[i].Close(), v.files[i].Close())
	v.layers = slices.Delete(v.layers, i, i+1)
	v.files = slices.Delete(v.files, i, i+1)
	v.names = slices.Delete(v.names, i, i+1)
	v.rw = slices.Delete(v.rw, i, i+1)
	return err
}

func (v *view) Size() int64                             { return v.base.Size() }
func (v *view) Info() formats.Info                      { return v.info }
func (v *view) ReadAt(p []byte, off int64) (int, error) { return v.top().ReadAt(p, off) }

// Extent: the topmost layer with the block decides; where none has it, the
// base does.
func (v *view) Extent(off, n int64) (formats.Extent, error) {
	if len(v.layers) == 0 {
		return v.base.Extent(off, n)
	}
	if off < 0 || off >= v.Size() || n <= 0 {
		return formats.Extent{}, diskerr.New("", diskerr.ErrBadSize, "extent query [%d,+%d) outside disk of %d bytes", off, n, v.Size())
	}
	n = min(n, v.Size()-off)
	bs := v.layers[0].BlockSize()
	state := func(b int64) (layer.State, error) {
		for i := len(v.layers) - 1; i >= 0; i-- {
			s, _, err := v.layers[i].Lookup(b)
			if err != nil || s != layer.Absent {
				return s, err
			}
		}
		return layer.Absent, nil
	}
	b := off / bs
	s, err := state(b)
	if err != nil {
		return formats.Extent{}, err
	}
	end := min(off+n, (b+1)*bs)
	for end < off+n {
		s2, err := state(end / bs)
		if err != nil || s2 != s {
			break
		}
		end = min(off+n, end+bs)
	}
	switch s {
	case layer.Data:
		return formats.Extent{Off: off, Len: end - off, Kind: formats.Data}, nil
	case layer.Zero:
		return formats.Extent{Off: off, Len: end - off, Kind: formats.Zero}, nil
	}
	return v.base.Extent(off, end-off)
}

func (v *view) Close() error {
	var err error
	for _, l := range v.layers {
		err = errors.Join(err, l.Close())
	}
	for _, f := range v.files {
		err = errors.Join(err, f.Close())
	}
	if v.base != nil {
		err = errors.Join(err, v.base.Close())
	}
	return err
}

// newLayerFile makes an empty layer file, pending until the caller's
// commit names it (then Finish) or fails (then Discard).
func (m *Manager) newLayerFile(fileName string, size, blockSize int64) (NewFile, error) {
	f, err := m.b.Create(fileName)
	if err != nil {
		return nil, err
	}
	l, err := layer.Create(f, size, layer.Options{BlockSize: uint32(blockSize)})
	if err == nil {
		err = l.Close()
	}
	if err == nil {
		err = f.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		f.Discard()
		return nil, err
	}
	return f, nil
}

// Checkpoint is a checkpoint as the API returns it.
type Checkpoint = catalog.Checkpoint

// addHead starts a new empty head over layer parent ("" the base) for d,
// in one commit that also runs change (under the catalog lock, on the
// current record). Layers that nothing needs any more go to garbage.
func (m *Manager) addHead(id, parent string, finishing bool, change func(c *catalog.Catalog, d *catalog.Disk) error) (*catalog.Disk, error) {
	return m.addHeadHeld(id, parent, finishing, m.holdNoWriter, change)
}

// addHeadHeld is addHead with hold, which runs before anything changes;
// the function it returns runs right after the commit (committed says
// whether it happened), before the old layers' files are removed: a
// device switches to the new head there, or the proof that no other tab
// writes the old head is let go.
func (m *Manager) addHeadHeld(id, parent string, finishing bool, hold func(d *catalog.Disk) (func(committed *catalog.Disk) error, error), change func(c *catalog.Catalog, d *catalog.Disk) error) (*catalog.Disk, error) {
	// The work before the commit starts from this tab's last view of the
	// record (no catalog read); the commit checks that the disk's top, its
	// size and its block size are still those, else it is done again from
	// the catalog as it is.
	d, err := m.recent(id)
	for attempt := 0; ; attempt++ {
		if err != nil {
			return nil, err
		}
		out, opErr := m.addHeadOnce(d, parent, finishing, hold, change)
		// A top file another tab has removed since is stale too.
		if attempt > 0 || !(errors.Is(opErr, errStaleView) || errors.Is(opErr, fs.ErrNotExist)) {
			return out, opErr
		}
		d, err = m.Get(id)
	}
}

// errStaleView: the record an operation prepared from was changed before
// its commit (by another tab).
var errStaleView = diskerr.New("", ErrInUse, "the disk was changed in another tab meanwhile: try again")

// topFile is the file disk d's writes go to: its head layer's, or its own.
func topFile(d *catalog.Disk) string {
	if n := d.Layers.Node(headOf(d)); n != nil {
		return n.FileName
	}
	return d.FileName
}

func (m *Manager) addHeadOnce(d *catalog.Disk, parent string, finishing bool, hold func(d *catalog.Disk) (func(committed *catalog.Disk) error, error), change func(c *catalog.Catalog, d *catalog.Disk) error) (*catalog.Disk, error) {
	id := d.ID
	if d.Remote() {
		return nil, &catalog.RemoteError{Name: d.Name}
	}
	bs := int64(layer.DefaultBlockSize)
	if d.Layers != nil {
		bs = d.Layers.BlockSize
	}
	lid := "l" + strings.ReplaceAll(m.newID(), "-", "")[:12]
	name := layerFileName(d.ID, lid)
	// The new layer file is made while the disk is held and the catalog
	// read: each is a few round trips to the browser's storage. (The hold
	// comes before the catalog lock: a device's first write takes the lock
	// while holding the device.)
	type made struct {
		f   NewFile
		err error
	}
	madeCh := make(chan made, 1)
	go func() {
		f, err := m.newLayerFile(name, d.SizeBytes, bs)
		madeCh <- made{f, err}
	}()
	var f NewFile
	fileDone := false
	takeFile := func() error {
		if !fileDone {
			r := <-madeCh
			f, fileDone = r.f, true
			return r.err
		}
		return nil
	}
	discard := func() {
		if takeFile() == nil && f != nil {
			f.Discard()
		}
	}
	// The hold, too, overlaps the catalog read when it is only a file held
	// read-only; one that holds a device of this tab comes first.
	after := func(*catalog.Disk) error { return nil }
	var heldCh chan error
	if hold != nil && m.writerHere(id) == nil {
		heldCh = make(chan error, 1)
		go func() {
			if m.writerHere(id) != nil {
				heldCh <- errStaleView // a device opened meanwhile: hold it first
				return
			}
			a, err := hold(d)
			if err == nil {
				after = a
			}
			heldCh <- err
		}()
	} else if hold != nil {
		var err error
		if after, err = hold(d); err != nil {
			discard()
			return nil, err
		}
	}
	takeHold := func() error {
		if heldCh == nil {
			return nil
		}
		err := <-heldCh
		heldCh = nil
		return err
	}
	var out *catalog.Disk
	var drop []string
	err := m.update(func(c *catalog.Catalog) error {
		if err := errors.Join(takeFile(), takeHold()); err != nil {
			return err
		}
		cur, err := c.Get(id)
		if err != nil {
			return err
		}
		if topFile(cur) != topFile(d) || cur.SizeBytes != d.SizeBytes || (cur.Layers != nil && cur.Layers.BlockSize != bs) {
			return errStaleView
		}
		if cur.Pending != nil && !finishing {
			return &MergePendingError{Name: cur.Name}
		}
		if cur.Layers == nil {
			cur.Layers = &catalog.Layers{BlockSize: bs}
		}
		if err := change(c, cur); err != nil {
			return err
		}
		p := parent
		if p == "\x00head" {
			p = cur.Layers.Head
		}
		cur.Layers.Nodes = append(cur.Layers.Nodes, catalog.Layer{ID: lid, FileName: name, Parent: p, CreatedAtMs: m.nowMs()})
		cur.Layers.Head = lid
		if n, err := chainLen(c, cur, lid); err != nil {
			return err
		} else if n > overlay.MaxChain {
			return diskerr.New("", catalog.ErrInvalid, "%q would have %d layers (at most %d): delete a checkpoint first", cur.Name, n, overlay.MaxChain)
		}
		drop = collectGarbage(cur)
		cur.LastUsedAtMs = m.nowMs()
		out = cur
		return nil
	}, func() error { return f.Finish() })
	if herr := takeHold(); err == nil {
		err = herr // the update failed before it waited for the hold
	}
	if err != nil {
		discard()
		after(nil)
		return nil, err
	}
	if err := after(out); err != nil {
		return out, err
	}
	m.removeGarbage(id, drop)
	return out, nil
}

// collectGarbage moves the layers d no longer needs into d.Garbage: those
// neither on the head's chain nor on a checkpoint's. It returns their files.
func collectGarbage(d *catalog.Disk) []string {
	if d.Layers == nil {
		return nil
	}
	live := map[string]bool{}
	mark := func(id string) {
		chain, _ := d.Layers.Chain(id)
		for _, n := range chain {
			live[n.ID] = true
		}
	}
	mark(d.Layers.Head)
	for _, cp := range d.Checkpoints {
		mark(cp.Layer)
	}
	var drop []string
	kept := d.Layers.Nodes[:0]
	for _, n := range d.Layers.Nodes {
		if live[n.ID] {
			kept = append(kept, n)
		} else {
			drop = append(drop, n.FileName)
		}
	}
	d.Layers.Nodes = kept
	d.Garbage = append(d.Garbage, drop...)
	return drop
}

// removeGarbage removes files the committed record of disk id lists as
// garbage; the next commit forgets those it removed. A failure leaves them listed for
// the next open.
func (m *Manager) removeGarbage(id string, files []string) {
	if len(files) == 0 {
		return
	}
	for _, f := range files {
		if err := m.b.Remove(f); err == nil {
			m.mu.Lock()
			if m.gone == nil {
				m.gone = map[string]bool{}
			}
			m.gone[f] = true
			m.mu.Unlock()
		}
	}
}

// dropGone takes the files this tab has removed out of c's garbage lists
// and returns them.
func (m *Manager) dropGone(c *catalog.Catalog) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.gone) == 0 {
		return nil
	}
	var out []string
	for _, d := range c.Disks {
		d.Garbage = slices.DeleteFunc(d.Garbage, func(f string) bool {
			if m.gone[f] {
				out = append(out, f)
				return true
			}
			return false
		})
	}
	return out
}

// CreateOverlay makes a new disk whose unwritten blocks read through to
// disk baseID; its writes land in its own layer. The base stays as it is
// while it has overlays.
func (m *Manager) CreateOverlay(baseID, name string) (*catalog.Disk, error) {
	return m.createOverlay(baseID, name, false)
}

// createOverlay is CreateOverlay; asDefault makes the default overlay,
// unless one exists (then it is returned: two tabs asking at once get one).
func (m *Manager) createOverlay(baseID, name string, asDefault bool) (*catalog.Disk, error) {
	base, err := m.Get(baseID)
	if err != nil {
		return nil, err
	}
	if base.Remote() {
		return nil, &catalog.RemoteError{Name: base.Name}
	}
	if base.Pending != nil {
		return nil, &MergePendingError{Name: base.Name}
	}
	if err := m.refuseWriting(baseID); err != nil {
		return nil, err
	}
	if strings.TrimSpace(name) == "" {
		name = base.Name + " (overlay)"
	}
	d := m.newDisk(name, base.Kind, formats.Format(base.Format))
	d.FileName = ""
	d.Format = "overlay"
	d.SizeBytes = base.SizeBytes
	d.ParentID = baseID
	lid := "l" + strings.ReplaceAll(m.newID(), "-", "")[:12]
	file := layerFileName(d.ID, lid)
	f, err := m.newLayerFile(file, d.SizeBytes, layer.DefaultBlockSize)
	if err != nil {
		return nil, err
	}
	d.Layers = &catalog.Layers{BlockSize: layer.DefaultBlockSize, Head: lid,
		Nodes: []catalog.Layer{{ID: lid, FileName: file, CreatedAtMs: m.nowMs()}}}
	d.FileSizeBytes = layer.DefaultBlockSize
	d.StoredBytes = layer.DefaultBlockSize
	if base.Checksum != nil && !base.Checksum.Stale {
		c := *base.Checksum
		d.Checksum = &c // an empty overlay reads as its base
	}
	d.DefaultOverlay = asDefault
	var existing *catalog.Disk
	err = m.update(func(c *catalog.Catalog) error {
		if _, err := c.Get(baseID); err != nil {
			return err
		}
		if asDefault {
			for _, o := range overlaysOf(c, baseID) {
				if o.DefaultOverlay {
					existing = o
					return errExists
				}
			}
		}
		if n, err := chainLen(c, d, lid); err != nil {
			return err
		} else if n > overlay.MaxChain {
			return diskerr.New("", catalog.ErrInvalid, "the overlay would have %d layers (at most %d)", n, overlay.MaxChain)
		}
		return c.Add(d)
	}, f.Finish)
	if err != nil {
		f.Discard()
		if existing != nil {
			return existing, nil
		}
		return nil, err
	}
	return d, nil
}

// errExists stops a commit that found its work already done.
var errExists = errors.New("exists")

// overlaysOf lists the disks that sit on disk id.
func overlaysOf(c *catalog.Catalog, id string) []*catalog.Disk {
	var out []*catalog.Disk
	for _, d := range c.List() {
		if d.ParentID == id {
			out = append(out, d)
		}
	}
	return out
}

// refuseIfBase: a disk with overlays is immutable.
func refuseIfBase(c *catalog.Catalog, d *catalog.Disk, what string) error {
	ov := overlaysOf(c, d.ID)
	if len(ov) == 0 {
		return nil
	}
	names := make([]string, len(ov))
	for i, o := range ov {
		names[i] = o.Name
	}
	return &BaseError{Name: d.Name, Refused: what, Overlays: names}
}

// TakeCheckpoint freezes disk id's current state under name, in O(1): the
// head (or the base) becomes read-only, a new empty head starts on it.
func (m *Manager) TakeCheckpoint(id, name string) (Checkpoint, error) {
	if strings.TrimSpace(name) == "" {
		name = "Checkpoint"
	}
	cp := Checkpoint{ID: "c" + strings.ReplaceAll(m.newID(), "-", "")[:12], Name: strings.TrimSpace(name), CreatedAtMs: m.nowMs()}
	_, err := m.addHeadHeld(id, "\x00head", false, m.holdForCheckpoint, func(c *catalog.Catalog, d *catalog.Disk) error {
		if err := refuseIfBase(c, d, "no checkpoint"); err != nil {
			return err
		}
		cp.Layer = d.Layers.Head
		d.Checkpoints = append(d.Checkpoints, cp)
		return nil
	})
	return cp, err
}

// ListCheckpoints returns disk id's checkpoints, oldest first.
func (m *Manager) ListCheckpoints(id string) ([]Checkpoint, error) {
	d, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	return append([]Checkpoint{}, d.Checkpoints...), nil
}

func findCheckpoint(d *catalog.Disk, cpID string) (int, error) {
	for i, cp := range d.Checkpoints {
		if cp.ID == cpID {
			return i, nil
		}
	}
	return -1, diskerr.New("", catalog.ErrNotFound, "“%s” has no checkpoint %q", d.Name, cpID)
}

// RestoreCheckpoint makes disk id read as it did at checkpoint cpID, in
// O(1): a new empty head on the checkpoint's layer. The writes since are
// dropped; every checkpoint stays.
func (m *Manager) RestoreCheckpoint(id, cpID string) (*catalog.Disk, error) {
	d, err := m.recent(id)
	if err != nil {
		return nil, err
	}
	i, err := findCheckpoint(d, cpID)
	if err != nil {
		// Another tab may have taken it since this tab's view.
		if d, err = m.Get(id); err != nil {
			return nil, err
		}
		if i, err = findCheckpoint(d, cpID); err != nil {
			return nil, err
		}
	}
	return m.addHead(id, d.Checkpoints[i].Layer, false, func(c *catalog.Catalog, cur *catalog.Disk) error {
		if err := refuseIfBase(c, cur, "it cannot be restored"); err != nil {
			return err
		}
		if _, err := findCheckpoint(cur, cpID); err != nil {
			return err
		}
		return nil
	})
}

// RevertDisk drops every write on top of the disk's base, in O(1): an
// overlay reads as its base disk again. Checkpoints stay.
func (m *Manager) RevertDisk(id string) (*catalog.Disk, error) {
	d, err := m.recent(id)
	if err == nil && d.Layers == nil {
		d, err = m.Get(id) // another tab may have given it layers since
	}
	if err != nil {
		return nil, err
	}
	if d.Layers == nil {
		return nil, diskerr.New("", catalog.ErrInvalid, "“%s” has no writes kept apart to drop (it is not an overlay and has no checkpoint)", d.Name)
	}
	return m.addHead(id, "", false, func(c *catalog.Catalog, cur *catalog.Disk) error {
		return refuseIfBase(c, cur, "it cannot be reverted")
	})
}

// DeleteCheckpoint forgets checkpoint cpID. Its layer, if the disk still
// reads through it, is merged up into the one layer above it (copying only
// what that layer lacks, so nothing reads differently at any moment); a
// killed tab's merge is redone at the next open.
func (m *Manager) DeleteCheckpoint(ctx context.Context, id, cpID string, progress func(Progress)) error {
	// A merge that could not start now (another tab writes the disk and
	// holds its layers) is refused before anything is recorded.
	if cat, err := m.read(); err != nil {
		return err
	} else if d, err := cat.Get(id); err != nil {
		return err
	} else if merge, _, err := forgetCheckpoint(d, cpID, 0); err != nil {
		return err
	} else if merge != nil && m.writerHere(id) == nil {
		from, into := d.Layers.Node(merge.From), d.Layers.Node(merge.Into)
		if err := m.withLayers([]string{from.FileName, into.FileName}, 1, func([]*layer.Layer) error { return nil }); err != nil {
			return err
		}
	}
	var merge *catalog.PendingOp
	var drop []string
	err := m.update(func(c *catalog.Catalog) error {
		d, err := c.Get(id)
		if err != nil {
			return err
		}
		merge, drop, err = forgetCheckpoint(d, cpID, m.nowMs())
		return err
	}, nil)
	if err != nil {
		return err
	}
	m.removeGarbage(id, drop)
	if merge == nil {
		return nil
	}
	return m.finishMerge(ctx, id, progress)
}

// forgetCheckpoint removes checkpoint cpID from d's record, collects the
// layers nothing reads any more (returned: files to remove) and, when the
// disk still reads through the checkpoint's layer and nothing else names
// it, records (and returns) the merge of that layer into its one child.
func forgetCheckpoint(d *catalog.Disk, cpID string, nowMs int64) (merge *catalog.PendingOp, drop []string, err error) {
	if d.Pending != nil {
		return nil, nil, &MergePendingError{Name: d.Name}
	}
	i, err := findCheckpoint(d, cpID)
	if err != nil {
		return nil, nil, err
	}
	lid := d.Checkpoints[i].Layer
	d.Checkpoints = slices.Delete(d.Checkpoints, i, i+1)
	drop = collectGarbage(d)
	if lid == "" || d.Layers.Node(lid) == nil || lid == d.Layers.Head {
		return nil, drop, nil
	}
	for _, cp := range d.Checkpoints {
		if cp.Layer == lid {
			return nil, drop, nil // another checkpoint names it
		}
	}
	if kids := d.Layers.Children(lid); len(kids) == 1 {
		d.Pending = &catalog.PendingOp{Op: "merge-up", From: lid, Into: kids[0], StartedAtMs: nowMs}
	}
	return d.Pending, drop, nil
}

// finishMerge runs (or redoes) disk id's pending merge and commits it.
func (m *Manager) finishMerge(ctx context.Context, id string, progress func(Progress)) error {
	cat, err := m.read()
	if err != nil {
		return err
	}
	d, err := cat.Get(id)
	if err != nil || d.Pending == nil {
		return err
	}
	op := *d.Pending
	switch op.Op {
	case "merge-up":
		from, into := d.Layers.Node(op.From), d.Layers.Node(op.Into)
		if from == nil || into == nil || into.Parent != from.ID {
			return diskerr.New("", diskerr.ErrCorrupt, "the pending merge of “%s” names layers it does not have", d.Name)
		}
		if err := m.mergeUp(ctx, id, d.Name, from.FileName, into.FileName, progress); err != nil {
			return err
		}
		var drop []string
		err = m.update(func(c *catalog.Catalog) error {
			cur, err := c.Get(id)
			if err != nil {
				return err
			}
			if cur.Pending == nil || *cur.Pending != op {
				return nil
			}
			n := cur.Layers.Node(op.Into)
			n.Parent = from.Parent
			cur.Pending = nil
			drop = collectGarbage(cur)
			return nil
		}, nil)
		if err != nil {
			return err
		}
		m.releaseMerged(id, from.FileName)
		m.removeGarbage(id, drop)
		return nil
	case "commit":
		return m.runCommit(ctx, id, progress)
	}
	return diskerr.New("", diskerr.ErrUnsupported, "“%s” has a pending %q this version cannot finish", d.Name, op.Op)
}

// mergeUp copies layer file from's blocks into layer file into (its one
// child). Whole blocks are copied, so neither layer needs what is below
// it. When this tab writes the disk, its device holds both files (into
// perhaps as a head it wrote before a checkpoint): the merge goes through
// the device's own layers, holding the device between yields only, so
// block requests wait at most one step.
func (m *Manager) mergeUp(ctx context.Context, id, name, from, into string, progress func(Progress)) error {
	if dev := m.writerHere(id); dev != nil {
		dev.mu.Lock()
		defer dev.mu.Unlock()
		ld, ok := dev.dev.(*layeredDevice)
		if !ok || dev.closed {
			return diskerr.New("", ErrInUse, "“%s” is open for writing", name)
		}
		if i, j := ld.v.layerNamed(from), ld.v.layerNamed(into); i >= 0 && j >= 0 {
			if err := m.makeWritable(ld.v, j); err != nil {
				return err
			}
			p := m.pacer(ctx, "merge", progress, ld.v.layers[i])
			yield := p.Yield
			p.Yield = func() {
				dev.mu.Unlock()
				if yield != nil {
					yield()
				}
				dev.mu.Lock()
			}
			// The device may have switched heads while unlocked, which
			// appends to its view: the two layers stay where they are.
			return overlay.MergeUp(ld.v.layers[i], ld.v.layers[j], p)
		}
	}
	return m.withLayers([]string{from, into}, 1, func(ls []*layer.Layer) error {
		return overlay.MergeUp(ls[0], ls[1], m.pacer(ctx, "merge", progress, ls[0]))
	})
}

// releaseMerged takes the merged layer file from out of this tab's writer's
// view, so that it can be removed and nothing reads through it.
func (m *Manager) releaseMerged(id, from string) {
	dev := m.writerHere(id)
	if dev == nil {
		return
	}
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if ld, ok := dev.dev.(*layeredDevice); ok && !dev.closed {
		if i := ld.v.layerNamed(from); i >= 0 && i+1 < len(ld.v.layers) {
			ld.v.dropLayer(i)
		}
	}
}

// pacer is the Pacer of a background merge: 5 ms steps with progress in
// bytes of blocks.
func (m *Manager) pacer(ctx context.Context, phase string, progress func(Progress), l *layer.Layer) *overlay.Pacer {
	p := &overlay.Pacer{Ctx: ctx, Yield: m.Yield, Budget: m.StepBudget}
	if progress != nil {
		bs := l.BlockSize()
		p.Progress = func(done, total int64) {
			progress(Progress{Phase: phase, ProcessedBytes: done * bs, TotalBytes: total * bs})
		}
	}
	return p
}

// CommitOverlay copies overlay id's writes into its base disk (raw or
// AEROSPAR, written in place) and empties the overlay. The overlay's
// layers stay on top until the end, so both disks read as before at every
// moment; a killed tab's commit is redone at the next open.
func (m *Manager) CommitOverlay(ctx context.Context, id string, progress func(Progress)) error {
	err := m.update(func(c *catalog.Catalog) error {
		d, err := c.Get(id)
		if err != nil {
			return err
		}
		if d.ParentID == "" {
			return diskerr.New("", catalog.ErrInvalid, "“%s” is not an overlay", d.Name)
		}
		if d.Pending != nil {
			return &MergePendingError{Name: d.Name}
		}
		if len(d.Checkpoints) > 0 {
			return diskerr.New("", catalog.ErrInvalid, "“%s” has checkpoints, which a commit would invalidate: delete them first", d.Name)
		}
		base, err := c.Get(d.ParentID)
		if err != nil {
			return err
		}
		if base.Layers != nil || (base.Format != string(formats.Raw) && base.Format != string(formats.AeroSpar)) || base.Kind == "cd" {
			return diskerr.New("", catalog.ErrInvalid, "the base “%s” is a %s %s; a commit writes into a raw or AEROSPAR hard disk (flatten the overlay instead)", base.Name, base.Format, base.Kind)
		}
		if others := overlaysOf(c, base.ID); len(others) > 1 {
			return refuseIfBase(c, base, "the commit would change the other overlays")
		}
		d.Pending = &catalog.PendingOp{Op: "commit", StartedAtMs: m.nowMs()}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	return m.runCommit(ctx, id, progress)
}

func (m *Manager) runCommit(ctx context.Context, id string, progress func(Progress)) error {
	cat, err := m.read()
	if err != nil {
		return err
	}
	d, err := cat.Get(id)
	if err != nil {
		return err
	}
	base, err := cat.Get(d.ParentID)
	if err != nil {
		return err
	}
	// No writer may come while the overlay's writes are copied: they would
	// be dropped with its layers at the end.
	after, err := m.holdNoWriter(d)
	if err != nil {
		return err
	}
	held := func(*catalog.Disk) (func(*catalog.Disk) error, error) { return after, nil }
	chain, ok := d.Layers.Chain(d.Layers.Head)
	if !ok {
		after(nil)
		return diskerr.New("", diskerr.ErrCorrupt, "the layers of “%s” do not form a chain", d.Name)
	}
	names := make([]string, len(chain))
	for i, n := range chain {
		names[len(chain)-1-i] = n.FileName // bottom first: an upper layer's block wins
	}
	err = func() error {
		dst, closeDst, err := m.openTarget(base)
		if err != nil {
			return err
		}
		defer closeDst()
		return m.withLayers(names, -1, func(ls []*layer.Layer) error {
			for _, l := range ls {
				if err := overlay.CommitDown(l, dst, m.pacer(ctx, "commit", progress, l)); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	if err != nil {
		after(nil)
		return err
	}
	_, err = m.addHeadHeld(id, "", true, held, func(c *catalog.Catalog, cur *catalog.Disk) error {
		cur.Pending = nil
		if b, err := c.Get(cur.ParentID); err == nil && b.Checksum != nil {
			b.Checksum.Stale = true
		}
		return nil
	})
	return err
}

// ExportDelta writes the blocks disk id changed between its base and
// checkpoint cpID as one self-contained delta file (docs/overlays.md,
// "Deltas"), naming the base by size and CRC32.
func (m *Manager) ExportDelta(ctx context.Context, id, cpID string, w io.Writer) (layer.Footer, error) {
	cat, err := m.read()
	if err != nil {
		return layer.Footer{}, err
	}
	d, err := cat.Get(id)
	if err != nil {
		return layer.Footer{}, err
	}
	top := headOf(d)
	if cpID != "" {
		i, err := findCheckpoint(d, cpID)
		if err != nil {
			return layer.Footer{}, err
		}
		top = d.Checkpoints[i].Layer
	}
	if d.Layers == nil || top == "" {
		return layer.Footer{}, diskerr.New("", catalog.ErrInvalid, "“%s” has no changes kept apart from its base", d.Name)
	}
	v, err := m.openView(cat, d, top, false)
	if err != nil {
		return layer.Footer{}, err
	}
	defer v.Close()
	crc, err := m.baseCRC(ctx, cat, d, v.base)
	if err != nil {
		return layer.Footer{}, err
	}
	baseName := d.Name
	if p, err := cat.Get(d.ParentID); err == nil {
		baseName = p.Name
	}
	return layer.WriteDelta(w, layer.DeltaInfo{DiskSize: d.SizeBytes, BlockSize: uint32(d.Layers.BlockSize), BaseCRC32: crc, BaseName: baseName},
		overlay.Changes{Layers: v.layers})
}

// baseCRC is the CRC32 of the logical content below d's layers: the base
// disk's recorded checksum when it is current, else computed.
func (m *Manager) baseCRC(ctx context.Context, cat *catalog.Catalog, d *catalog.Disk, base formats.Image) (uint32, error) {
	if p, err := cat.Get(d.ParentID); err == nil && p.Layers == nil && p.Checksum != nil && !p.Checksum.Stale && p.Checksum.Algorithm == "crc32" {
		var v uint32
		if _, err := fmt.Sscanf(p.Checksum.Value, "%08x", &v); err == nil {
			return v, nil
		}
	}
	res, err := convert.Convert(ctx, base, nil, convert.Options{})
	if err != nil {
		return 0, err
	}
	return res.Checksum, nil
}

// ImportDelta stores a delta file as a new overlay of disk baseID, after
// checking, while it is copied in, that it is whole (its footer's CRC32)
// and that it was made for this base (size and CRC32 of its content).
func (m *Manager) ImportDelta(ctx context.Context, in Input, baseID, name string) (*catalog.Disk, error) {
	head := make([]byte, 4096)
	if _, err := formats.ReadFull(in, head, 0); err != nil || !layer.Probe(head) {
		return nil, diskerr.New("", catalog.ErrInvalid, "%s is not an aerodisk delta", in.Name())
	}
	src, err := layer.OpenReader(in, in.Size())
	if err != nil {
		return nil, err
	}
	h := src.Header()
	if h.Flags&layer.FlagDelta == 0 {
		return nil, diskerr.New("", catalog.ErrInvalid, "%s is a layer, not a delta (exportDelta makes one)", in.Name())
	}
	cat, err := m.read()
	if err != nil {
		return nil, err
	}
	base, err := cat.Get(baseID)
	if err != nil {
		return nil, err
	}
	bimg, err := m.openImage(cat, base)
	if err != nil {
		return nil, err
	}
	crc, err := m.baseCRC(ctx, cat, &catalog.Disk{ParentID: baseID}, bimg)
	bimg.Close()
	if err != nil {
		return nil, err
	}
	if h.BaseSize != base.SizeBytes || h.BaseCRC32 != crc {
		return nil, diskerr.New("", catalog.ErrInvalid, "this delta is for a base of %d bytes with CRC32 %08x (“%s”); “%s” is %d bytes with CRC32 %08x",
			h.BaseSize, h.BaseCRC32, h.ParentName, base.Name, base.SizeBytes, crc)
	}
	if strings.TrimSpace(name) == "" {
		name = FileStem(in.Name())
	}
	d := m.newDisk(name, base.Kind, "overlay")
	d.FileName, d.Format, d.SizeBytes, d.ParentID = "", "overlay", base.SizeBytes, baseID
	lid := "l" + strings.ReplaceAll(m.newID(), "-", "")[:12]
	file := layerFileName(d.ID, lid)
	f, err := m.b.Create(file)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*catalog.Disk, error) { f.Discard(); return nil, err }
	check := layer.NewFooterCheck()
	r, err := in.Stream()
	if err != nil {
		return fail(err)
	}
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			check.Write(buf[:n])
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				r.Close()
				return fail(err)
			}
			off += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			r.Close()
			return fail(rerr)
		}
		if err := ctx.Err(); err != nil {
			r.Close()
			return fail(err)
		}
	}
	r.Close()
	if _, err := check.Verify(); err != nil {
		return fail(err)
	}
	l, err := layer.Open(f, true)
	if err == nil {
		err = l.ClearDelta()
	}
	if err == nil {
		_, err = l.Check()
	}
	if err == nil {
		err = l.Close()
	}
	if err == nil {
		err = f.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return fail(err)
	}
	d.Layers = &catalog.Layers{BlockSize: int64(h.BlockSize), Head: lid, Nodes: []catalog.Layer{{ID: lid, FileName: file, CreatedAtMs: m.nowMs()}}}
	d.FileSizeBytes, d.StoredBytes = off, off
	err = m.update(func(c *catalog.Catalog) error {
		if _, err := c.Get(baseID); err != nil {
			return err
		}
		return c.Add(d)
	}, f.Finish)
	if err != nil {
		return fail(err)
	}
	return d, nil
}

// recordLayerFiles lists the layer files a record uses.
func recordLayerFiles(d *catalog.Disk) []string {
	var out []string
	if d.Layers != nil {
		for _, n := range d.Layers.Nodes {
			out = append(out, n.FileName)
		}
	}
	return out
}

// openTarget opens a raw or AEROSPAR base disk's file for writing in
// place, as a merge target.
func (m *Manager) openTarget(d *catalog.Disk) (overlay.Target, func(), error) {
	f, err := m.b.Open(d.FileName, true)
	if err != nil {
		return nil, nil, err
	}
	switch formats.Format(d.Format) {
	case formats.Raw:
		return &overlay.RawTarget{W: f}, func() { f.Close() }, nil
	case formats.AeroSpar:
		s, err := sparse.Open(f, true)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		return s, func() { s.Close(); f.Close() }, nil
	}
	f.Close()
	return nil, nil, diskerr.New(d.Format, diskerr.ErrUnsupported, "a merge writes into raw or AEROSPAR disks only")
}

// collectAll removes the garbage every record lists (positive proof: the
// commit that stopped using each file named it so). A file that cannot be
// removed now (another tab still reads it) stays listed.
func (m *Manager) collectAll() {
	cat, err := m.read()
	if err != nil {
		return
	}
	for _, d := range cat.List() {
		if len(d.Garbage) > 0 {
			m.removeGarbage(d.ID, append([]string(nil), d.Garbage...))
		}
	}
}

// ResumePending finishes the merges and commits a killed tab left
// unfinished (each is idempotent and never changes what a disk reads).
// The browser runs it in the background after open; a disk with a pending
// merge refuses new layer operations (ErrInUse) until it is done.
func (m *Manager) ResumePending(ctx context.Context) error {
	cat, err := m.read()
	if err != nil {
		return err
	}
	var errs error
	for _, d := range cat.List() {
		if d.Pending != nil {
			errs = errors.Join(errs, m.finishMerge(ctx, d.ID, nil))
		}
	}
	return errs
}

// ExportCheckpoint writes disk id as it was at checkpoint cpID, like
// Export. The checkpoint's layers are frozen, so the export is consistent
// while a machine keeps writing the disk.
func (m *Manager) ExportCheckpoint(ctx context.Context, id, cpID string, o ExportOptions, w io.Writer) error {
	cat, err := m.read()
	if err != nil {
		return err
	}
	d, err := cat.Get(id)
	if err != nil {
		return err
	}
	i, err := findCheckpoint(d, cpID)
	if err != nil {
		return err
	}
	v, err := m.openView(cat, d, d.Checkpoints[i].Layer, false)
	if err != nil {
		return err
	}
	defer v.Close()
	return m.exportTo(ctx, v, o, w)
}

// withLayers opens layer files (the one at index writable for writing, -1
// none), runs fn on them and closes them all before it returns, so that
// the files can be removed right after.
func (m *Manager) withLayers(names []string, writable int, fn func([]*layer.Layer) error) (err error) {
	var ls []*layer.Layer
	var files []File
	defer func() {
		for _, l := range ls {
			err = errors.Join(err, l.Close())
		}
		for _, f := range files {
			err = errors.Join(err, f.Close())
		}
	}()
	for i, name := range names {
		f, err := m.b.Open(name, i == writable)
		if err != nil {
			return err
		}
		files = append(files, f)
		l, err := layer.Open(f, i == writable)
		if err != nil {
			return err
		}
		ls = append(ls, l)
	}
	return fn(ls)
}

// FlattenDisk stores disk id as it reads now (its layers and base) as a new
// standalone disk, made like a converted import: AEROSPAR (raw on a sparse
// backend), checksummed, named only when whole.
func (m *Manager) FlattenDisk(ctx context.Context, id, name string, progress func(Progress)) (*catalog.Disk, error) {
	d, img, err := m.openStored(id)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	need, err := storedBytes(img)
	if err != nil {
		return nil, err
	}
	if err := m.checkSpace(need); err != nil {
		return nil, err
	}
	if strings.TrimSpace(name) == "" {
		name = d.Name + " (flat)"
	}
	if err := catalog.ValidateName(name); err != nil {
		return nil, err
	}
	target := formats.AeroSpar
	if m.sparse() {
		target = formats.Raw
	}
	nd := m.newDisk(name, d.Kind, target)
	nd.SizeBytes = img.Size()
	err = m.store(ctx, nd, func(file File) error {
		crc, err := convertInto(ctx, img, target, file, progress)
		if err == nil {
			nd.Checksum = catalog.CRC32(checksum.Hex(crc))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return nd, nil
}

// layeredDevice is the block device of a layered disk: reads through the
// chain, writes and discards into the head.
type layeredDevice struct {
	*overlay.Device
	v *view
}

// openLayered opens d (which has layers) as a block device.
func (m *Manager) openLayered(cat *catalog.Catalog, d *catalog.Disk, writable bool) (*layeredDevice, error) {
	if writable {
		if err := refuseIfBase(cat, d, "it cannot be written"); err != nil {
			return nil, err
		}
		if d.Pending != nil {
			return nil, &MergePendingError{Name: d.Name}
		}
	}
	v, err := m.openView(cat, d, headOf(d), writable)
	if err != nil {
		return nil, err
	}
	if len(v.layers) == 0 {
		v.Close()
		return nil, diskerr.New("", diskerr.ErrCorrupt, "“%s” has no head layer", d.Name)
	}
	return &layeredDevice{Device: overlay.NewDevice(v.layers[len(v.layers)-1], !writable), v: v}, nil
}

func (l *layeredDevice) Close() error { return l.v.Close() }

// switchHead makes the layer file fileName, just committed as the disk's
// new head on top of the current one (a checkpoint), the layer writes go
// to. The caller holds the device, flushed, so that no write is between.
func (l *layeredDevice) switchHead(m *Manager, fileName string) error {
	f, err := m.b.Open(fileName, true)
	if err != nil {
		return err
	}
	nl, err := layer.Open(f, true)
	if err != nil {
		f.Close()
		return err
	}
	nl.SetBelow(l.v.top())
	l.v.files = append(l.v.files, f)
	l.v.names = append(l.v.names, fileName)
	l.v.rw = append(l.v.rw, true)
	l.v.layers = append(l.v.layers, nl)
	l.Device = overlay.NewDevice(nl, false)
	return nil
}

// DefaultOverlay returns disk id's default overlay (mode "overlay" of
// openDisk), making it on first use: the base stays pristine. A default
// overlay is its own.
func (m *Manager) DefaultOverlay(id string) (*catalog.Disk, error) {
	cat, err := m.read()
	if err != nil {
		return nil, err
	}
	base, err := cat.Get(id)
	if err != nil {
		return nil, err
	}
	if base.DefaultOverlay {
		return base, nil
	}
	for _, d := range overlaysOf(cat, id) {
		if d.DefaultOverlay {
			return d, nil
		}
	}
	return m.createOverlay(id, base.Name+" (overlay)", true)
}

// defaultOverlayOf is disk id's default overlay, if it has one.
func defaultOverlayOf(cat *catalog.Catalog, id string) *catalog.Disk {
	for _, d := range overlaysOf(cat, id) {
		if d.DefaultOverlay {
			return d
		}
	}
	return nil
}

// openLayeredDevice opens a layered disk as a Device: reads through its
// chain, writes into its head (another tab's writer holds the head file,
// so the backend refuses a second one).
func (m *Manager) openLayeredDevice(cat *catalog.Catalog, d *catalog.Disk, writable bool) (*Device, error) {
	dev := &Device{m: m, id: d.ID, name: d.Name, writable: writable}
	if err := m.devices.add(dev); err != nil {
		return nil, err
	}
	ld, err := m.openLayered(cat, d, writable)
	if err != nil {
		m.devices.remove(dev)
		return nil, err
	}
	dev.dev = ld
	return dev, nil
}

// writerHere is this manager's writable device of disk id, if any.
func (m *Manager) writerHere(id string) *Device {
	m.devices.mu.Lock()
	defer m.devices.mu.Unlock()
	for _, d := range m.devices.open[id] {
		if d.writable {
			return d
		}
	}
	return nil
}

// holdHead proves that no other tab writes disk d's current top (its head
// layer, or its file) and keeps it so until release: it holds that file
// read-only, which the backend refuses while a writer has it.
func (m *Manager) holdHead(d *catalog.Disk) (release func(), err error) {
	name := d.FileName
	if n := d.Layers.Node(headOf(d)); n != nil {
		name = n.FileName
	}
	if name == "" {
		return func() {}, nil
	}
	f, err := m.b.Open(name, false)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// holdNoWriter refuses while a device of this manager writes disk d, and
// holds d's top file read-only so that no other tab's writer is there or
// comes while the caller changes what the disk reads.
func (m *Manager) holdNoWriter(d *catalog.Disk) (func(*catalog.Disk) error, error) {
	if err := m.refuseWriting(d.ID); err != nil {
		return nil, err
	}
	release, err := m.holdHead(d)
	if err != nil {
		return nil, err
	}
	return func(*catalog.Disk) error { release(); return nil }, nil
}

// holdForCheckpoint: a checkpoint may be taken while a device of this
// manager writes the disk. The device is held (its requests wait) and
// flushed, so the checkpoint has every write before it; after the commit
// it writes into the new head. Without a device here, no other tab may
// write the disk (holdNoWriter).
func (m *Manager) holdForCheckpoint(d *catalog.Disk) (func(*catalog.Disk) error, error) {
	dev := m.writerHere(d.ID)
	if dev == nil {
		return m.holdNoWriter(d)
	}
	dev.mu.Lock()
	if dev.closed {
		dev.mu.Unlock()
		return m.holdNoWriter(d)
	}
	if err := dev.dev.Flush(); err != nil {
		dev.mu.Unlock()
		return nil, err
	}
	return func(committed *catalog.Disk) error {
		defer dev.mu.Unlock()
		if committed == nil {
			return nil
		}
		head := committed.Layers.Node(committed.Layers.Head)
		return m.switchDevice(dev, committed, head.FileName)
	}, nil
}

// switchDevice moves a device to the new head layer fileName of disk d:
// a layered device stacks it on its top layer; a direct one (the disk had
// no layers: its file is now the frozen base) reads its file through its
// format below the new head. On failure the device is closed rather than
// left writing a frozen layer.
func (m *Manager) switchDevice(dev *Device, d *catalog.Disk, fileName string) error {
	var err error
	switch cur := dev.dev.(type) {
	case *layeredDevice:
		err = cur.switchHead(m, fileName)
	default:
		err = m.layerOverFile(dev, d, fileName)
	}
	if err != nil {
		dev.dev.Close()
		dev.closed = true
		m.devices.remove(dev)
	}
	return err
}

// layerOverFile turns a direct device into a layered one: its open file,
// read through its format, under the new head.
func (m *Manager) layerOverFile(dev *Device, d *catalog.Disk, fileName string) error {
	if err := dev.dev.Flush(); err != nil {
		return err
	}
	size, err := dev.file.Size()
	if err != nil {
		return err
	}
	// The direct device is done with (closing it closes no file); the file
	// stays open (the device closes it last) and is read from now on.
	if err := dev.dev.Close(); err != nil {
		return err
	}
	base, err := formats.Open(formats.Source{Name: d.ID, R: dev.file, Size: size}, readOptions(formats.Options{Format: formats.Format(d.Format)}))
	if err != nil {
		return err
	}
	v := &view{base: base, info: base.Info()}
	ld := &layeredDevice{v: v}
	if err := ld.switchHead(m, fileName); err != nil {
		v.Close()
		return err
	}
	dev.dev = ld
	dev.maxFile = 0
	dev.sparse = nil // closed above, its freed slots compacted: a frozen base now
	return nil
}

// ExportableWith is Exportable for an export with options: one of a
// checkpoint reads frozen layers, so a writer does not stop it.
func (m *Manager) ExportableWith(id string, o ExportOptions) (*catalog.Disk, error) {
	if o.CheckpointID == "" && !o.Delta {
		return m.Exportable(id)
	}
	d, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	if d.Remote() {
		return nil, &catalog.RemoteError{Name: d.Name}
	}
	if o.CheckpointID != "" {
		if _, err := findCheckpoint(d, o.CheckpointID); err != nil {
			return nil, err
		}
	} else if err := m.refuseWriting(id); err != nil {
		return nil, err
	}
	if o.Delta && d.Layers == nil {
		return nil, diskerr.New("", catalog.ErrInvalid, "“%s” has no changes kept apart from its base", d.Name)
	}
	if o.Delta && o.Gzip {
		return nil, diskerr.New("", catalog.ErrInvalid, "a delta is exported as it is, not gzipped")
	}
	return d, nil
}

// BaseError refuses a change to a disk that is the base of overlays: a
// base is immutable (ErrInUse).
type BaseError struct {
	Name     string
	Refused  string   // what was refused: "it cannot be deleted", ...
	Overlays []string // the overlays' names
}

func (e *BaseError) Error() string {
	return fmt.Sprintf("%v: %s: %q is the base of %q", ErrInUse, e.Refused, e.Name, e.Overlays)
}
func (e *BaseError) Unwrap() error { return ErrInUse }

// MergePendingError refuses a layer operation while a merge or commit of
// the disk is unfinished (ErrInUse); it resumes on its own.
type MergePendingError struct{ Name string }

func (e *MergePendingError) Error() string {
	return fmt.Sprintf("%v: a merge of %q is not finished", ErrInUse, e.Name)
}
func (e *MergePendingError) Unwrap() error { return ErrInUse }
