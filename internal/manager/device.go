package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"aerodisk/internal/blockdev"
	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/formats"
	"aerodisk/internal/sparse"
)

// Block devices (docs/browser.md, "Block devices"): a disk opened for
// 512-byte sector I/O by an emulator. The rules live here:
//
//   - direct mode writes in place, and only raw and AEROSPAR disks; a disk
//     stored as it came in any other format (qcow2, VHD, DiskCopy, ISO) is
//     read-only in direct mode; a CD is never writable;
//   - one writer per disk across tabs and workers: a writable open holds
//     the disk file writable, which the backend lets one holder have at a
//     time (an OPFS sync access handle, IndexedDB's per-disk Web Lock, an
//     flock natively), and this manager refuses its own second open before
//     asking; read-only opens share a disk nobody writes;
//   - the first write through a device marks the recorded checksum stale,
//     committed to the catalog before that write is made; Verify records a
//     fresh one;
//   - deleting, renaming, exporting or verifying a disk open for writing
//     is ErrInUse (deleting one open at all), here and in other tabs.

// Device modes (DeviceOptions.Mode).
const (
	ModeDirect  = "direct"  // the disk as it is stored, written in place
	ModeOverlay = "overlay" // writes kept apart in a copy-on-write layer
)

// DeviceOptions is how OpenDisk opens a disk.
type DeviceOptions struct {
	Writable bool
	// Mode is ModeDirect (the default when "") or ModeOverlay.
	Mode string
}

// NotWritableError refuses a writable open of a disk that cannot take
// writes: a CD never can (an ErrReadOnly), and a disk stored in a format
// other than raw or AEROSPAR cannot in direct mode, only through an
// overlay (a catalog.ErrInvalid: the caller asked for the wrong mode).
type NotWritableError struct {
	Name, Kind, Format string
}

func (e *NotWritableError) Error() string {
	if e.Kind == catalog.KindCD {
		return fmt.Sprintf("%v: %q is a CD, which is never writable", e.Unwrap(), e.Name)
	}
	return fmt.Sprintf("%v: %q is stored as %s, which mode %q only reads; writes need mode %q", e.Unwrap(), e.Name, e.Format, ModeDirect, ModeOverlay)
}

func (e *NotWritableError) Unwrap() error {
	if e.Kind == catalog.KindCD {
		return diskerr.ErrReadOnly
	}
	return catalog.ErrInvalid
}

// DeviceOpenError: the disk is open as a block device of this manager —
// for writing, or at all when the operation needs the disk to itself
// (delete). It is an ErrInUse; the same refusal from another tab comes
// from the backend, as any ErrInUse does.
type DeviceOpenError struct {
	Name     string
	Writable bool // the device that is open takes writes
}

func (e *DeviceOpenError) Error() string {
	how := "read-only"
	if e.Writable {
		how = "for writing"
	}
	return fmt.Sprintf("%v: %q is open %s as a block device", ErrInUse, e.Name, how)
}

func (e *DeviceOpenError) Unwrap() error { return ErrInUse }

// ErrDeviceClosed is what a closed device's methods return.
var ErrDeviceClosed = diskerr.New("", catalog.ErrInvalid, "the device is closed")

// deviceSet is the manager's open devices, by disk id.
type deviceSet struct {
	mu   sync.Mutex
	open map[string][]*Device
}

// add registers d, refusing a writer beside any other device of its disk
// and a reader beside a writer: the backend would refuse the file too,
// but as if another tab held it.
func (s *deviceSet) add(d *Device) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.open[d.id] {
		if d.writable || o.writable {
			return &DeviceOpenError{Name: o.name, Writable: o.writable}
		}
	}
	if s.open == nil {
		s.open = map[string][]*Device{}
	}
	s.open[d.id] = append(s.open[d.id], d)
	return nil
}

func (s *deviceSet) remove(d *Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.open[d.id]
	for i, o := range l {
		if o == d {
			l = append(l[:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(s.open, d.id)
	} else {
		s.open[d.id] = l
	}
}

// refuse fails with a DeviceOpenError when disk id has a device open for
// writing here, or (exclusive) any device.
func (s *deviceSet) refuse(id string, exclusive bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.open[id] {
		if o.writable || exclusive {
			return &DeviceOpenError{Name: o.name, Writable: o.writable}
		}
	}
	return nil
}

// refuseWriting refuses an operation on disk id while a device writes it
// in this manager (a rename, an export, a verify); other tabs' writers
// refuse it through the backend.
func (m *Manager) refuseWriting(id string) error { return m.devices.refuse(id, false) }

// refuseDevices refuses an operation that needs disk id to itself (a
// delete) while any device of this manager has it open.
func (m *Manager) refuseDevices(id string) error { return m.devices.refuse(id, true) }

// holdUnwritten proves that no tab writes disk id and keeps it so until
// release is called: it holds the disk file read-only, which the backend
// refuses (ErrInUse) while a writer has it. For an operation that changes
// only the catalog (a rename), which would otherwise touch no lock a writer
// in another tab holds. A disk without a file of its own here (remote, a
// name this store cannot have, a file gone) has no writer to refuse.
func (m *Manager) holdUnwritten(id string) (release func(), err error) {
	if err := m.refuseWriting(id); err != nil {
		return nil, err
	}
	d, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	if d.Remote() || d.FileName == "" {
		return func() {}, nil
	}
	f, err := m.b.Open(d.FileName, false)
	switch {
	case errors.Is(err, ErrInUse):
		return nil, err
	case err != nil:
		return func() {}, nil // the operation reports its own errors
	}
	return func() { f.Close() }, nil
}

// Device is a disk open for block I/O (blockdev.Device's rules: offsets and
// lengths are multiples of blockdev.SectorSize inside the disk). Its
// methods are safe for concurrent use; they run one at a time.
type Device struct {
	m        *Manager
	id, name string
	writable bool
	dev      blockdev.Device
	// file is a direct writer's disk file, closed after dev; nil when dev
	// owns what it reads (a format reader).
	file File
	// maxFile is the longest the disk file can grow to (an AEROSPAR file
	// with every block allocated; a raw file never grows). The record's
	// fileSizeBytes is raised to it at the first write, so that a backend
	// which takes a file's length from the record (IndexedDB) never finds
	// the file shorter than its image after a killed tab; Close records the
	// exact length.
	maxFile int64

	// sparse is a direct AEROSPAR writer's image: the slots its discards
	// free are compacted in the background, in steps between requests.
	sparse *sparse.Disk

	mu         sync.Mutex
	written    bool // the first write's catalog change is committed
	closed     bool
	compacting bool // the background compaction runs
}

// OpenDisk opens disk id as a block device. Read-only opens read any
// stored format's logical content (through backing chains); writable
// direct opens write raw and AEROSPAR disks in place. A writable open of a
// CD, or of another format in direct mode, is a NotWritableError; a disk a
// writer holds, here or in another tab, is ErrInUse.
func (m *Manager) OpenDisk(ctx context.Context, id string, o DeviceOptions) (*Device, error) {
	mode := o.Mode
	if mode == "" {
		mode = ModeDirect
	}
	if mode != ModeDirect && mode != ModeOverlay {
		return nil, diskerr.New("", catalog.ErrInvalid, "mode must be %q or %q, not %q", ModeDirect, ModeOverlay, o.Mode)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cat, err := m.read()
	if err != nil {
		return nil, err
	}
	d, err := cat.Get(id)
	if err != nil {
		return nil, err
	}
	if d.Remote() {
		return nil, &catalog.RemoteError{Name: d.Name}
	}
	if o.Writable && d.Kind == catalog.KindCD {
		return nil, &NotWritableError{Name: d.Name, Kind: d.Kind, Format: d.Format}
	}
	if mode == ModeOverlay {
		// The disk's default overlay, made on first use: the base stays
		// pristine (layers.go). A read-only open before any exists reads
		// the base, which is the same bytes.
		if !o.Writable && !d.DefaultOverlay {
			if ov := defaultOverlayOf(cat, d.ID); ov != nil {
				d = ov
			}
		} else {
			ov, err := m.DefaultOverlay(d.ID)
			if err != nil {
				return nil, err
			}
			if cat, err = m.read(); err != nil {
				return nil, err
			}
			if d, err = cat.Get(ov.ID); err != nil {
				return nil, err
			}
		}
	}
	if d.Layers != nil {
		return m.openLayeredDevice(cat, d, o.Writable)
	}
	if o.Writable {
		if err := refuseIfBase(cat, d, "it cannot be written"); err != nil {
			return nil, err
		}
	}
	if o.Writable && !catalog.WritableFormat(d.Format) {
		return nil, &NotWritableError{Name: d.Name, Kind: d.Kind, Format: d.Format}
	}
	dev := &Device{m: m, id: d.ID, name: d.Name, writable: o.Writable}
	if err := m.devices.add(dev); err != nil {
		return nil, err
	}
	if o.Writable {
		if err = m.openDirect(dev, d); err == nil {
			dev.mu.Lock()
			dev.startCompaction() // freed slots a killed tab left
			dev.mu.Unlock()
		}
	} else {
		var img formats.Image
		if img, err = m.openImage(cat, d); err == nil {
			dev.dev = blockdev.NewReadOnly(img)
		}
	}
	if err != nil {
		m.devices.remove(dev)
		return nil, err
	}
	return dev, nil
}

// openDirect opens d's file for writing in place.
func (m *Manager) openDirect(dev *Device, d *catalog.Disk) (err error) {
	f, err := m.b.Open(d.FileName, true)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	size, err := f.Size()
	if err != nil {
		return err
	}
	dev.maxFile = size
	switch formats.Format(d.Format) {
	case formats.Raw:
		dev.dev, err = blockdev.NewRaw(f, size)
	case formats.AeroSpar:
		// Opened writable, the image is validated and tidied (a crash's
		// allocation rolled forward, freed slots compacted): its logical
		// content stays as it was.
		var sd *sparse.Disk
		if sd, err = sparse.OpenPaced(f); err != nil {
			return err
		}
		dev.sparse = sd
		if dev.dev, err = blockdev.NewSparse(sd); err != nil {
			sd.Close()
			return err
		}
		if size, err = f.Size(); err != nil {
			sd.Close()
			return err
		}
		bs := int64(sd.BlockSize())
		dev.maxFile = size + ((sd.Size()+bs-1)/bs-sd.AllocatedBlocks())*bs
	default:
		err = &NotWritableError{Name: d.Name, Kind: d.Kind, Format: d.Format}
	}
	if err == nil {
		dev.file = f
	}
	return err
}

// DiskID is the id of the disk the device reads.
func (d *Device) DiskID() string { return d.id }

// Size is the disk's size in bytes.
func (d *Device) Size() int64 { return d.dev.Size() }

// SectorSize is the unit of every offset and length.
func (d *Device) SectorSize() int { return blockdev.SectorSize }

// ReadOnly reports that writes and discards are refused (ErrReadOnly).
func (d *Device) ReadOnly() bool { return d.dev.ReadOnly() }

// ReadAt reads len(p) bytes at off into p: the caller's buffer is filled
// in place (a worker reads straight into memory it reuses).
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, ErrDeviceClosed
	}
	return d.dev.ReadAt(p, off)
}

// WriteAt writes p at off. The first write of a device marks the disk's
// checksum stale in the catalog before anything is written.
func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.beforeWrite(off, int64(len(p))); err != nil {
		return 0, err
	}
	return d.dev.WriteAt(p, off)
}

// Discard makes [off, off+n) read as zeros; on AEROSPAR whole blocks are
// freed. It counts as a write.
func (d *Device) Discard(off, n int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.beforeWrite(off, n); err != nil {
		return err
	}
	err := d.dev.Discard(off, n)
	d.startCompaction()
	return err
}

// startCompaction starts, unless it runs, the background compaction of an
// AEROSPAR writer's freed slots (d.mu held): steps of the manager's step
// budget (~5 ms) with the device held, the manager's Yield between them,
// so block requests wait at most one step. Close finishes what is left, so
// the file Aero's browser reader sees never has a freed slot.
func (d *Device) startCompaction() {
	if d.sparse == nil || d.compacting || d.closed || !d.sparse.CompactionPending() {
		return
	}
	d.compacting = true
	go func() {
		for {
			d.mu.Lock()
			if d.closed || d.sparse == nil {
				d.compacting = false
				d.mu.Unlock()
				return
			}
			done, _, _, err := d.sparse.CompactStep(d.m.stepBudget())
			if done || err != nil {
				// An error leaves the image failed: the next request says it.
				d.compacting = false
				d.mu.Unlock()
				return
			}
			d.mu.Unlock()
			d.m.yield()
		}
	}()
}

// beforeWrite refuses what the device would refuse, with nothing changed,
// and commits the first write's catalog change (d.mu held).
func (d *Device) beforeWrite(off, n int64) error {
	if d.closed {
		return ErrDeviceClosed
	}
	if err := blockdev.CheckRange(off, n, d.dev.Size()); err != nil {
		return err
	}
	if d.dev.ReadOnly() {
		return diskerr.New("", diskerr.ErrReadOnly, "the disk is open read-only")
	}
	if d.written {
		return nil
	}
	if err := d.m.markWritten(d.id, d.maxFile); err != nil {
		return err
	}
	d.written = true
	return nil
}

// Flush makes every write before it durable: it survives a killed tab.
func (d *Device) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrDeviceClosed
	}
	return d.dev.Flush()
}

// Close flushes and releases the device; a written disk's record gets the
// file's exact length and stored bytes, while the file is still held (no
// writer of another tab can be between). Closing twice is no error.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	defer d.m.devices.remove(d)
	err := d.dev.Close()
	if d.file == nil {
		return err
	}
	if d.written && err == nil {
		err = d.m.recordFile(d.id, d.file)
	}
	if cerr := d.file.Close(); err == nil {
		err = cerr
	}
	return err
}

// markWritten commits what a disk's first write through a device changes
// in its record: the checksum is stale, and fileSizeBytes is at least
// maxFile. Nothing is written when the record says so already.
func (m *Manager) markWritten(id string, maxFile int64) error {
	change := func(d *catalog.Disk) bool {
		stale := d.Checksum != nil && d.Checksum.Value != "" && !d.Checksum.Stale
		return stale || maxFile > d.FileSizeBytes
	}
	return m.changeRecord(id, change, func(d *catalog.Disk) {
		if d.Checksum != nil && d.Checksum.Value != "" {
			cs := *d.Checksum
			cs.Stale = true
			d.Checksum = &cs
		}
		d.FileSizeBytes = max(d.FileSizeBytes, maxFile)
	})
}

// recordFile records the length and stored bytes of disk id's file f.
func (m *Manager) recordFile(id string, f File) error {
	size, err := f.Size()
	if err != nil {
		return err
	}
	stored := size
	if s, ok := f.(StoredSizer); ok {
		if stored, err = s.StoredBytes(); err != nil {
			return err
		}
	}
	return m.changeRecord(id,
		func(d *catalog.Disk) bool { return d.FileSizeBytes != size || d.StoredBytes != stored },
		func(d *catalog.Disk) { d.FileSizeBytes, d.StoredBytes = size, stored })
}

// changeRecord applies apply to disk id's record under the exclusive
// catalog lock, and stores the catalog, when needed says it changes
// anything.
func (m *Manager) changeRecord(id string, needed func(*catalog.Disk) bool, apply func(*catalog.Disk)) error {
	return m.locked(func(l loaded) error {
		d, err := l.cat.Get(id)
		if err != nil {
			return err
		}
		if !needed(d) {
			return nil
		}
		return m.write(l, func(*catalog.Catalog) error { apply(d); return nil }, nil)
	})
}
