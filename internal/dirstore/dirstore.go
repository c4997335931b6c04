//go:build !js

// Package dirstore is a manager.Backend over a host directory laid out like
// the browser's OPFS one (<id>.<ext> files, metadata.json and its other
// generations). It runs the disk manager natively, which is how its
// pipelines and its durability rules are tested, and mirrors the OPFS
// semantics that matter: exclusive writable handles (ErrInUse for a second
// one), pending files renamed into place at commit, leases and a catalog
// lock shared by every Store over the directory (flock(2), so they hold
// across Store values and processes — the native stand-in for tabs).
//
// Faults and Kill make it a fault-injection backend: an operation can fail,
// stall or be silently lost, and a Store can die like a killed tab.
package dirstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/manager"
	"aerodisk/internal/storage"
)

const (
	metadataName = "metadata.json"
	metadataTemp = "metadata.json.tmp"
	metadataPrev = "metadata.json.prev"
	// MetadataKept holds the bytes of a catalog that could not be used,
	// kept when a recovered catalog replaces it.
	MetadataKept = "metadata.json.damaged"
	lockName     = ".metadata.lock"
	leasePrefix  = ".lease-"
	// PendingSuffix marks a disk file still being written (the same name
	// as on OPFS): <fileName>.aerodisk-partial.
	PendingSuffix = ".aerodisk-partial"
)

// Op names an operation Faults can intercept.
type Op string

// The operations Faults sees, with the file name they act on.
const (
	OpCreate        Op = "create"         // a pending file
	OpWrite         Op = "write"          // a write to a disk file
	OpFinish        Op = "finish"         // renaming a pending file into place
	OpDiscard       Op = "discard"        // removing a pending file
	OpSettle        Op = "settle"         // settling an abandoned pending file
	OpRemove        Op = "remove"         // removing a disk file
	OpLockCatalog   Op = "lock-catalog"   // taking the catalog lock
	OpReadCatalog   Op = "read-catalog"   // reading one generation
	OpWriteCatalog  Op = "write-catalog"  // writing metadata.json.tmp
	OpCatalogRename Op = "catalog-rename" // moving metadata.json.tmp over metadata.json
	OpFiles         Op = "files"          // listing disk files
	OpEstimate      Op = "estimate"       // reporting usage (lost: usage reads 0, as after a browser restart)
)

// ErrLost, returned by Faults, makes the operation report success without
// doing anything: a lost rename, a lost write.
var ErrLost = errors.New("dirstore: operation lost (injected)")

// ErrKilled is what every operation of a Store fails with after Kill.
var ErrKilled = errors.New("dirstore: this store was killed (injected)")

// Store is a directory backend. Quota, when set, makes Estimate report it
// and writes beyond it fail with manager.ErrQuota, as a browser would.
// Handles hold flock(2) locks: writable handles are exclusive, read-only
// ones shared.
type Store struct {
	dir   string
	Quota int64
	// SparseFiles makes the store a manager.SparseBackend, as IndexedDB
	// is: host files keep their holes, and usage counts allocated blocks.
	SparseFiles bool
	// Faults, when set, is called before each Op: an error fails the
	// operation (ErrLost skips it and reports success), and a Faults that
	// blocks stalls it.
	Faults func(op Op, name string) error

	mu     sync.Mutex
	killed bool
	held   map[*os.File]bool // descriptors that die with the store (Kill)
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
	return &Store{dir: dir, held: map[*os.File]bool{}}, nil
}

// Name reports "opfs": the directory stands in for the OPFS layout.
func (s *Store) Name() string { return "opfs" }

// Dir is the directory.
func (s *Store) Dir() string { return s.dir }

// Kill makes the store die as a killed tab does: every descriptor it holds
// (open files, leases, the catalog lock) is closed, which releases their
// locks, and every later operation fails with ErrKilled. A goroutine stalled
// in Faults finds everything failing when it resumes, so it cannot clean up.
func (s *Store) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.killed = true
	for f := range s.held {
		f.Close()
	}
	s.held = map[*os.File]bool{}
}

// fault runs Faults for op; lost reports ErrLost.
func (s *Store) fault(op Op, name string) (lost bool, err error) {
	if err := s.alive(); err != nil {
		return false, err
	}
	if s.Faults == nil {
		return false, nil
	}
	err = s.Faults(op, name)
	if errors.Is(err, ErrLost) {
		return true, s.alive()
	}
	if err != nil {
		return false, err
	}
	return false, s.alive()
}

func (s *Store) alive() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.killed {
		return ErrKilled
	}
	return nil
}

// hold registers a descriptor that Kill closes; drop forgets it.
func (s *Store) hold(f *os.File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.killed {
		f.Close()
		return ErrKilled
	}
	if s.held == nil {
		s.held = map[*os.File]bool{}
	}
	s.held[f] = true
	return nil
}

func (s *Store) drop(f *os.File) {
	s.mu.Lock()
	delete(s.held, f)
	s.mu.Unlock()
}

func (s *Store) path(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." || strings.HasPrefix(name, ".") ||
		strings.HasPrefix(name, metadataName) || strings.HasSuffix(name, PendingSuffix) {
		return "", diskerr.New("", catalog.ErrInvalid, "bad file name %q", name)
	}
	return filepath.Join(s.dir, name), nil
}

// flock takes a lock on f; without wait, one held elsewhere is ErrInUse.
func flock(f *os.File, name string, exclusive, wait bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return diskerr.New("", manager.ErrInUse, "%s", name)
		}
		return err
	}
	return nil
}

// openLocked opens a data file and locks it like a sync access handle.
func (s *Store) openLocked(p, name string, flag int, writable bool) (*file, error) {
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flock(f, name, writable, false); err != nil {
		f.Close()
		return nil, err
	}
	if err := s.hold(f); err != nil {
		return nil, err
	}
	return &file{File: storage.File{File: f}, s: s, name: name, writable: writable}, nil
}

// lease takes the lease of the disk file name (exclusive, without waiting).
func (s *Store) lease(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, leasePrefix+name), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flock(f, name, true, false); err != nil {
		f.Close()
		return nil, err
	}
	if err := s.hold(f); err != nil {
		return nil, err
	}
	return f, nil
}

// endLease releases a lease and removes its file.
func (s *Store) endLease(f *os.File, name string) {
	os.Remove(filepath.Join(s.dir, leasePrefix+name))
	s.drop(f)
	f.Close()
}

func (s *Store) Create(name string) (manager.NewFile, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	if _, err := s.fault(OpCreate, name); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(p); err == nil {
		return nil, diskerr.New("", catalog.ErrInvalid, "%s already exists", name)
	}
	lease, err := s.lease(name)
	if err != nil {
		return nil, err
	}
	f, err := s.openLocked(p+PendingSuffix, name, os.O_RDWR|os.O_CREATE|os.O_EXCL, true)
	if err != nil {
		s.endLease(lease, name)
		return nil, err
	}
	return &pendingFile{file: f, final: p, lease: lease}, nil
}

func (s *Store) Open(name string, writable bool) (manager.File, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	if err := s.alive(); err != nil {
		return nil, err
	}
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := s.openLocked(p, name, flag, writable)
	if err != nil {
		return nil, err // not a typed nil
	}
	return f, nil
}

func (s *Store) Remove(name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if lost, err := s.fault(OpRemove, name); err != nil || lost {
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
	if err := flock(f, name, true, false); err != nil {
		return err
	}
	return os.Remove(p)
}

// Files lists the disk files: not hidden, not the catalog's, not pending.
func (s *Store) Files() ([]string, error) {
	if _, err := s.fault(OpFiles, ""); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && !strings.HasPrefix(n, ".") && !strings.HasPrefix(n, metadataName) && !strings.HasSuffix(n, PendingSuffix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Abandoned lists pending files whose lease nobody holds.
func (s *Store) Abandoned() ([]string, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), PendingSuffix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		lf, err := os.OpenFile(filepath.Join(s.dir, leasePrefix+name), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		err = flock(lf, name, true, false)
		lf.Close() // releases the probe's lock
		if errors.Is(err, manager.ErrInUse) {
			continue // its writer lives
		}
		if err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, nil
}

// Settle renames an abandoned pending file into place (keep) or removes it.
func (s *Store) Settle(name string, keep bool) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if lost, err := s.fault(OpSettle, name); err != nil || lost {
		return err
	}
	if keep {
		if _, err := os.Lstat(p); err == nil {
			return diskerr.New("", catalog.ErrInvalid, "%s already exists", name)
		}
		err = os.Rename(p+PendingSuffix, p)
	} else {
		err = os.Remove(p + PendingSuffix)
	}
	if err == nil {
		os.Remove(filepath.Join(s.dir, leasePrefix+name))
	}
	return err
}

// LockCatalog takes an flock on the directory's lock file, shared by every
// Store and process using the directory.
func (s *Store) LockCatalog(exclusive bool) (func(), error) {
	if _, err := s.fault(OpLockCatalog, ""); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flock(f, lockName, exclusive, true); err != nil {
		f.Close()
		return nil, err
	}
	if err := s.hold(f); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(func() { s.drop(f); f.Close() }) }, nil
}

// CatalogGenerations reads metadata.json (and, all, metadata.json.tmp and
// metadata.json.prev).
func (s *Store) CatalogGenerations(all bool) ([]manager.Generation, error) {
	var gens []manager.Generation
	names := []string{metadataName, metadataTemp, metadataPrev}
	if !all {
		names = names[:1]
	}
	for _, name := range names {
		g := manager.Generation{Name: name}
		if _, err := s.fault(OpReadCatalog, name); err != nil {
			if errors.Is(err, ErrKilled) {
				return nil, err
			}
			g.Err = err
		} else if b, err := os.ReadFile(filepath.Join(s.dir, name)); errors.Is(err, fs.ErrNotExist) {
			g.Missing = true
		} else if err != nil {
			g.Err = err
		} else {
			g.Data = b
		}
		gens = append(gens, g)
	}
	return gens, nil
}

// KeptCatalogName is where an unusable catalog's bytes are kept.
func (s *Store) KeptCatalogName() string { return MetadataKept }

// WriteCatalog keeps the replaced generation (as metadata.json.prev when
// it was good, as metadata.json.damaged when not), writes the new one to
// metadata.json.tmp, syncs it and renames it over metadata.json.
func (s *Store) WriteCatalog(old manager.Generation, oldCat, next *catalog.Catalog) error {
	if lost, err := s.fault(OpWriteCatalog, metadataTemp); err != nil || lost {
		return err
	}
	if len(old.Data) > 0 && old.Name == metadataName {
		keep := MetadataKept
		if oldCat != nil {
			keep = metadataPrev
		}
		if err := s.writeFile(keep, old.Data); err != nil {
			return err
		}
	}
	b, err := next.Marshal()
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(s.dir, metadataTemp), b); err != nil {
		return err
	}
	if lost, err := s.fault(OpCatalogRename, metadataName); err != nil || lost {
		return err
	}
	return os.Rename(filepath.Join(s.dir, metadataTemp), filepath.Join(s.dir, metadataName))
}

// writeFile replaces name with b atomically (a synced temporary, renamed).
func (s *Store) writeFile(name string, b []byte) error {
	tmp := filepath.Join(s.dir, ".tmp-"+name)
	if err := writeSynced(tmp, b); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, name))
}

func writeSynced(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *Store) Estimate() (usage, quota int64, err error) {
	if lost, err := s.fault(OpEstimate, ""); err != nil || lost {
		return 0, s.Quota, err
	}
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
	if lost, err := f.s.fault(OpWrite, f.name); err != nil || lost {
		if lost {
			return len(p), nil
		}
		return 0, err
	}
	if f.s.Quota > 0 {
		usage, _, err := f.s.Estimate()
		if err != nil {
			return 0, err
		}
		size, _ := f.Size()
		if grow := off + int64(len(p)) - size; grow > 0 && usage+grow > f.s.Quota {
			return 0, diskerr.New("", manager.ErrQuota, "writing %d bytes at %d", len(p), off)
		}
	}
	return f.File.WriteAt(p, off)
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if err := f.s.alive(); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *file) Flush() error {
	if err := f.s.alive(); err != nil {
		return err
	}
	return f.File.Flush()
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
	if err := f.s.alive(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *file) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	f.s.drop(f.File.File)
	return f.File.Close() // closing the descriptor releases its lock
}

// pendingFile is a file from Create: <final>.aerodisk-partial under a lease.
type pendingFile struct {
	*file
	final string
	lease *os.File
	ended bool
}

func (p *pendingFile) Finish() error {
	if p.ended {
		return errors.New("dirstore: pending file already finished or discarded")
	}
	p.file.Close()
	if lost, err := p.s.fault(OpFinish, p.name); err != nil || lost {
		return err
	}
	if err := os.Rename(p.final+PendingSuffix, p.final); err != nil {
		return err
	}
	p.ended = true
	p.s.endLease(p.lease, p.name)
	return nil
}

func (p *pendingFile) Discard() error {
	if p.ended {
		return nil
	}
	p.file.Close()
	if lost, err := p.s.fault(OpDiscard, p.name); err != nil || lost {
		return err
	}
	p.ended = true
	err := os.Remove(p.final + PendingSuffix)
	p.s.endLease(p.lease, p.name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
