// Package manager is the disk manager behind the browser's DiskManager API:
// creating, importing, converting, exporting, verifying, renaming and deleting
// disks, and the HDD/CD mounts. It is platform-neutral: storage comes through
// a Backend (OPFS or IndexedDB in the browser, a directory natively), input
// through an Input (a browser File, or a host file), so every pipeline is
// tested natively with `go test`.
package manager

import (
	"context"
	"errors"
	"io"

	"aerodisk/internal/catalog"
	"aerodisk/internal/storage"
)

// Backend stores disk files and the catalog.
type Backend interface {
	// Name is the backend recorded in DiskMeta.backend: "opfs" or "idb".
	Name() string
	// Create makes a new, empty file open for writing. Fails if it exists.
	Create(fileName string) (File, error)
	// Open opens an existing file. A missing file fails with an error
	// wrapping fs.ErrNotExist; one held open elsewhere (another tab) with
	// ErrInUse.
	Open(fileName string, writable bool) (File, error)
	// Remove deletes a file; ErrInUse if it is held open elsewhere. Removing a
	// missing file is not an error.
	Remove(fileName string) error
	// Files lists the disk files present (not the catalog's own files).
	Files() ([]string, error)
	// ReadCatalog returns the current catalog.
	ReadCatalog() (*catalog.Catalog, error)
	// UpdateCatalog runs fn on the current catalog while holding a lock shared
	// by every tab, and stores the result atomically if fn returns nil.
	UpdateCatalog(fn func(*catalog.Catalog) error) error
	// Estimate reports storage usage and quota in bytes (0, 0 if unknown).
	Estimate() (usage, quota int64, err error)
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
