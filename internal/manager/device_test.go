package manager_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"aerodisk/internal/catalog"
	"aerodisk/internal/dirstore"
	"aerodisk/internal/manager"
	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
	"aerodisk/internal/testutil"
)

// Block devices over the native directory backend. Two Managers over one
// directory are two tabs: the backend's locks (flock) are what keep one
// writer per disk across them, as OPFS handles and Web Locks do in the
// browser.

func randBytes(n int, seed uint64) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

// devLibrary is a store with one disk of each kind a device distinguishes.
type devLibrary struct {
	dir               string
	m                 *manager.Manager
	st                *dirstore.Store
	raw, spar, qcow   string // disk ids
	iso, cdRaw        string
	rawData, qcowData []byte
	catalogWrites     atomic.Int64
}

const devDiskSize = 6<<20 + 3*512

func newDevLibrary(t *testing.T, sparseFiles bool) *devLibrary {
	t.Helper()
	ctx := context.Background()
	l := &devLibrary{dir: t.TempDir()}
	l.m, l.st = newManager(t, l.dir)
	l.st.SparseFiles = sparseFiles
	src := t.TempDir()
	l.rawData = testutil.MixedData(devDiskSize, 3)
	rawPath := testutil.WriteFile(t, src, "disk.img", l.rawData)
	d, err := l.m.Import(ctx, input(t, rawPath), manager.ImportOptions{Name: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	l.raw = d.ID
	if d, err = l.m.CreateBlank(ctx, manager.BlankOptions{Name: "blank", SizeBytes: devDiskSize}); err != nil {
		t.Fatal(err)
	}
	l.spar = d.ID
	want := "aerospar"
	if sparseFiles {
		want = "raw" // a sparse backend's blank disk (docs/idb.md)
	}
	if d.Format != want {
		t.Fatalf("blank disk stored as %s, want %s", d.Format, want)
	}
	l.qcowData = testutil.MixedData(devDiskSize, 4)
	qraw := testutil.WriteFile(t, src, "q.img", l.qcowData)
	qcow := filepath.Join(src, "q.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", qraw, qcow)
	if d, err = l.m.Import(ctx, input(t, qcow), manager.ImportOptions{Name: "qcow"}); err != nil || d.Format != "qcow2" {
		t.Fatalf("qcow2 import: %+v, %v", d, err)
	}
	l.qcow = d.ID
	content := filepath.Join(src, "iso-content")
	os.MkdirAll(content, 0o755)
	os.WriteFile(filepath.Join(content, "readme.txt"), []byte("a CD"), 0o644)
	iso := filepath.Join(src, "disc.iso")
	testutil.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-o", iso, content)
	if d, err = l.m.Import(ctx, input(t, iso), manager.ImportOptions{Name: "disc"}); err != nil || d.Kind != catalog.KindCD {
		t.Fatalf("iso import: %+v, %v", d, err)
	}
	l.iso = d.ID
	if d, err = l.m.Import(ctx, input(t, rawPath), manager.ImportOptions{Name: "raw cd", Kind: catalog.KindCD}); err != nil {
		t.Fatal(err)
	}
	l.cdRaw = d.ID
	l.st.Faults = func(op dirstore.Op, name string) error {
		if op == dirstore.OpWriteCatalog {
			l.catalogWrites.Add(1)
		}
		return nil
	}
	return l
}

// tab is another Manager over the library's directory: another tab.
func (l *devLibrary) tab(t *testing.T) *manager.Manager {
	t.Helper()
	m, _ := newManager(t, l.dir)
	return m
}

func open(t *testing.T, m *manager.Manager, id string, o manager.DeviceOptions) *manager.Device {
	t.Helper()
	d, err := m.OpenDisk(context.Background(), id, o)
	if err != nil {
		t.Fatalf("OpenDisk(%s, %+v): %v", id, o, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func wantKind(t *testing.T, what string, err error, want manager.ErrorKind) {
	t.Helper()
	if got := manager.KindOf(err); err == nil || got != want {
		t.Errorf("%s: %v (kind %v), want kind %v", what, err, got, want)
	}
}

func checksumOf(t *testing.T, m *manager.Manager, id string) *catalog.Checksum {
	t.Helper()
	d, err := m.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return d.Checksum
}

// TestDeviceModel writes a raw and an AEROSPAR disk (and, on a sparse
// store, its raw blank disk) through devices with a random sequence of
// writes, discards and reads against a model: the device reads the model
// at every step, the export after Close is the model, verifyDisk records
// its checksum and the AEROSPAR file stays a valid image.
func TestDeviceModel(t *testing.T) {
	for _, sparseFiles := range []bool{false, true} {
		name := "dense"
		if sparseFiles {
			name = "sparse"
		}
		t.Run(name, func(t *testing.T) {
			l := newDevLibrary(t, sparseFiles)
			for _, c := range []struct {
				id    string
				model []byte
			}{{l.raw, bytes.Clone(l.rawData)}, {l.spar, make([]byte, devDiskSize)}} {
				meta, _ := l.m.Get(c.id)
				t.Run(meta.Format, func(t *testing.T) { deviceModel(t, l, c.id, c.model) })
			}
		})
	}
}

func deviceModel(t *testing.T, l *devLibrary, id string, model []byte) {
	dev := open(t, l.m, id, manager.DeviceOptions{Writable: true})
	if dev.Size() != int64(len(model)) || dev.ReadOnly() || dev.DiskID() != id || dev.SectorSize() != 512 {
		t.Fatalf("device: size %d read-only %v id %s sector %d", dev.Size(), dev.ReadOnly(), dev.DiskID(), dev.SectorSize())
	}
	r := rand.New(rand.NewPCG(uint64(len(id)), 5))
	sectors := int64(len(model) / 512)
	for i := range 300 {
		n := 1 + r.Int64N(min(sectors, 2<<20/512))
		if r.IntN(2) == 0 {
			n = 1 + r.Int64N(16)
		}
		off, size := r.Int64N(sectors-n+1)*512, n*512
		switch r.IntN(6) {
		case 0, 1, 2:
			p := randBytes(int(size), uint64(i))
			if _, err := dev.WriteAt(p, off); err != nil {
				t.Fatalf("op %d: write: %v", i, err)
			}
			copy(model[off:], p)
		case 3:
			if err := dev.Discard(off, size); err != nil {
				t.Fatalf("op %d: discard: %v", i, err)
			}
			clear(model[off : off+size])
		case 4:
			got := make([]byte, size)
			if _, err := dev.ReadAt(got, off); err != nil || !bytes.Equal(got, model[off:off+size]) {
				t.Fatalf("op %d: read [%d,+%d) differs from the model (%v)", i, off, size, err)
			}
		case 5:
			if err := dev.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exportBytes(t, l.m, id, false), model) {
		t.Fatal("the export differs from what was written")
	}
	d, _ := l.m.Get(id)
	if fi, err := os.Stat(filepath.Join(l.dir, d.FileName)); err != nil || fi.Size() != d.FileSizeBytes {
		t.Errorf("after close the record says fileSizeBytes %d, the file has %v (%v)", d.FileSizeBytes, fi.Size(), err)
	}
	if d.Format == "aerospar" {
		f, _ := os.Open(filepath.Join(l.dir, d.FileName))
		defer f.Close()
		fi, _ := f.Stat()
		if _, err := sparse.OpenReader(f, fi.Size()); err != nil {
			t.Errorf("the AEROSPAR file after writes: %v", err)
		}
	}
	v, err := l.m.Verify(context.Background(), id, nil)
	if err != nil || !v.OK || !v.Recorded || v.Checksum != crcHex(model) {
		t.Errorf("verify after writes: %+v, %v; want recorded %s", v, err, crcHex(model))
	}
	if c := checksumOf(t, l.m, id); c == nil || c.Stale || c.Value != crcHex(model) {
		t.Errorf("checksum after verify: %+v", c)
	}
}

// TestDeviceStaleChecksum: opening and reading change nothing in the
// catalog; the first write (not a refused one) marks the checksum stale in
// one catalog write before it is made, later writes write no catalog, and
// a raw disk's close rewrites nothing; verify clears it.
func TestDeviceStaleChecksum(t *testing.T) {
	l := newDevLibrary(t, false)
	before := checksumOf(t, l.m, l.raw)
	dev := open(t, l.m, l.raw, manager.DeviceOptions{Writable: true})
	buf := make([]byte, 4096)
	if _, err := dev.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.WriteAt(buf[:100], 0); err == nil {
		t.Fatal("a misaligned write was accepted")
	}
	if _, err := dev.WriteAt(buf, devDiskSize); err == nil {
		t.Fatal("a write past the end was accepted")
	}
	if n := l.catalogWrites.Load(); n != 0 {
		t.Errorf("opening, reading and refused writes wrote the catalog %d times", n)
	}
	if c := checksumOf(t, l.m, l.raw); c.Stale {
		t.Error("stale before any write")
	}
	if _, err := dev.WriteAt(randBytes(4096, 1), 8192); err != nil {
		t.Fatal(err)
	}
	if n := l.catalogWrites.Load(); n != 1 {
		t.Errorf("the first write wrote the catalog %d times, want 1", n)
	}
	c := checksumOf(t, l.tab(t), l.raw) // as another tab reads it
	if !c.Stale || c.Value != before.Value || c.Algorithm != "crc32" {
		t.Errorf("checksum after a write: %+v (was %+v)", c, before)
	}
	b, _ := os.ReadFile(filepath.Join(l.dir, "metadata.json"))
	if !strings.Contains(string(b), `"stale":true`) {
		t.Errorf("metadata.json has no stale checksum: %s", b)
	}
	for i := range 5 {
		dev.WriteAt(randBytes(512, uint64(i)), int64(i)*512)
		dev.Discard(1<<20, 4096)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if n := l.catalogWrites.Load(); n != 1 {
		t.Errorf("later writes and the close wrote the catalog %d more times", n-1)
	}
	want := crcHex(exportBytes(t, l.m, l.raw, false))
	v, err := l.m.Verify(context.Background(), l.raw, nil)
	if err != nil || !v.OK || !v.Recorded || v.Checksum != want {
		t.Errorf("verify: %+v, %v", v, err)
	}
	if c := checksumOf(t, l.m, l.raw); c.Stale || c.Value != want {
		t.Errorf("checksum after verify: %+v, want %s", c, want)
	}
	if !strings.Contains(string(b), `"checksum":{"algorithm":"crc32","value":"`) {
		t.Errorf("the checksum's fields moved: %s", b)
	}
	// A second verify verifies.
	if v, err := l.m.Verify(context.Background(), l.raw, nil); err != nil || !v.OK || v.Recorded {
		t.Errorf("second verify: %+v, %v", v, err)
	}
	// A device that never writes leaves the checksum alone.
	ro := open(t, l.m, l.raw, manager.DeviceOptions{})
	ro.Close()
	rw := open(t, l.m, l.raw, manager.DeviceOptions{Writable: true})
	rw.Close()
	if c := checksumOf(t, l.m, l.raw); c.Stale {
		t.Error("a device without writes made the checksum stale")
	}
}

// TestDeviceSparseFileLength: an AEROSPAR disk's record never says its
// file is shorter than it is while a device writes it (the IndexedDB
// backend opens a file at the length its record says), even when the
// writer dies; Close records the exact length.
func TestDeviceSparseFileLength(t *testing.T) {
	l := newDevLibrary(t, false)
	dev := open(t, l.m, l.spar, manager.DeviceOptions{Writable: true})
	meta, _ := l.m.Get(l.spar)
	path := filepath.Join(l.dir, meta.FileName)
	for i := range 64 {
		if _, err := dev.WriteAt(randBytes(64<<10, uint64(i)), int64(i)*(96<<10)); err != nil {
			t.Fatal(err)
		}
		d, _ := l.m.Get(l.spar)
		if fi, _ := os.Stat(path); fi.Size() > d.FileSizeBytes {
			t.Fatalf("write %d: the file has %d bytes, its record says %d", i, fi.Size(), d.FileSizeBytes)
		}
	}
	if err := dev.Flush(); err != nil {
		t.Fatal(err)
	}
	// The tab dies: nothing is closed or recorded.
	l.st.Kill()
	m := l.tab(t)
	d, _ := m.Get(l.spar)
	if fi, _ := os.Stat(path); fi.Size() > d.FileSizeBytes {
		t.Fatalf("after the writer died the file has %d bytes, its record says %d", fi.Size(), d.FileSizeBytes)
	}
	if c := d.Checksum; c == nil || !c.Stale {
		t.Errorf("after the writer died the checksum is %+v, want stale", c)
	}
	dev2 := open(t, m, l.spar, manager.DeviceOptions{Writable: true})
	dev2.WriteAt(randBytes(512, 99), 0)
	if err := dev2.Close(); err != nil {
		t.Fatal(err)
	}
	d, _ = m.Get(l.spar)
	if fi, _ := os.Stat(path); fi.Size() != d.FileSizeBytes || d.StoredBytes != fi.Size() {
		t.Errorf("after close: file %d bytes, record fileSizeBytes %d storedBytes %d", fi.Size(), d.FileSizeBytes, d.StoredBytes)
	}
}

// TestDeviceDurableAfterFlush: what a flush acknowledged is in the file
// after the tab dies without closing anything.
func TestDeviceDurableAfterFlush(t *testing.T) {
	l := newDevLibrary(t, false)
	for _, id := range []string{l.raw, l.spar} {
		dev := open(t, l.m, id, manager.DeviceOptions{Writable: true})
		p := randBytes(1<<20, 7)
		if _, err := dev.WriteAt(p, 1<<20); err != nil {
			t.Fatal(err)
		}
		if err := dev.Flush(); err != nil {
			t.Fatal(err)
		}
		want := exportAfterKill(t, l, id)
		if !bytes.Equal(want[1<<20:2<<20], p) {
			t.Errorf("%s: the flushed write is not there after the tab died", id)
		}
	}
}

// exportAfterKill kills the library's store (its tab) and exports id from a
// new one; the library goes on in that one.
func exportAfterKill(t *testing.T, l *devLibrary, id string) []byte {
	t.Helper()
	l.st.Kill()
	l.m, l.st = newManager(t, l.dir)
	return exportBytes(t, l.m, id, false)
}

// TestDeviceRefusals: read-only formats, CDs, the overlay mode, bad modes,
// bad ranges, closed devices, remote disks.
func TestDeviceRefusals(t *testing.T) {
	l := newDevLibrary(t, false)
	ctx := context.Background()
	_, err := l.m.OpenDisk(ctx, l.qcow, manager.DeviceOptions{Writable: true})
	wantKind(t, "writable direct qcow2", err, manager.KindInvalid)
	var nw *manager.NotWritableError
	if !errors.As(err, &nw) || nw.Format != "qcow2" || nw.Name != "qcow" {
		t.Errorf("writable direct qcow2: %#v", err)
	}
	_, err = l.m.OpenDisk(ctx, l.iso, manager.DeviceOptions{Writable: true})
	wantKind(t, "writable ISO CD", err, manager.KindReadOnly)
	_, err = l.m.OpenDisk(ctx, l.cdRaw, manager.DeviceOptions{Writable: true})
	wantKind(t, "writable raw CD", err, manager.KindReadOnly)
	_, err = l.m.OpenDisk(ctx, l.cdRaw, manager.DeviceOptions{Writable: true, Mode: manager.ModeOverlay})
	wantKind(t, "writable overlay of a CD", err, manager.KindReadOnly)
	// Read-only mode "overlay" before the disk has a default overlay reads
	// the base itself (the same bytes) and makes nothing.
	if ro, err := l.m.OpenDisk(ctx, l.raw, manager.DeviceOptions{Mode: manager.ModeOverlay}); err != nil || ro.DiskID() != l.raw {
		t.Errorf("read-only overlay mode: %v", err)
	} else {
		ro.Close()
	}
	_, err = l.m.OpenDisk(ctx, l.raw, manager.DeviceOptions{Mode: "cow"})
	wantKind(t, "mode cow", err, manager.KindInvalid)
	_, err = l.m.OpenDisk(ctx, "nope", manager.DeviceOptions{})
	wantKind(t, "no such disk", err, manager.KindNotFound)

	// Read-only devices of every format read the logical content and refuse
	// writes with ErrReadOnly.
	q := open(t, l.m, l.qcow, manager.DeviceOptions{})
	got := make([]byte, devDiskSize)
	if _, err := q.ReadAt(got, 0); err != nil || !bytes.Equal(got, l.qcowData) {
		t.Errorf("qcow2 device read: %v", err)
	}
	_, err = q.WriteAt(make([]byte, 512), 0)
	wantKind(t, "write to a read-only qcow2 device", err, manager.KindReadOnly)
	wantKind(t, "discard on a read-only device", q.Discard(0, 512), manager.KindReadOnly)
	_, err = q.WriteAt(make([]byte, 100), 0)
	wantKind(t, "misaligned write to a read-only device", err, manager.KindInvalid)
	if !q.ReadOnly() {
		t.Error("a read-only device says it is writable")
	}
	cd := open(t, l.m, l.iso, manager.DeviceOptions{})
	sector := make([]byte, 2048)
	if _, err := cd.ReadAt(sector, 16*2048); err != nil || string(sector[1:6]) != "CD001" {
		t.Errorf("the CD's volume descriptor: %q, %v", sector[:8], err)
	}
	ro := open(t, l.m, l.raw, manager.DeviceOptions{})
	_, err = ro.WriteAt(make([]byte, 512), 0)
	wantKind(t, "write to a read-only raw device", err, manager.KindReadOnly)

	dev := open(t, l.m, l.spar, manager.DeviceOptions{Writable: true})
	for _, r := range []struct{ off, n int64 }{{1, 512}, {0, 511}, {0, 0}, {-512, 512}, {devDiskSize, 512}, {devDiskSize - 512, 1024}} {
		if r.n > 0 {
			_, err := dev.ReadAt(make([]byte, r.n), r.off)
			wantKind(t, "read", err, manager.KindInvalid)
			_, err = dev.WriteAt(make([]byte, r.n), r.off)
			wantKind(t, "write", err, manager.KindInvalid)
		}
		wantKind(t, "discard", dev.Discard(r.off, r.n), manager.KindInvalid)
	}
	if c := checksumOf(t, l.m, l.spar); c.Stale {
		t.Error("refused writes made the checksum stale")
	}
	dev.Close()
	_, err = dev.ReadAt(make([]byte, 512), 0)
	wantKind(t, "read after close", err, manager.KindInvalid)
	_, err = dev.WriteAt(make([]byte, 512), 0)
	wantKind(t, "write after close", err, manager.KindInvalid)
	wantKind(t, "flush after close", dev.Flush(), manager.KindInvalid)
	if err := dev.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// TestDeviceOneWriter: one writer per disk, in one manager and across
// managers over one directory (tabs); readers share a disk nobody writes.
func TestDeviceOneWriter(t *testing.T) {
	l := newDevLibrary(t, false)
	ctx := context.Background()
	other := l.tab(t)
	w := open(t, l.m, l.raw, manager.DeviceOptions{Writable: true})
	_, err := l.m.OpenDisk(ctx, l.raw, manager.DeviceOptions{Writable: true})
	wantKind(t, "a second writer here", err, manager.KindInUse)
	var de *manager.DeviceOpenError
	if !errors.As(err, &de) || !de.Writable || de.Name != "raw" {
		t.Errorf("a second writer here: %#v", err)
	}
	_, err = l.m.OpenDisk(ctx, l.raw, manager.DeviceOptions{})
	wantKind(t, "a reader beside a writer here", err, manager.KindInUse)
	_, err = other.OpenDisk(ctx, l.raw, manager.DeviceOptions{Writable: true})
	wantKind(t, "a writer in another tab", err, manager.KindInUse)
	_, err = other.OpenDisk(ctx, l.raw, manager.DeviceOptions{})
	wantKind(t, "a reader in another tab", err, manager.KindInUse)
	// Another disk is free.
	open(t, other, l.spar, manager.DeviceOptions{Writable: true}).Close()
	w.Close()

	r1 := open(t, l.m, l.raw, manager.DeviceOptions{})
	r2 := open(t, l.m, l.raw, manager.DeviceOptions{})
	r3 := open(t, other, l.raw, manager.DeviceOptions{})
	for _, r := range []*manager.Device{r1, r2, r3} {
		got := make([]byte, 4096)
		if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, l.rawData[:4096]) {
			t.Errorf("a shared reader: %v", err)
		}
	}
	_, err = other.OpenDisk(ctx, l.raw, manager.DeviceOptions{Writable: true})
	wantKind(t, "a writer beside readers in another tab", err, manager.KindInUse)
	_, err = l.m.OpenDisk(ctx, l.raw, manager.DeviceOptions{Writable: true})
	wantKind(t, "a writer beside readers here", err, manager.KindInUse)
	r1.Close()
	r2.Close()
	r3.Close()
	open(t, other, l.raw, manager.DeviceOptions{Writable: true}).Close()
}

// TestDeviceBlocksCatalogOps: deleting, renaming, exporting or verifying a
// disk open for writing is ErrInUse, here and from another tab; a reader
// blocks only a delete here, and nothing of another tab's but a delete.
func TestDeviceBlocksCatalogOps(t *testing.T) {
	l := newDevLibrary(t, false)
	ctx := context.Background()
	other := l.tab(t)
	w := open(t, l.m, l.raw, manager.DeviceOptions{Writable: true})
	for _, m := range []*manager.Manager{l.m, other} {
		wantKind(t, "delete", m.Delete(l.raw), manager.KindInUse)
		_, err := m.Rename(l.raw, "renamed")
		wantKind(t, "rename", err, manager.KindInUse)
		wantKind(t, "export", m.Export(ctx, l.raw, manager.ExportOptions{}, &bytes.Buffer{}), manager.KindInUse)
		_, err = m.Exportable(l.raw)
		if m == l.m {
			wantKind(t, "exportable", err, manager.KindInUse)
		}
		_, err = m.Verify(ctx, l.raw, nil)
		wantKind(t, "verify", err, manager.KindInUse)
	}
	// Other disks are not affected.
	if _, err := l.m.Rename(l.spar, "renamed blank"); err != nil {
		t.Errorf("renaming another disk: %v", err)
	}
	w.Close()
	if d, _ := l.m.Get(l.raw); d.Name != "raw" {
		t.Errorf("the disk was renamed to %q while open for writing", d.Name)
	}

	r := open(t, l.m, l.raw, manager.DeviceOptions{})
	wantKind(t, "delete beside a reader here", l.m.Delete(l.raw), manager.KindInUse)
	wantKind(t, "delete beside a reader in another tab", other.Delete(l.raw), manager.KindInUse)
	for _, m := range []*manager.Manager{l.m, other} {
		if _, err := m.Rename(l.raw, "read, renamed"); err != nil {
			t.Errorf("rename beside a reader: %v", err)
		}
		if b := exportBytes(t, m, l.raw, false); !bytes.Equal(b, l.rawData) {
			t.Error("export beside a reader")
		}
	}
	r.Close()
	if err := other.Delete(l.raw); err != nil {
		t.Errorf("delete once closed: %v", err)
	}
}

// TestDeviceCompactsInSteps: an AEROSPAR disk's discards free blocks at
// once and leave the moves to a background compaction in steps, between
// which the device answers requests (each step here is one block, and
// every yield serves a read and a write against the model); the data stays
// the model's throughout, and once the compaction ends — or the device
// closes — Aero's browser reader accepts the file.
func TestDeviceCompactsInSteps(t *testing.T) {
	dir := t.TempDir()
	m, _ := newManager(t, dir)
	const size = 16 << 20
	blank, err := m.CreateBlank(context.Background(), manager.BlankOptions{Name: "blank", SizeBytes: size})
	if err != nil || blank.Format != "aerospar" {
		t.Fatalf("blank: %+v %v", blank, err)
	}
	m.StepBudget = time.Nanosecond // one move per step
	dev := open(t, m, blank.ID, manager.DeviceOptions{Writable: true})
	r := rand.New(rand.NewPCG(5, 6))
	model := randBytes(size, 8)
	if _, err := dev.WriteAt(model, 0); err != nil {
		t.Fatal(err)
	}
	bs := int64(blockSizeOf(t, m, dir, blank.ID))
	var yields, served atomic.Int64
	var mu sync.Mutex // the model, shared with the yields
	check := func(off, n int64) {
		got := make([]byte, n)
		if _, err := dev.ReadAt(got, off); err != nil {
			t.Error(err)
			return
		}
		if !bytes.Equal(got, model[off:off+n]) {
			t.Errorf("reading [%d,+%d) between compaction steps: not the model's bytes", off, n)
		}
	}
	m.Yield = func() {
		yields.Add(1)
		mu.Lock()
		defer mu.Unlock()
		// The upper half: a write into a freed block would fill its slot
		// and save a move.
		off := size/2 + r.Int64N(size/2/512-8)*512
		check(off, 4096)
		p := randBytes(4096, uint64(off))
		if _, err := dev.WriteAt(p, off); err != nil {
			t.Error(err)
			return
		}
		copy(model[off:], p)
		served.Add(1)
	}
	// The lower half at once: each freed block takes a move.
	mu.Lock()
	if err := dev.Discard(0, size/2); err != nil {
		t.Fatal(err)
	}
	clear(model[:size/2])
	holes := int(size / 2 / bs)
	mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		pending := sparseFreed(t, m, dir, blank.ID)
		mu.Unlock()
		if !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background compaction never ended")
		}
		time.Sleep(time.Millisecond)
	}
	if holes < 4 || yields.Load() < int64(holes)-1 || served.Load() < int64(holes)-1 {
		t.Fatalf("%d holes: the compaction yielded %d times, %d requests served between steps", holes, yields.Load(), served.Load())
	}
	m.Yield = nil
	check(0, size)
	// A discard right before the close: Close compacts what is left.
	if err := dev.Discard(0, bs); err != nil {
		t.Fatal(err)
	}
	clear(model[:bs])
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	f, fsize := diskFile(t, m, dir, blank.ID)
	if err := testutil.AeroCheck(f, fsize); err != nil {
		t.Fatalf("after the close Aero refuses the file: %v", err)
	}
	var buf bytes.Buffer
	if err := m.Export(context.Background(), blank.ID, manager.ExportOptions{}, &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), model) {
		t.Fatal("the export after the compaction is not the model")
	}
}

// diskFile is disk id's stored file as it is, and its size.
// (read from the directory: a writer holds it).
func diskFile(t *testing.T, m *manager.Manager, dir, id string) (*bytes.Reader, int64) {
	t.Helper()
	d, _ := m.Get(id)
	b, err := os.ReadFile(filepath.Join(dir, d.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b), int64(len(b))
}

func blockSizeOf(t *testing.T, m *manager.Manager, dir, id string) uint32 {
	t.Helper()
	r, n := diskFile(t, m, dir, id)
	s, err := sparse.OpenReader(r, n)
	if err != nil {
		t.Fatal(err)
	}
	return s.BlockSize()
}

// sparseFreed reports freed slots in disk id's AEROSPAR file (the file
// read as it is: allocated_blocks above the mapped entries).
func sparseFreed(t *testing.T, m *manager.Manager, dir, id string) bool {
	t.Helper()
	r, n := diskFile(t, m, dir, id)
	s, err := sparse.OpenReader(r, n)
	if err != nil {
		return true // read while a step wrote it: look again
	}
	return s.MappedBlocks() < s.AllocatedBlocks()
}

// TestCompactSparseDisk: an AEROSPAR file with freed slots (as a killed
// tab leaves it) is compacted by CompactDisk in steps with progress: Aero's
// browser reader accepts it afterwards, it reads the same, the record has
// its new length, and a second compaction finds nothing to do.
func TestCompactSparseDisk(t *testing.T) {
	dir := t.TempDir()
	m, _ := newManager(t, dir)
	ctx := context.Background()
	const size = 8 << 20
	blank, err := m.CreateBlank(ctx, manager.BlankOptions{Name: "blank", SizeBytes: size})
	if err != nil {
		t.Fatal(err)
	}
	model := randBytes(size, 3)
	// A tab that wrote, discarded, and died before compacting.
	f, err := os.OpenFile(filepath.Join(dir, blank.FileName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := sparse.OpenPaced(storage.File{File: f})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sd.WriteAt(model, 0); err != nil {
		t.Fatal(err)
	}
	bs := int64(sd.BlockSize())
	for off := int64(0); off < size/2; off += 2 * bs {
		if err := sd.Discard(off, bs); err != nil {
			t.Fatal(err)
		}
		clear(model[off : off+bs])
	}
	if !sd.CompactionPending() {
		t.Fatal("no freed slot to compact")
	}
	f.Close() // killed: no Close of the image
	var last manager.Progress
	res, err := m.CompactDisk(ctx, blank.ID, func(p manager.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 1 || res.ReclaimedBytes < bs || last.Phase != manager.PhaseCompact || last.TotalBytes == 0 {
		t.Fatalf("compaction %+v, last progress %+v", res, last)
	}
	r, n := diskFile(t, m, dir, blank.ID)
	if err := testutil.AeroCheck(r, n); err != nil {
		t.Fatalf("Aero refuses the compacted file: %v", err)
	}
	if d, _ := m.Get(blank.ID); d.FileSizeBytes != n {
		t.Fatalf("recorded length %d, file %d", d.FileSizeBytes, n)
	}
	var buf bytes.Buffer
	if err := m.Export(ctx, blank.ID, manager.ExportOptions{}, &buf); err != nil || !bytes.Equal(buf.Bytes(), model) {
		t.Fatalf("export after compaction differs (%v)", err)
	}
	if again, err := m.CompactDisk(ctx, blank.ID, nil); err != nil || again.Files != 0 {
		t.Fatalf("a second compaction: %+v, %v", again, err)
	}
}
