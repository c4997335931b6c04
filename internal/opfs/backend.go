//go:build js && wasm

package opfs

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/catalog"
	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
)

// The layout of the existing Aero disk manager.
const (
	MetadataName = "metadata.json"
	metadataTemp = "metadata.json.tmp"
	lockName     = "aerodisk-metadata" // Web Lock serialising catalog updates across tabs
)

// Backend is a manager.Backend over an OPFS directory (aero/disks).
type Backend struct {
	dir safejs.Value // FileSystemDirectoryHandle
}

// Open returns the backend over navigator.storage.getDirectory()/aero/disks,
// creating the directories.
func Open() (*Backend, error) {
	dir, err := jsutil.CallAwait("disksDir")
	if err != nil {
		return nil, fmt.Errorf("opening OPFS aero/disks: %w", err)
	}
	return &Backend{dir: dir}, nil
}

// Supported reports whether sync access handles exist here.
func Supported() bool {
	v, err := jsutil.Call("opfsSupported")
	if err != nil {
		return false
	}
	ok, _ := v.Bool()
	return ok
}

func (b *Backend) Name() string { return "opfs" }

func (b *Backend) Create(name string) (manager.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	h, err := jsutil.CallAwait("createFile", b.dir, name)
	if err != nil {
		return nil, mapErr(name, err)
	}
	return &File{name: name, h: h, writable: true}, nil
}

func (b *Backend) Open(name string, writable bool) (manager.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	h, err := jsutil.CallAwait("openFile", b.dir, name, writable)
	if err != nil {
		return nil, mapErr(name, err)
	}
	return &File{name: name, h: h, writable: writable}, nil
}

func (b *Backend) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	_, err := jsutil.CallAwait("removeFile", b.dir, name)
	if jsutil.IsDOM(err, "NotFoundError") {
		return nil
	}
	return mapErr(name, err)
}

func (b *Backend) Files() ([]string, error) {
	v, err := jsutil.CallAwait("listFiles", b.dir)
	if err != nil {
		return nil, err
	}
	n, err := v.Length()
	if err != nil {
		return nil, err
	}
	var out []string
	for i := 0; i < n; i++ {
		e, err := v.Index(i)
		if err != nil {
			return nil, err
		}
		s, err := e.String()
		if err != nil {
			return nil, err
		}
		if s != MetadataName && s != metadataTemp && !strings.HasPrefix(s, ".") {
			out = append(out, s)
		}
	}
	return out, nil
}

// ReadCatalog reads metadata.json. If a tab died between removing the old
// file and moving the new one into place, the complete temporary file is
// the catalog.
func (b *Backend) ReadCatalog() (*catalog.Catalog, error) {
	for _, name := range []string{MetadataName, metadataTemp} {
		v, err := jsutil.CallAwait("readText", b.dir, name)
		if jsutil.IsDOM(err, "NotFoundError") {
			continue
		}
		if err != nil {
			return nil, err
		}
		s, err := v.String()
		if err != nil {
			return nil, err
		}
		return catalog.Parse([]byte(s))
	}
	return catalog.New(), nil
}

// UpdateCatalog holds the Web Lock while it reads, changes and replaces
// metadata.json: the new content goes to metadata.json.tmp (written and
// flushed through a sync access handle), which is then moved over the old
// file, so no reader ever sees a torn catalog.
func (b *Backend) UpdateCatalog(fn func(*catalog.Catalog) error) error {
	return jsutil.WithLock(lockName, func() error { return b.updateCatalog(fn) })
}

func (b *Backend) updateCatalog(fn func(*catalog.Catalog) error) error {
	c, err := b.ReadCatalog()
	if err != nil {
		return err
	}
	if err := fn(c); err != nil {
		return err
	}
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	h, err := jsutil.CallAwait("openFile", b.dir, metadataTemp, true, true)
	if err != nil {
		return mapErr(metadataTemp, err)
	}
	f := &File{name: metadataTemp, h: h, writable: true}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if _, err := jsutil.CallAwait("replaceFile", b.dir, metadataTemp, MetadataName); err != nil {
		return fmt.Errorf("replacing %s: %w", MetadataName, err)
	}
	return nil
}

func (b *Backend) Estimate() (usage, quota int64, err error) { return jsutil.Estimate() }

// ExportDir is where exportDiskToFile's fallback writes its temporary file
// (aero/exports), whichever backend holds the disks.
func ExportDir() (*Dir, error) {
	d, err := jsutil.CallAwait("exportsDir")
	if err != nil {
		return nil, err
	}
	return &Dir{h: d}, nil
}

// Dir is a plain OPFS directory (used for temporary exports).
type Dir struct{ h safejs.Value }

// Create creates (or truncates) a file for writing.
func (d *Dir) Create(name string) (*File, error) {
	h, err := jsutil.CallAwait("openFile", d.h, name, true, true)
	if err != nil {
		return nil, mapErr(name, err)
	}
	f := &File{name: name, h: h, writable: true}
	return f, f.Truncate(0)
}

// Remove deletes a file; a missing one is fine.
func (d *Dir) Remove(name string) error {
	_, err := jsutil.CallAwait("removeFile", d.h, name)
	if jsutil.IsDOM(err, "NotFoundError") {
		return nil
	}
	return mapErr(name, err)
}

// Clear removes every file not held open elsewhere.
func (d *Dir) Clear() error {
	_, err := jsutil.CallAwait("clearDir", d.h)
	return err
}

func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == MetadataName || name == metadataTemp || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%w: bad file name %q", catalog.ErrInvalid, name)
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
		return fmt.Errorf("%w: %s is open in another tab", manager.ErrInUse, name)
	case jsutil.IsDOM(err, "QuotaExceededError"):
		return fmt.Errorf("%w: %s", manager.ErrQuota, name)
	case jsutil.IsDOM(err, "InvalidStateError") && strings.Contains(err.Error(), "exists"):
		return fmt.Errorf("%w: %s already exists", catalog.ErrInvalid, name)
	}
	return fmt.Errorf("%s: %w", name, err)
}
