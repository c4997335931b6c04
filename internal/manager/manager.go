package manager

import (
	"aerodisk/internal/overlay"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	"aerodisk/internal/catalog"
	"aerodisk/internal/checksum"
	"aerodisk/internal/convert"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/formats"
	"aerodisk/internal/gzipx"
	"aerodisk/internal/sizefmt"
	"aerodisk/internal/sparse"
)

// MaxDiskSize bounds blank disks (2 TiB, the largest a VHD can describe and
// far beyond any browser quota).
const MaxDiskSize = 2 << 40

// Progress is a long operation's progress: its phase, bytes done of the
// total, and the rate so far (the worker posts it as onProgress's argument).
type Progress struct {
	Phase          string
	ProcessedBytes int64
	TotalBytes     int64
	BytesPerSecond float64
}

// Phases reported in Progress.Phase.
const (
	PhaseImport   = "import"   // copying the file as it is
	PhaseConvert  = "convert"  // converting into AEROSPAR
	PhaseChecksum = "checksum" // a checksum pass over data already stored or over the source
	PhaseExport   = "export"
	PhaseVerify   = "verify"
)

// Manager runs disk operations on one Backend. Its methods are safe to call
// concurrently: the catalog is read and changed only under the catalog lock.
type Manager struct {
	b     Backend
	now   func() time.Time
	newID func() string

	mu     sync.Mutex
	report OpenReport
	// gone are garbage files this tab has removed whose names the stored
	// records still list: reads leave them out, the next commit forgets
	// them (a commit of its own for that alone would double the cost of a
	// restore or a revert).
	gone map[string]bool
	// parsed is the last catalog parsed, from the bytes parsedFrom (parse).
	parsed     *catalog.Catalog
	parsedFrom []byte
	// latest is the newest catalog this tab has read or written: a hint
	// for work done before a commit, which the commit checks (recent).
	latest *catalog.Catalog

	devices deviceSet // the block devices open here (device.go)

	// GzipHelpers lends extra compressors (running on other threads) to gzip
	// exports; an export takes those that are free and returns them after.
	// nil: exports compress here alone.
	GzipHelpers chan gzipx.Compressor

	// Yield, when set, lets block requests run between the ~5 ms steps of
	// a merge (the browser's worker sets it).
	Yield func()
	// StepBudget is the work a merge does between two yields (0: ~5 ms).
	StepBudget time.Duration
}

// New returns a Manager over b, after recovering the catalog if it cannot
// be used and settling the pending files of tabs that died (Report says
// what it did). Nothing else is removed: files that no record names are
// left where they are.
func New(b Backend) (*Manager, error) {
	m := &Manager{b: b, now: time.Now, newID: newUUID}
	if err := m.sweep(); err != nil {
		return nil, err
	}
	m.collectAll()
	return m, nil
}

// stepBudget is the work of one background step between two yields.
func (m *Manager) stepBudget() time.Duration {
	if m.StepBudget > 0 {
		return m.StepBudget
	}
	return overlay.DefaultBudget
}

// yield lets block requests run between two background steps.
func (m *Manager) yield() {
	if m.Yield != nil {
		m.Yield()
		return
	}
	runtime.Gosched()
}

// Backend returns the backend in use.
func (m *Manager) Backend() Backend { return m.b }

func (m *Manager) nowMs() int64 { return m.now().UnixMilli() }

// FileStem is a file name up to its first dot (catalog.FileStem).
func FileStem(name string) string { return catalog.FileStem(name) }

// sparse reports whether the backend stores zeros for free.
func (m *Manager) sparse() bool {
	s, ok := m.b.(SparseBackend)
	return ok && s.Sparse()
}

// List returns every disk, most recently used first.
func (m *Manager) List() ([]*catalog.Disk, error) {
	cat, err := m.read()
	if err != nil {
		return nil, err
	}
	return cat.List(), nil
}

// Get returns one disk.
func (m *Manager) Get(id string) (*catalog.Disk, error) {
	cat, err := m.read()
	if err != nil {
		return nil, err
	}
	return cat.Get(id)
}

// Rename changes a disk's name. A disk open for writing, here or in
// another tab, is refused with ErrInUse.
func (m *Manager) Rename(id, name string) (*catalog.Disk, error) {
	release, err := m.holdUnwritten(id) // a disk open for writing keeps its name
	if err != nil {
		return nil, err
	}
	defer release()
	var out *catalog.Disk
	err = m.update(func(c *catalog.Catalog) error {
		d, err := c.Rename(id, name)
		out = d
		return err
	}, nil)
	return out, err
}

// Delete removes a disk: its catalog entry (and any mount of it), then its
// file — unless another record stores its data in the same file, or the
// record names no file of this store (a bad or foreign name), when only the
// record goes. A disk open in another tab, or as a block device here, is
// refused with ErrInUse.
func (m *Manager) Delete(id string) error {
	if err := m.refuseDevices(id); err != nil {
		return err
	}
	d, err := m.Get(id)
	if err != nil {
		return err
	}
	// Holding the file writable proves no other tab has it open, and keeps
	// it that way until the catalog no longer names it.
	var f File
	ownFile := d.FileName != ""
	if ownFile {
		f, err = m.b.Open(d.FileName, true)
		switch {
		case errors.Is(err, catalog.ErrInvalid):
			ownFile = false // not a name this store can have: touch no file
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		}
	}
	removeFile := false
	var layerFiles []string
	err = m.update(func(c *catalog.Catalog) error {
		// A base with overlays is immutable (layers.go).
		if cur, err := c.Get(id); err == nil {
			if err := refuseIfBase(c, cur, "it cannot be deleted"); err != nil {
				return err
			}
		}
		cur, err := c.Remove(id)
		if err != nil {
			return err
		}
		removeFile = ownFile && cur.FileName == d.FileName && !c.Names(d.FileName, id)
		layerFiles = append(recordLayerFiles(cur), cur.Garbage...)
		return nil
	}, nil)
	if f != nil {
		f.Close()
	}
	if err == nil {
		// The record that named them is gone: they are this manager's
		// own files, which no record needs.
		for _, lf := range layerFiles {
			m.b.Remove(lf)
		}
	}
	if err != nil || !removeFile {
		return err
	}
	// The record is gone, so the disk is deleted; a file that cannot be
	// removed now (another tab opened it in this instant) stays behind
	// unnamed, which loses nothing.
	m.b.Remove(d.FileName)
	return nil
}

// Mounts returns the current mounts.
func (m *Manager) Mounts() (catalog.Mounts, error) {
	cat, err := m.read()
	if err != nil {
		return catalog.Mounts{}, err
	}
	return cat.Mounts, nil
}

// MountChange is a setMounts call: each drive is set only when its Set flag
// is true (Partial<Mounts> in the JS API), to the disk id or, nil, to none.
type MountChange struct {
	SetHdd, SetCd bool
	HddID, CdID   *string
}

// SetMounts applies a mount selection after checking the rules; a drive
// the change does not set keeps its disk.
func (m *Manager) SetMounts(ch MountChange) (catalog.Mounts, error) {
	var out catalog.Mounts
	err := m.update(func(c *catalog.Catalog) error {
		next := c.Mounts
		if ch.SetHdd {
			next.HddID = ch.HddID
		}
		if ch.SetCd {
			next.CdID = ch.CdID
		}
		if err := c.SetMounts(next, m.nowMs()); err != nil {
			return err
		}
		out = c.Mounts
		return nil
	}, nil)
	return out, err
}

// BlankOptions describes a new blank disk.
type BlankOptions struct {
	Name      string
	SizeBytes int64
	Kind      string // default "hdd"
}

// CreateBlank creates an empty disk: an AEROSPAR file (header and block
// table only, whatever its size, so a 60 GB disk costs a few hundred KiB of
// quota) or, on a sparse backend, a raw file that stores nothing at all.
func (m *Manager) CreateBlank(ctx context.Context, o BlankOptions) (*catalog.Disk, error) {
	kind, err := checkKind(o.Kind, catalog.KindHDD)
	if err != nil {
		return nil, err
	}
	if o.SizeBytes <= 0 || o.SizeBytes%512 != 0 || o.SizeBytes > MaxDiskSize {
		return nil, diskerr.New("", catalog.ErrInvalid, "a disk size must be a positive multiple of 512 bytes up to %s (%s), not %d", sizefmt.Exact(MaxDiskSize), sizefmt.Human(MaxDiskSize), o.SizeBytes)
	}
	if err := catalog.ValidateName(o.Name); err != nil {
		return nil, err
	}
	if m.sparse() {
		d := m.newDisk(o.Name, kind, formats.Raw)
		d.SizeBytes = o.SizeBytes
		d.Checksum = catalog.CRC32(checksum.Hex(checksum.ExtendZeros(0, o.SizeBytes)))
		if err := m.store(ctx, d, func(f File) error { return f.Truncate(o.SizeBytes) }); err != nil {
			return nil, err
		}
		return d, nil
	}
	need, err := sparse.BlankSize(o.SizeBytes, 0)
	if err != nil {
		return nil, err
	}
	if err := m.checkSpace(need); err != nil {
		return nil, err
	}
	d := m.newDisk(o.Name, kind, formats.AeroSpar)
	d.SizeBytes = o.SizeBytes
	d.Checksum = catalog.CRC32(checksum.Hex(checksum.ExtendZeros(0, o.SizeBytes)))
	err = m.store(ctx, d, func(f File) error {
		sd, err := sparse.Create(f, o.SizeBytes, 0) // 0: the block size Aero reads (sparse.ChooseBlockSize)
		if err != nil {
			return err
		}
		return sd.Close()
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ImportOptions describes an import.
type ImportOptions struct {
	Name     string // default: the file name without its extension
	Kind     string // default: from the content
	Convert  bool   // store as AEROSPAR (ISO images stay ISO)
	Progress func(Progress)
}

// Import stores a user's file as a new disk: as it is, or converted into
// AEROSPAR. The source is validated first (a corrupt image is refused with
// nothing stored), checksums are computed while the data streams, and the
// catalog names the disk only once its file is complete.
func (m *Manager) Import(ctx context.Context, in Input, o ImportOptions) (*catalog.Disk, error) {
	cat, err := m.read()
	if err != nil {
		return nil, err
	}
	src := formats.Source{Name: "upload:" + in.Name(), R: in, Size: in.Size()}
	res := m.resolver(cat)
	img, err := formats.Open(src, readOptions(formats.Options{Resolve: res.resolve}))
	if err != nil {
		return nil, err
	}
	defer img.Close()
	info := img.Info()
	if delta, _ := info.Details["delta"].(bool); info.Format == formats.AeroLayr && delta {
		// Alone it would read as zeros wherever it did not change its base.
		return nil, diskerr.New("", catalog.ErrInvalid, "%q is a delta of the disk %q: import it with importDelta onto that disk", in.Name(), info.BackingFile)
	}
	warnings := append(append([]string(nil), info.Warnings...), res.warnings(info)...)
	kind, err := checkKind(o.Kind, defaultKind(info.Format, img.Size()))
	if err != nil {
		return nil, err
	}
	name := o.Name
	if strings.TrimSpace(name) == "" {
		name = strings.TrimSuffix(in.Name(), path.Ext(in.Name()))
	}
	if err := catalog.ValidateName(name); err != nil {
		return nil, err
	}
	if o.Convert && info.Format != formats.ISO {
		return m.importConverted(ctx, in, img, name, kind, warnings, o.Progress)
	}
	if info.BackingFile != "" {
		return nil, diskerr.New("", catalog.ErrInvalid, "%q depends on the backing file %q; import it converted to AEROSPAR to store it on its own", in.Name(), info.BackingFile)
	}
	return m.importAsIs(ctx, in, info.Format, img, name, kind, warnings, o.Progress)
}

func (m *Manager) importAsIs(ctx context.Context, in Input, f formats.Format, img formats.Image, name, kind string, warnings []string, progress func(Progress)) (*catalog.Disk, error) {
	if err := m.checkSpace(in.Size()); err != nil {
		return nil, err
	}
	d := m.newDisk(name, kind, f)
	d.Warnings = warnings
	d.SizeBytes = img.Size()
	d.SourceFileName, d.SourceFormat = in.Name(), string(f)
	err := m.store(ctx, d, func(file File) error {
		srcCRC, err := copyInput(ctx, in, file, convertOptions(PhaseImport, progress))
		if err != nil {
			return err
		}
		d.SourceChecksum = catalog.CRC32(checksum.Hex(srcCRC))
		if f == formats.Raw || f == formats.ISO {
			d.Checksum = d.SourceChecksum // the file is the logical content
			return file.Flush()
		}
		if err := file.Flush(); err != nil {
			return err
		}
		// A container's logical checksum comes from a pass over the stored
		// copy, which also proves that copy reads back whole.
		stored, err := formats.Open(formats.Source{Name: d.ID, R: file, Size: in.Size()}, readOptions(formats.Options{Format: f}))
		if err != nil {
			return err
		}
		defer stored.Close()
		res, err := convert.Convert(ctx, stored, nil, convertOptions(PhaseChecksum, progress))
		if err != nil {
			return err
		}
		d.Checksum = catalog.CRC32(checksum.Hex(res.Checksum))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// convertInto writes img's logical content into file as target (raw or
// AEROSPAR) and returns its CRC32.
func convertInto(ctx context.Context, img formats.Image, target formats.Format, file File, progress func(Progress)) (uint32, error) {
	var res convert.Result
	var err error
	if target == formats.Raw {
		res, err = convert.ToRaw(ctx, img, file, convertOptions(PhaseConvert, progress))
	} else {
		res, err = convert.ToAeroSpar(ctx, img, file, 0, convertOptions(PhaseConvert, progress))
	}
	return res.Checksum, err
}

func (m *Manager) importConverted(ctx context.Context, in Input, img formats.Image, name, kind string, warnings []string, progress func(Progress)) (*catalog.Disk, error) {
	info := img.Info()
	need, err := storedBytes(img)
	if err != nil {
		return nil, err
	}
	if err := m.checkSpace(need); err != nil {
		return nil, err
	}
	// On a sparse backend raw is already sparse: AEROSPAR's table would
	// only add a layer.
	target := formats.AeroSpar
	if m.sparse() {
		target = formats.Raw
	}
	d := m.newDisk(name, kind, target)
	d.SizeBytes = img.Size()
	d.SourceFileName, d.SourceFormat = in.Name(), string(info.Format)
	d.Warnings = warnings
	err = m.store(ctx, d, func(file File) error {
		crc, err := convertInto(ctx, img, target, file, progress)
		if err != nil {
			return err
		}
		d.Checksum = catalog.CRC32(checksum.Hex(crc))
		if info.Format == formats.Raw {
			d.SourceChecksum = d.Checksum // a raw file is its logical content
			return nil
		}
		// The uploaded file's own checksum needs every byte of it.
		r, err := in.Stream()
		if err != nil {
			return err
		}
		defer r.Close()
		crc, err = convert.CopyStream(ctx, r, discard{}, in.Size(), convertOptions(PhaseChecksum, progress))
		if err != nil {
			return err
		}
		d.SourceChecksum = catalog.CRC32(checksum.Hex(crc))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// copyInput copies the whole input into file and returns its CRC32, through
// the input's own fast path when it has one.
func copyInput(ctx context.Context, in Input, file File, opts convert.Options) (uint32, error) {
	if c, ok := in.(StreamCopier); ok {
		crc, err := c.CopyTo(ctx, file, convert.NewReporter(opts, in.Size()))
		if !errors.Is(err, ErrNoFastCopy) {
			return crc, err
		}
	}
	r, err := in.Stream()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return convert.CopyStream(ctx, r, file, in.Size(), opts)
}

// discard is an io.WriterAt that keeps nothing.
type discard struct{}

func (discard) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// storedBytes estimates what converting img into AEROSPAR stores: the
// header, table and padding up to data_offset, and its data extents rounded
// out to whole blocks.
func storedBytes(img formats.Image) (int64, error) {
	var n int64
	bs := int64(sparse.ChooseBlockSize(img.Size()))
	for e, err := range formats.Extents(img, 0, img.Size()) {
		if err != nil {
			return 0, err
		}
		if e.Kind == formats.Data {
			n += (e.End()+bs-1)/bs*bs - e.Off/bs*bs
		}
	}
	return sparse.FileSize(img.Size(), uint32(bs), (min(n, img.Size())+bs-1)/bs)
}

// store creates d's file, fills it with fill, and adds d to the catalog only
// when the file is complete. The file is pending from its first byte (a
// sweep never takes it while this tab lives) until the commit, which checks
// ctx under the catalog lock: an import cancelled before its commit stores
// nothing. On any failure the file is removed and the catalog is as it was.
func (m *Manager) store(ctx context.Context, d *catalog.Disk, fill func(File) error) (err error) {
	f, err := m.b.Create(d.FileName)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Discard()
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Flush(); err != nil {
		return err
	}
	if d.FileSizeBytes, err = f.Size(); err != nil {
		return err
	}
	d.StoredBytes = d.FileSizeBytes
	if s, ok := f.(StoredSizer); ok {
		if d.StoredBytes, err = s.StoredBytes(); err != nil {
			return err
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	return m.update(func(c *catalog.Catalog) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return c.Add(d)
	}, f.Finish)
}

func (m *Manager) newDisk(name, kind string, f formats.Format) *catalog.Disk {
	id := m.newID()
	now := m.nowMs()
	return &catalog.Disk{
		Source: catalog.SourceLocal,
		ID:     id, Name: strings.TrimSpace(name), Backend: m.b.Name(), Kind: kind, Format: string(f),
		FileName: id + "." + extension(f), CreatedAtMs: now, LastUsedAtMs: now,
	}
}

// extension is the file extension the existing Aero layout uses per format.
func extension(f formats.Format) string {
	if f == formats.Raw {
		return "img"
	}
	return string(f)
}

// checkSpace refuses an operation that would not fit in the storage quota.
// The browser's usage figure can read 0 after a restart with every disk
// still stored, so usage is at least what the catalog's disks take.
func (m *Manager) checkSpace(need int64) error {
	usage, quota, err := m.b.Estimate()
	if err != nil || quota <= 0 {
		return nil // unknown: let the writes decide
	}
	if cat, err := m.read(); err == nil {
		var stored int64
		for _, d := range cat.Disks {
			switch {
			case d.StoredBytes > 0:
				stored += d.StoredBytes
			case d.FileSizeBytes > 0:
				stored += d.FileSizeBytes
			}
		}
		usage = max(usage, stored)
	}
	if free := quota - usage; need > free {
		return &SpaceError{Need: need, Free: max(free, 0)}
	}
	return nil
}

func checkKind(kind, def string) (string, error) {
	switch kind {
	case "":
		return def, nil
	case catalog.KindHDD, catalog.KindCD, catalog.KindFloppy:
		return kind, nil
	}
	return "", diskerr.New("", catalog.ErrInvalid, "kind must be hdd, cd or floppy, not %q", kind)
}

// floppySizes are the capacities treated as floppies by default
// (floppyList, in order).
var floppySizes = func() map[int64]bool {
	m := map[int64]bool{}
	for _, s := range floppyList {
		m[s] = true
	}
	return m
}()

func defaultKind(f formats.Format, size int64) string {
	switch {
	case f == formats.ISO:
		return catalog.KindCD
	case f == formats.DC42 || floppySizes[size]:
		return catalog.KindFloppy
	}
	return catalog.KindHDD
}

// readOptions are the options every image is read with here: a DiskCopy
// image whose data checksum disagrees with its bytes (common in images
// made by old tools) is read, and its Info.Warnings say so, which the disk
// records.
func readOptions(o formats.Options) formats.Options {
	o.AcceptBadChecksum = true
	return o
}

// backingResolver finds backing files among the stored disks and hands
// them over as disks: read through their own stored format (an imported
// raw base stored as AEROSPAR gives its logical content, never its
// container bytes). It remembers what it resolved, for warnings.
type backingResolver struct {
	m        *Manager
	cat      *catalog.Catalog
	resolved map[string]*catalog.Disk // backing name → the disk used
}

// resolver finds backing files among the stored disks, by the disk's name
// or the name of the file it was imported from.
func (m *Manager) resolver(cat *catalog.Catalog) *backingResolver {
	return &backingResolver{m: m, cat: cat, resolved: map[string]*catalog.Disk{}}
}

func (r *backingResolver) resolve(parent, backing string) (formats.Source, error) {
	base := backing[strings.LastIndexAny(backing, `/\`)+1:]
	for _, d := range r.cat.List() {
		if d.Remote() {
			continue
		}
		if d.Name == backing || d.Name == base || d.SourceFileName == base {
			img, err := r.m.openImage(r.cat, d)
			if err != nil {
				return formats.Source{}, err
			}
			r.resolved[backing] = d
			return formats.Source{Name: d.ID, Image: img, Size: img.Size()}, nil
		}
	}
	return formats.Source{}, diskerr.New("", diskerr.ErrBackingNotFound, "backing file %q is not among the stored disks; import it first", backing)
}

// warnings says where an image declares its backing file in a format other
// than the one that stored disk came in: its disk content was used.
func (r *backingResolver) warnings(info formats.Info) []string {
	var out []string
	for in := &info; in != nil && in.BackingFile != ""; in = in.Backing {
		d := r.resolved[in.BackingFile]
		declared, _ := in.Details["backing-format"].(string)
		if d == nil || declared == "" {
			continue
		}
		was := d.SourceFormat
		if was == "" {
			was = d.Format
		}
		if declared != was {
			out = append(out, fmt.Sprintf("the image names its backing file %q as %s, but the stored disk %q came as %s: its disk content was used as the backing", in.BackingFile, declared, d.Name, was))
		}
	}
	return out
}

// openImage opens a stored disk's logical content: through its layers
// (layers.go) when it has any, else its file.
func (m *Manager) openImage(cat *catalog.Catalog, d *catalog.Disk) (formats.Image, error) {
	if d.Layers != nil || d.ParentID != "" {
		return m.openView(cat, d, headOf(d), false)
	}
	return m.openFileImage(cat, d)
}

// openFileImage opens a disk file's logical content through its format.
func (m *Manager) openFileImage(cat *catalog.Catalog, d *catalog.Disk) (formats.Image, error) {
	f, err := m.b.Open(d.FileName, false)
	if err != nil {
		return nil, err
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, err
	}
	res := m.resolver(cat)
	img, err := formats.Open(formats.Source{Name: d.ID, R: f, Size: size}, readOptions(formats.Options{Format: formats.Format(d.Format), Resolve: res.resolve}))
	if err != nil {
		f.Close()
		return nil, err
	}
	return &closing{Image: img, f: f}, nil
}

// openStored opens disk id's logical content, reading the catalog once for
// the disk's record and for any backing files it names.
func (m *Manager) openStored(id string) (*catalog.Disk, formats.Image, error) {
	cat, err := m.read()
	if err != nil {
		return nil, nil, err
	}
	d, err := cat.Get(id)
	if err != nil {
		return nil, nil, err
	}
	if d.Remote() {
		return nil, nil, &catalog.RemoteError{Name: d.Name}
	}
	img, err := m.openImage(cat, d)
	if err != nil {
		return nil, nil, err
	}
	return d, img, nil
}

type closing struct {
	formats.Image
	f File
}

func (c *closing) Close() error {
	err := c.Image.Close()
	if e := c.f.Close(); err == nil {
		err = e
	}
	return err
}

// convertOptions adapts a Progress callback for the convert package,
// adding the phase and the rate.
func convertOptions(phase string, progress func(Progress)) convert.Options {
	if progress == nil {
		return convert.Options{}
	}
	start := time.Now()
	return convert.Options{Progress: func(p convert.Progress) {
		rate := 0.0
		if s := time.Since(start).Seconds(); s > 0 {
			rate = float64(p.Done) / s
		}
		progress(Progress{Phase: phase, ProcessedBytes: p.Done, TotalBytes: p.Total, BytesPerSecond: rate})
	}}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
