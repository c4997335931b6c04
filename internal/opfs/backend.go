//go:build js && wasm

package opfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
)

// The layout of the existing Aero disk manager, and this manager's own
// names in it (docs/browser.md, "Durability").
const (
	MetadataName = "metadata.json"
	metadataTemp = "metadata.json.tmp"
	metadataPrev = "metadata.json.prev"    // the generation before metadata.json
	metadataKept = "metadata.json.damaged" // an unusable catalog's bytes, kept
	// PendingSuffix names a disk file still being written:
	// <fileName>.aerodisk-partial, renamed to fileName at its commit.
	PendingSuffix = ".aerodisk-partial"
	lockName      = "aerodisk-metadata" // Web Lock: shared to read the catalog, exclusive to change it
	leasePrefix   = "aerodisk-lease-"   // + file name: Web Lock held while a pending file's tab lives
)

// Backend is a manager.Backend over an OPFS directory (aero/disks).
type Backend struct {
	dir jsutil.Dir // aero/disks

	mu sync.Mutex
	// prevWrite ends when the copy of the catalog a commit replaced is
	// written (metadata.json.prev); the catalog lock is let go after it.
	prevWrite chan error
}

// Open returns the backend over navigator.storage.getDirectory()/aero/disks,
// creating the directories.
func Open() (*Backend, error) {
	dir, err := jsutil.DisksDir()
	if err != nil {
		return nil, fmt.Errorf("opening OPFS aero/disks: %w", err)
	}
	return &Backend{dir: dir}, nil
}

// Supported reports whether sync access handles exist here.
func Supported() bool {
	return jsutil.OPFSSupported()
}

func (b *Backend) Name() string { return "opfs" }

// exists reports whether the directory has an entry called name.
func (b *Backend) exists(name string) (bool, error) {
	return jsutil.Exists(b.dir, name)
}

// Create takes the file's lease, then creates <name>.aerodisk-partial.
func (b *Backend) Create(name string) (manager.NewFile, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if ok, err := b.exists(name); err != nil || ok {
		if err == nil {
			err = diskerr.New("", catalog.ErrInvalid, "%s already exists", name)
		}
		return nil, err
	}
	release, err := jsutil.TryLock(leasePrefix+name, true)
	if err != nil {
		return nil, err
	}
	if release == nil {
		return nil, diskerr.New("", manager.ErrInUse, "%s is being written in another tab", name)
	}
	h, err := jsutil.CreateFile(b.dir, name+PendingSuffix)
	if err != nil {
		release()
		return nil, mapErr(name, err)
	}
	return &pendingFile{File: &File{name: name, h: h, writable: true}, b: b, release: release}, nil
}

func (b *Backend) Open(name string, writable bool) (manager.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	h, err := jsutil.OpenFile(b.dir, name, writable, false)
	if err != nil {
		return nil, mapErr(name, err)
	}
	return &File{name: name, h: h, writable: writable}, nil
}

func (b *Backend) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return b.remove(name)
}

func (b *Backend) remove(name string) error {
	err := jsutil.RemoveFile(b.dir, name)
	if jsutil.IsDOM(err, "NotFoundError") {
		return nil
	}
	return mapErr(name, err)
}

// entries lists the directory's file names.
func (b *Backend) entries() ([]string, error) {
	return jsutil.ListFiles(b.dir)
}

func (b *Backend) Files() ([]string, error) {
	all, err := b.entries()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range all {
		if !strings.HasPrefix(s, MetadataName) && !strings.HasPrefix(s, ".") && !strings.HasSuffix(s, PendingSuffix) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Abandoned lists pending files whose lease no tab holds.
func (b *Backend) Abandoned() ([]string, error) {
	all, err := b.entries()
	if err != nil {
		return nil, err
	}
	held, err := jsutil.HeldLocks()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range all {
		if name, ok := strings.CutSuffix(s, PendingSuffix); ok && !held[leasePrefix+name] {
			out = append(out, name)
		}
	}
	return out, nil
}

// Settle moves an abandoned pending file into place, or removes it.
func (b *Backend) Settle(name string, keep bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !keep {
		return b.remove(name + PendingSuffix)
	}
	if ok, err := b.exists(name); err != nil || ok {
		if err == nil {
			err = diskerr.New("", catalog.ErrInvalid, "%s already exists", name)
		}
		return err
	}
	err := jsutil.RenameFile(b.dir, name+PendingSuffix, name)
	return mapErr(name, err)
}

// LockCatalog takes the Web Lock every tab's catalog access goes through.
func (b *Backend) LockCatalog(exclusive bool) (func(), error) {
	release, err := jsutil.Lock(lockName, exclusive)
	if err != nil {
		return nil, err
	}
	return func() {
		if w := b.takePrevWrite(); w != nil {
			go func() { <-w; release() }()
			return
		}
		release()
	}, nil
}

func (b *Backend) takePrevWrite() chan error {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.prevWrite
	b.prevWrite = nil
	return w
}

// CatalogGenerations reads metadata.json (and, all, metadata.json.tmp and
// metadata.json.prev).
func (b *Backend) CatalogGenerations(all bool) ([]manager.Generation, error) {
	var gens []manager.Generation
	names := []string{MetadataName, metadataTemp, metadataPrev}
	if !all {
		names = names[:1]
	}
	for _, name := range names {
		g := manager.Generation{Name: name}
		text, err := jsutil.ReadText(b.dir, name)
		switch {
		case jsutil.IsDOM(err, "NotFoundError"):
			g.Missing = true
		case err != nil:
			g.Err = err
		default:
			g.Data = []byte(text)
		}
		gens = append(gens, g)
	}
	return gens, nil
}

// KeptCatalogName is where an unusable catalog's bytes are kept.
func (b *Backend) KeptCatalogName() string { return metadataKept }

// WriteCatalog keeps the replaced metadata.json (as metadata.json.prev when
// it was a catalog, as metadata.json.damaged when not), writes the new one
// to metadata.json.tmp through a sync access handle (flushed, closed) and
// moves it over metadata.json. Readers hold the shared lock, so none sees
// the move half done.
//
// The copy and the new catalog are written at once (each is a few round
// trips to the browser's file system). An unusable catalog's bytes are
// kept before the move (nothing is deleted on absence of evidence); a good
// one's copy is only a spare for recovery, so the commit returns without
// waiting for it and the catalog lock is let go once it is written.
func (b *Backend) WriteCatalog(old manager.Generation, oldCat, next *catalog.Catalog) error {
	if w := b.takePrevWrite(); w != nil {
		<-w // a second commit under one lock (a rollback)
	}
	data, err := next.Marshal()
	if err != nil {
		return err
	}
	kept := make(chan error, 1)
	keep := ""
	if len(old.Data) > 0 && old.Name == MetadataName {
		keep = metadataKept
		if oldCat != nil {
			keep = metadataPrev
		}
		go func() { kept <- b.writeWhole(keep, old.Data) }()
	} else {
		kept <- nil
	}
	err = b.writeWhole(metadataTemp, data)
	if keep == metadataPrev {
		b.mu.Lock()
		b.prevWrite = kept
		b.mu.Unlock()
		if err != nil {
			return err
		}
	} else if err := errors.Join(<-kept, err); err != nil {
		return err
	}
	if err := jsutil.ReplaceFile(b.dir, metadataTemp, MetadataName); err != nil {
		return fmt.Errorf("replacing %s: %w", MetadataName, err)
	}
	return nil
}

// writeWhole replaces the content of name (created if missing) with data,
// flushed.
func (b *Backend) writeWhole(name string, data []byte) error {
	h, err := jsutil.OpenFile(b.dir, name, true, true)
	if err != nil {
		return mapErr(name, err)
	}
	f := &File{name: name, h: h, writable: true}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(data, 0)
	}
	if err == nil {
		err = f.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pendingFile is a file from Create, written as <name>.aerodisk-partial
// while its lease is held.
type pendingFile struct {
	*File
	b       *Backend
	release func()
	ended   bool
}

func (p *pendingFile) Finish() error {
	if p.ended {
		return fmt.Errorf("%s: already finished or discarded", p.name)
	}
	if err := p.File.Close(); err != nil {
		return err
	}
	if err := jsutil.RenameFile(p.b.dir, p.name+PendingSuffix, p.name); err != nil {
		return mapErr(p.name, err)
	}
	p.ended = true
	p.release()
	return nil
}

func (p *pendingFile) Discard() error {
	if p.ended {
		return nil
	}
	p.ended = true
	p.File.Close()
	err := p.b.remove(p.name + PendingSuffix)
	p.release()
	return err
}

func (b *Backend) Estimate() (usage, quota int64, err error) { return jsutil.Estimate() }

// ExportDir is where exportDiskToFile's fallback writes its temporary file
// (aero/exports), whichever backend holds the disks.
func ExportDir() (*Dir, error) {
	d, err := jsutil.ExportsDir()
	if err != nil {
		return nil, err
	}
	return &Dir{h: d}, nil
}

// Dir is a plain OPFS directory (used for temporary exports).
type Dir struct{ h jsutil.Dir }

// Create creates (or truncates) a file for writing.
func (d *Dir) Create(name string) (*File, error) {
	h, err := jsutil.OpenFile(d.h, name, true, true)
	if err != nil {
		return nil, mapErr(name, err)
	}
	f := &File{name: name, h: h, writable: true}
	return f, f.Truncate(0)
}

// Remove deletes a file; a missing one is fine.
func (d *Dir) Remove(name string) error {
	err := jsutil.RemoveFile(d.h, name)
	if jsutil.IsDOM(err, "NotFoundError") {
		return nil
	}
	return mapErr(name, err)
}

// Clear removes every file not held open elsewhere.
func (d *Dir) Clear() error {
	return jsutil.ClearDir(d.h)
}

func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, MetadataName) || strings.HasPrefix(name, ".") || strings.HasSuffix(name, PendingSuffix) {
		return diskerr.New("", catalog.ErrInvalid, "bad file name %q", name)
	}
	return nil
}

// mapErr turns OPFS exceptions into the manager's errors.
func mapErr(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case jsutil.IsDOM(err, "NotFoundError"):
		return fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	case jsutil.IsDOM(err, "NoModificationAllowedError", "InvalidModificationError"):
		return diskerr.New("", manager.ErrInUse, "%s is open in another tab", name)
	case jsutil.IsDOM(err, "QuotaExceededError"):
		return diskerr.New("", manager.ErrQuota, "%s", name)
	case jsutil.IsDOM(err, "InvalidStateError") && strings.Contains(err.Error(), "exists"):
		return diskerr.New("", catalog.ErrInvalid, "%s already exists", name)
	}
	return fmt.Errorf("%s: %w", name, err)
}
