//go:build !js

// Package dirstore is a manager.Backend over a host directory laid out like
// the browser's OPFS one (<id>.<ext> files plus metadata.json). It runs the
// disk manager natively, which is how its pipelines are tested, and mirrors
// the OPFS semantics that matter: exclusive writable handles (ErrInUse for a
// second one), atomic catalog replacement, a cross-process catalog lock.
package dirstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"aerodisk/internal/catalog"
	"aerodisk/internal/manager"
	"aerodisk/internal/storage"
)

const (
	metadataName = "metadata.json"
	lockName     = ".metadata.lock"
	tempPrefix   = ".tmp-"
)

// Store is a directory backend. Quota, when set, makes Estimate report it
// and writes beyond it fail with manager.ErrQuota, as a browser would.
// Handles hold flock(2) locks, so exclusivity holds across Store values and
// processes (the native stand-in for tabs): writable handles are exclusive,
// read-only ones shared.
type Store struct {
	dir   string
	Quota int64
	// SparseFiles makes the store a manager.SparseBackend, as IndexedDB
	// is: host files keep their holes, and usage counts allocated blocks.
	SparseFiles bool
}

// Sparse reports SparseFiles (manager.SparseBackend).
func (s *Store) Sparse() bool { return s.SparseFiles }

// allocated is the storage a file takes: its allocated blocks when the
// store is sparse, else its length.
func (s *Store) allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && s.SparseFiles {
		return st.Blocks * 512
	}
	return fi.Size()
}

// New returns a Store over dir, creating it if needed.
func New(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &Store{dir: dir}, nil
}

// Name reports "opfs": the directory stands in for the OPFS layout.
func (s *Store) Name() string { return "opfs" }

// Dir is the directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." || name == metadataName || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("%w: bad file name %q", catalog.ErrInvalid, name)
	}
	return filepath.Join(s.dir, name), nil
}

// lock takes the handle's lock without waiting: held elsewhere is ErrInUse.
func lock(f *os.File, name string, writable bool) error {
	how := syscall.LOCK_SH
	if writable {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%w: %s", manager.ErrInUse, name)
		}
		return err
	}
	return nil
}

func (s *Store) Create(name string) (manager.File, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lock(f, name, true); err != nil {
		f.Close()
		return nil, err
	}
	return &file{File: storage.File{File: f}, s: s, name: name, writable: true}, nil
}

func (s *Store) Open(name string, writable bool) (manager.File, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		return nil, err
	}
	if err := lock(f, name, writable); err != nil {
		f.Close()
		return nil, err
	}
	return &file{File: storage.File{File: f}, s: s, name: name, writable: writable}, nil
}

func (s *Store) Remove(name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lock(f, name, true); err != nil {
		return err
	}
	return os.Remove(p)
}

func (s *Store) Files() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); e.Type().IsRegular() && n != metadataName && !strings.HasPrefix(n, ".") {
			out = append(out, n)
		}
	}
	return out, nil
}

func (s *Store) ReadCatalog() (*catalog.Catalog, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, metadataName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return catalog.Parse(b)
}

// UpdateCatalog holds an flock on the directory's lock file (shared by every
// process using the directory) and replaces metadata.json by rename.
func (s *Store) UpdateCatalog(fn func(*catalog.Catalog) error) error {
	lock, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	c, err := s.ReadCatalog()
	if err != nil {
		return err
	}
	if err := fn(c); err != nil {
		return err
	}
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, tempPrefix+"metadata-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(s.dir, metadataName))
}

func (s *Store) Estimate() (usage, quota int64, err error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			usage += s.allocated(fi)
		}
	}
	return usage, s.Quota, nil
}

// file is an open handle; writes past the quota fail like a browser's.
type file struct {
	storage.File
	s        *Store
	name     string
	writable bool
	closed   bool
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	if !f.writable {
		return 0, fmt.Errorf("%s is open read-only", f.name)
	}
	if f.s.Quota > 0 {
		usage, _, err := f.s.Estimate()
		if err != nil {
			return 0, err
		}
		size, _ := f.Size()
		if grow := off + int64(len(p)) - size; grow > 0 && usage+grow > f.s.Quota {
			return 0, fmt.Errorf("%w: writing %d bytes at %d", manager.ErrQuota, len(p), off)
		}
	}
	return f.File.WriteAt(p, off)
}

// Linux's lseek whence values for sparse files.
const (
	seekData = 3
	seekHole = 4
)

// DataRun reports the file's holes (formats.HoleReporter) when the store is
// sparse, with lseek(SEEK_DATA/SEEK_HOLE); otherwise everything is data.
func (f *file) DataRun(off, n int64) (bool, int64, error) {
	if !f.s.SparseFiles || runtime.GOOS != "linux" {
		return true, n, nil
	}
	fd := int(f.File.Fd())
	next, err := syscall.Seek(fd, off, seekData)
	if err != nil {
		if errors.Is(err, syscall.ENXIO) { // no data after off
			return false, n, nil
		}
		return true, n, nil // no hole support: all data
	}
	if next > off {
		return false, min(next-off, n), nil
	}
	hole, err := syscall.Seek(fd, off, seekHole)
	if err != nil {
		return true, n, nil
	}
	return true, min(max(hole-off, 1), n), nil
}

// StoredBytes is the storage the file takes (manager.StoredSizer).
func (f *file) StoredBytes() (int64, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	return f.s.allocated(fi), nil
}

func (f *file) Truncate(size int64) error {
	if !f.writable {
		return fmt.Errorf("%s is open read-only", f.name)
	}
	return f.File.Truncate(size)
}

func (f *file) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	return f.File.Close() // closing the descriptor releases its lock
}
