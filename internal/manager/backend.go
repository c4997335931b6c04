// Package manager is the disk manager behind the browser's DiskManager API:
// creating, importing, converting, exporting, verifying, renaming and deleting
// disks, and the HDD/CD mounts. It is platform-neutral: storage comes through
// a Backend (OPFS or IndexedDB in the browser, a directory natively), input
// through an Input (a browser File, or a host file), so every pipeline is
// tested natively with `go test`.
//
// The durability rules (docs/browser.md, "Durability") live here, not in the
// backends: catalog reads and writes under one lock shared by every tab, a
// catalog that cannot be read is never "no disks", and a file is removed only
// with positive proof that it is this manager's own unfinished work.
package manager

import (
	"context"
	"errors"
	"io"

	"aerodisk/internal/catalog"
	"aerodisk/internal/storage"
)

// Backend stores disk files and the catalog. Its methods are mechanisms;
// the manager decides when to use them.
type Backend interface {
	// Name is the backend recorded in DiskMeta.backend: "opfs" or "idb".
	Name() string

	// Create makes a new, empty file for the disk file fileName, open for
	// writing. Until Finish it is pending: this manager's own unfinished
	// work, never in Files, and protected from every tab's sweep by a
	// lease that ends with Finish, Discard or the death of its tab. Fails
	// if the file exists.
	Create(fileName string) (NewFile, error)
	// Open opens an existing disk file. A missing file fails with an error
	// wrapping fs.ErrNotExist; one held open elsewhere (another tab) with
	// ErrInUse.
	Open(fileName string, writable bool) (File, error)
	// Remove deletes a disk file; ErrInUse if it is held open elsewhere.
	// Removing a missing file is not an error.
	Remove(fileName string) error
	// Files lists the disk files present: not pending files, not the
	// catalog's own files.
	Files() ([]string, error)
	// Abandoned lists the pending files whose lease has ended without
	// Finish or Discard (their tab died), by disk file name.
	Abandoned() ([]string, error)
	// Settle ends an abandoned pending file: keep makes it the disk file
	// (its commit reached the catalog, then the tab died), otherwise it is
	// removed.
	Settle(fileName string, keep bool) error

	// LockCatalog takes the catalog lock every tab shares, waiting for it:
	// shared to read, exclusive to change the catalog. The release
	// function must be called once.
	LockCatalog(exclusive bool) (release func(), err error)
	// CatalogGenerations reads the stored catalog, current generation
	// first, then (all) any others the backend keeps (a next one being
	// written, the previous one): a good current generation is all a read
	// needs, the others serve a missing or damaged one. The caller holds
	// the catalog lock.
	CatalogGenerations(all bool) ([]Generation, error)
	// WriteCatalog stores next as the current generation, replacing old
	// (the current generation as read). oldCat is old parsed, or nil when
	// old was not a catalog: a good old generation becomes the previous
	// one; an unusable one that has bytes is kept aside (never deleted).
	// The caller holds the exclusive catalog lock.
	WriteCatalog(old Generation, oldCat, next *catalog.Catalog) error

	// Estimate reports storage usage and quota in bytes (0, 0 if unknown).
	Estimate() (usage, quota int64, err error)
}

// Generation is one stored copy of the catalog.
type Generation struct {
	// Name says which copy: "metadata.json", "metadata.json.tmp",
	// "metadata.json.prev" on OPFS, "records" on IndexedDB.
	Name string
	// Data is its bytes (a JSON catalog); nil when Missing or Err.
	Data []byte
	// Missing: no such copy exists (as opposed to one that is empty).
	Missing bool
	// Err: the copy exists but could not be read.
	Err error
}

// NewFile is a pending file from Backend.Create.
type NewFile interface {
	File
	// Finish makes the closed file the disk file it was created for and
	// ends its lease. The caller holds the exclusive catalog lock and has
	// just stored a catalog that names it.
	Finish() error
	// Discard closes and removes the file and ends its lease.
	Discard() error
}

// SparseBackend is a Backend whose files cost nothing where they hold zeros:
// IndexedDB never stores an all-zero chunk. On such a backend a blank disk
// is a raw file truncated to its size (metadata only), and a converted
// import is raw too, since AEROSPAR's block table would add nothing.
type SparseBackend interface {
	Backend
	Sparse() bool
}

// StoredSizer is a File that knows how many bytes of storage it takes when
// that differs from its length (a sparse file).
type StoredSizer interface {
	StoredBytes() (int64, error)
}

// File is an open backend file.
type File interface {
	storage.Storage
	Close() error
}

// Input is a file the user picked: random access for container formats and
// a sequential stream, which browsers deliver fastest, for whole-file copies.
type Input interface {
	io.ReaderAt
	Size() int64
	Name() string
	// Stream reads the whole input from the start.
	Stream() (io.ReadCloser, error)
}

// StreamCopier is an Input that copies itself into a backend file faster
// than a read loop can: in the browser, stream chunks go straight into the
// OPFS file and are checksummed on another thread. CopyTo returns the CRC32
// of the bytes, or ErrNoFastCopy when it cannot handle dst.
type StreamCopier interface {
	CopyTo(ctx context.Context, dst File, progress func(done int64)) (uint32, error)
}

// ErrNoFastCopy: a StreamCopier cannot copy into this kind of file.
var ErrNoFastCopy = errors.New("no fast copy into this file")

// Errors a Backend or the manager report, beyond catalog and diskerr ones.
var (
	// ErrInUse: the disk is open in another tab (or process).
	ErrInUse = errors.New("disk is in use")
	// ErrQuota: not enough storage space.
	ErrQuota = errors.New("not enough storage space")
	// ErrUnsupportedBackend: the requested storage backend is not available here.
	ErrUnsupportedBackend = errors.New("storage backend not available")
)
