//go:build js && wasm

// Package idb is the manager.Backend over IndexedDB, for browsers without
// OPFS sync access handles. It keeps the existing Aero disk manager's schema
// (docs/idb.md): database aero-disk-manager with the stores disks (DiskMeta
// records), mounts (one record) and chunks (a disk's bytes in fixed-size
// chunks keyed [id, index]; an absent chunk reads as zeros). All IndexedDB
// access goes through github.com/hack-pad/go-indexeddb.
package idb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"syscall/js"

	"github.com/hack-pad/go-indexeddb/idb"
	"github.com/hack-pad/safejs"

	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
)

// The existing Aero schema.
const (
	DBName      = "aero-disk-manager"
	disksStore  = "disks"
	mountsStore = "mounts"
	chunksStore = "chunks"
	byIDIndex   = "by_id"
	mountsKey   = "mounts"

	catalogLock = "aerodisk-metadata" // the Web Lock OPFS uses too
	fileLock    = "aerodisk-idb-"     // + disk id: held while a disk's chunks are open
	leasePrefix = "aerodisk-lease-"   // + file name: held while a pending file's tab lives

	// The journal: this manager's own database (Aero's is never given a
	// store of ours). A pending disk's entry is written before its first
	// chunk and deleted after its record is committed; it is the positive
	// proof a sweep needs to remove chunks.
	journalName  = "aerodisk"
	pendingStore = "pending"
)

// ChunkSize is the size of a stored chunk: the existing convention, and the
// fastest of 1, 2 and 4 MiB in our measurements (docs/idb.md).
const ChunkSize = 4 << 20

// Backend is a manager.Backend over the aero-disk-manager database, with
// pending disks journaled in the aerodisk database.
type Backend struct {
	db      *idb.Database
	journal *idb.Database
}

// Supported reports whether IndexedDB exists here.
func Supported() bool {
	v, err := safejs.Global().Get("indexedDB")
	if err != nil {
		return false
	}
	ok, _ := v.Truthy()
	return ok
}

// Open opens (creating or completing) the database.
func Open(ctx context.Context) (*Backend, error) {
	if !Supported() {
		return nil, diskerr.New("", manager.ErrUnsupportedBackend, "this browser has no IndexedDB")
	}
	// Open at Aero's version with all of Aero's stores, so that Aero opens
	// a database this manager made (or completed) without an upgrade. A
	// database already past that version is opened as it is, and one whose
	// stores are not all there is reopened one version up to add them.
	db, err := openDB(ctx, aeroVersion)
	if errors.Is(err, idb.NewDOMException("VersionError")) {
		db, err = openDB(ctx, 0)
	}
	if err != nil {
		return nil, err
	}
	names, err := db.ObjectStoreNames()
	if err != nil {
		return nil, err
	}
	if !hasAll(names, aeroStores...) {
		v, err := db.Version()
		if err != nil {
			return nil, err
		}
		db.Close()
		if db, err = openDB(ctx, v+1); err != nil {
			return nil, err
		}
	}
	req, err := idb.Global().Open(ctx, journalName, 1, func(j *idb.Database, _, _ uint) error {
		_, err := j.CreateObjectStore(pendingStore, idb.ObjectStoreOptions{KeyPath: js.ValueOf("id")})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("opening IndexedDB %s: %w", journalName, err)
	}
	journal, err := req.Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening IndexedDB %s: %w", journalName, err)
	}
	return &Backend{db: db, journal: journal}, nil
}

func openDB(ctx context.Context, version uint) (*idb.Database, error) {
	req, err := idb.Global().Open(ctx, DBName, version, upgrade)
	if err != nil {
		return nil, fmt.Errorf("opening IndexedDB %s: %w", DBName, err)
	}
	db, err := req.Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening IndexedDB %s: %w", DBName, err)
	}
	return db, nil
}

// aeroVersion is the version of aero-disk-manager that Aero's disk
// manager opens (web/src/storage/metadata.ts, DISK_MANAGER_DB_VERSION), and
// aeroStores the stores it has at that version.
const aeroVersion = 3

var aeroStores = []string{disksStore, mountsStore, chunksStore, remoteMetaStore, remoteChunksStore}

// Aero's remote-disk cache stores: created for Aero's sake, never read or
// written here.
const (
	remoteMetaStore   = "remote_chunk_meta"
	remoteChunksStore = "remote_chunks"
)

// upgrade creates whichever of the stores is missing, with Aero's key paths
// and indexes (metadata.ts, openDiskManagerDb). Existing data is never
// touched.
func upgrade(db *idb.Database, _, _ uint) error {
	names, err := db.ObjectStoreNames()
	if err != nil {
		return err
	}
	if !hasAll(names, remoteMetaStore) {
		if _, err := db.CreateObjectStore(remoteMetaStore, idb.ObjectStoreOptions{KeyPath: js.ValueOf("cacheKey")}); err != nil {
			return err
		}
	}
	if !hasAll(names, remoteChunksStore) {
		st, err := db.CreateObjectStore(remoteChunksStore, idb.ObjectStoreOptions{KeyPath: js.ValueOf([]any{"cacheKey", "chunkIndex"})})
		if err != nil {
			return err
		}
		if _, err := st.CreateIndex("by_cacheKey", js.ValueOf("cacheKey"), idb.IndexOptions{}); err != nil {
			return err
		}
		if _, err := st.CreateIndex("by_cacheKey_lastAccess", js.ValueOf([]any{"cacheKey", "lastAccess"}), idb.IndexOptions{}); err != nil {
			return err
		}
	}
	if !hasAll(names, disksStore) {
		if _, err := db.CreateObjectStore(disksStore, idb.ObjectStoreOptions{KeyPath: js.ValueOf("id")}); err != nil {
			return err
		}
	}
	if !hasAll(names, mountsStore) {
		if _, err := db.CreateObjectStore(mountsStore, idb.ObjectStoreOptions{KeyPath: js.ValueOf("key")}); err != nil {
			return err
		}
	}
	if !hasAll(names, chunksStore) {
		st, err := db.CreateObjectStore(chunksStore, idb.ObjectStoreOptions{KeyPath: js.ValueOf([]any{"id", "index"})})
		if err != nil {
			return err
		}
		if _, err := st.CreateIndex(byIDIndex, js.ValueOf("id"), idb.IndexOptions{}); err != nil {
			return err
		}
	}
	return nil
}

func hasAll(names []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, n := range names {
			found = found || n == w
		}
		if !found {
			return false
		}
	}
	return true
}

func (b *Backend) Name() string { return "idb" }

// Sparse: absent chunks read as zeros (manager.SparseBackend).
func (b *Backend) Sparse() bool { return true }

// diskID is the chunk key of a file: its name up to the first dot.
func diskID(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return "", diskerr.New("", catalog.ErrInvalid, "bad file name %q", name)
	}
	return manager.FileStem(name), nil
}

// chunkRange is every chunk key of one disk.
func chunkRange(id string, from int64) (*idb.KeyRange, error) {
	return idb.NewKeyRangeBound(js.ValueOf([]any{id, float64(from)}), js.ValueOf([]any{id, math.Inf(1)}), false, false)
}

// jsKeyRange is chunkRange as a plain IDBKeyRange (for delete, which takes one).
func jsKeyRange(id string, from int64) (js.Value, error) {
	ctor, err := safejs.Global().Get("IDBKeyRange")
	if err != nil {
		return js.Value{}, err
	}
	kr, err := ctor.Call("bound", []any{id, float64(from)}, []any{id, math.Inf(1)})
	return safejs.Unsafe(kr), err
}

// lockFile takes the disk's Web Lock without waiting: exclusive to write,
// shared to read. Held elsewhere (another tab) is manager.ErrInUse.
func lockFile(id string, exclusive bool) (func(), error) {
	release, err := jsutil.TryLock(fileLock+id, exclusive)
	if err != nil {
		return nil, err
	}
	if release == nil {
		return nil, diskerr.New("", manager.ErrInUse, "the disk %s is open in another tab", id)
	}
	return release, nil
}

// Create takes the file's lease, journals it as pending, and opens its
// (absent) chunks for writing.
func (b *Backend) Create(name string) (manager.NewFile, error) {
	id, err := diskID(name)
	if err != nil {
		return nil, err
	}
	lease, err := jsutil.TryLock(leasePrefix+name, true)
	if err != nil {
		return nil, err
	}
	if lease == nil {
		return nil, diskerr.New("", manager.ErrInUse, "%s is being written in another tab", name)
	}
	release, err := lockFile(id, true)
	if err != nil {
		lease()
		return nil, err
	}
	fail := func(err error) (manager.NewFile, error) {
		release()
		lease()
		return nil, err
	}
	present, err := b.chunkIndexes(id)
	if err == nil && len(present) > 0 {
		err = diskerr.New("", catalog.ErrInvalid, "%s already exists", name)
	}
	if err != nil {
		return fail(err)
	}
	if err := b.journalPut(id, name); err != nil {
		return fail(err)
	}
	return &pendingFile{File: newFile(b, id, 0, present, true, release), name: name, lease: lease}, nil
}

// pendingFile is a file from Create: journaled, under its lease.
type pendingFile struct {
	*File
	name  string
	lease func()
	ended bool
}

// Finish ends the journal entry: the committed record now names the chunks.
func (p *pendingFile) Finish() error {
	if p.ended {
		return fmt.Errorf("idb: %s already finished or discarded", p.name)
	}
	if err := p.File.Close(); err != nil {
		return err
	}
	if err := p.b.journalDelete(p.id); err != nil {
		return err
	}
	p.ended = true
	p.lease()
	return nil
}

// Discard deletes the chunks written so far and the journal entry.
func (p *pendingFile) Discard() error {
	if p.ended {
		return nil
	}
	p.ended = true
	p.File.Close()
	err := p.b.removeChunks(p.id)
	if err == nil {
		err = p.b.journalDelete(p.id)
	}
	p.lease()
	return err
}

// journalPut records id as pending (durably: its chunks must never
// outlive a lost entry unproven).
func (b *Backend) journalPut(id, name string) error {
	txn, err := b.journal.TransactionWithOptions(idb.TransactionOptions{Mode: idb.TransactionReadWrite, Durability: idb.DurabilityStrict}, pendingStore)
	if err != nil {
		return err
	}
	st, err := txn.ObjectStore(pendingStore)
	if err != nil {
		return err
	}
	rec, err := newObject(map[string]any{"id": id, "fileName": name, "startedAtMs": nowMs()})
	if err != nil {
		txn.Abort()
		return err
	}
	if _, err := st.Put(rec); err != nil {
		txn.Abort()
		return mapErr(err)
	}
	return mapErr(txn.Await(context.Background()))
}

func (b *Backend) journalDelete(id string) error {
	txn, err := b.journal.Transaction(idb.TransactionReadWrite, pendingStore)
	if err != nil {
		return err
	}
	st, err := txn.ObjectStore(pendingStore)
	if err != nil {
		return err
	}
	if _, err := st.Delete(js.ValueOf(id)); err != nil {
		txn.Abort()
		return mapErr(err)
	}
	return mapErr(txn.Await(context.Background()))
}

// journalEntries returns the pending entries: id → file name.
func (b *Backend) journalEntries() (map[string]string, error) {
	txn, err := b.journal.Transaction(idb.TransactionReadOnly, pendingStore)
	if err != nil {
		return nil, err
	}
	st, err := txn.ObjectStore(pendingStore)
	if err != nil {
		return nil, err
	}
	req, err := st.OpenCursor(idb.CursorNext)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	err = req.Iter(context.Background(), func(c *idb.CursorWithValue) error {
		r, err := c.Value()
		if err != nil {
			return err
		}
		id, ok1 := strField(r, "id")
		name, ok2 := strField(r, "fileName")
		if ok1 && ok2 {
			out[id] = name
		}
		return nil
	})
	return out, mapErr(err)
}

// Abandoned lists journaled files whose lease no tab holds.
func (b *Backend) Abandoned() ([]string, error) {
	entries, err := b.journalEntries()
	if err != nil {
		return nil, err
	}
	held, err := jsutil.HeldLocks()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range entries {
		if !held[leasePrefix+name] {
			out = append(out, name)
		}
	}
	return out, nil
}

// Settle ends an abandoned pending file: keep just ends its journal entry
// (the record names the chunks), otherwise the chunks go too.
func (b *Backend) Settle(name string, keep bool) error {
	id, err := diskID(name)
	if err != nil {
		return err
	}
	if !keep {
		if err := b.removeChunks(id); err != nil {
			return err
		}
	}
	return b.journalDelete(id)
}

// LockCatalog takes the catalog's Web Lock (the one OPFS uses too).
func (b *Backend) LockCatalog(exclusive bool) (func(), error) {
	return jsutil.Lock(catalogLock, exclusive)
}

// Open opens a stored disk. Its length is in its metadata record
// (fileSizeBytes, or sizeBytes for records older tools wrote), since
// trailing all-zero chunks are not stored.
func (b *Backend) Open(name string, writable bool) (manager.File, error) {
	id, err := diskID(name)
	if err != nil {
		return nil, err
	}
	size, err := b.fileSize(id)
	if errors.Is(err, fs.ErrNotExist) {
		// No record: a disk being recovered, if it has chunks.
		if present, cerr := b.chunkIndexes(id); cerr == nil && len(present) > 0 {
			size, err = b.chunkedSize(id)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	release, err := lockFile(id, writable)
	if err != nil {
		return nil, err
	}
	present, err := b.chunkIndexes(id)
	if err != nil {
		release()
		return nil, err
	}
	return newFile(b, id, size, present, writable, release), nil
}

// fileSize reads the length of disk id's file from its record alone (not
// the whole catalog): fileSizeBytes, or sizeBytes in records older tools
// wrote. A disk without a record is fs.ErrNotExist.
func (b *Backend) fileSize(id string) (int64, error) {
	txn, err := b.db.Transaction(idb.TransactionReadOnly, disksStore)
	if err != nil {
		return 0, err
	}
	st, err := txn.ObjectStore(disksStore)
	if err != nil {
		return 0, err
	}
	req, err := st.Get(js.ValueOf(id))
	if err != nil {
		return 0, err
	}
	rec, err := req.Await(context.Background())
	if err != nil {
		return 0, mapErr(err)
	}
	if !isObject(rec) {
		return 0, fs.ErrNotExist
	}
	for _, name := range []string{"fileSizeBytes", "sizeBytes"} {
		if v, ok := numField(rec, name); ok && v > 0 {
			return int64(v), nil
		}
	}
	return 0, nil // no size: an empty file, which the format layer refuses
}

// chunkedSize is the length the stored chunks of id reach: the size of a
// file with no record (one being recovered), short of any trailing zeros.
func (b *Backend) chunkedSize(id string) (int64, error) {
	_, st, err := b.chunks(idb.TransactionReadOnly, idb.DurabilityDefault)
	if err != nil {
		return 0, err
	}
	kr, err := chunkRange(id, 0)
	if err != nil {
		return 0, err
	}
	req, err := st.OpenCursorRange(kr, idb.CursorPrevious)
	if err != nil {
		return 0, err
	}
	var size int64
	err = req.Iter(context.Background(), func(c *idb.CursorWithValue) error {
		v, err := c.Value()
		if err != nil {
			return err
		}
		idx, ok := numField(v, "index")
		data, _ := field(v, "data")
		if n, err := data.Get("byteLength"); ok && err == nil && n.Type() == safejs.TypeNumber {
			bytes, _ := n.Float()
			size = int64(idx)*ChunkSize + int64(bytes)
		}
		return idb.ErrCursorStopIter
	})
	return size, err
}

// Remove deletes every chunk of the disk in one transaction.
func (b *Backend) Remove(name string) error {
	id, err := diskID(name)
	if err != nil {
		return err
	}
	return b.removeChunks(id)
}

// removeChunks deletes every chunk of id, holding its lock.
func (b *Backend) removeChunks(id string) error {
	release, err := lockFile(id, true)
	if err != nil {
		return err
	}
	defer release()
	return b.deleteChunks(id, 0)
}

// deleteChunks deletes the chunks of id from index from on.
func (b *Backend) deleteChunks(id string, from int64) error {
	txn, st, err := b.chunks(idb.TransactionReadWrite, idb.DurabilityDefault)
	if err != nil {
		return err
	}
	kr, err := jsKeyRange(id, from)
	if err != nil {
		return err
	}
	if _, err := st.Delete(kr); err != nil {
		return mapErr(err)
	}
	return mapErr(txn.Await(context.Background()))
}

// chunks starts a transaction on the chunks store.
func (b *Backend) chunks(mode idb.TransactionMode, durability idb.TransactionDurability) (*idb.Transaction, *idb.ObjectStore, error) {
	txn, err := b.db.TransactionWithOptions(idb.TransactionOptions{Mode: mode, Durability: durability}, chunksStore)
	if err != nil {
		return nil, nil, err
	}
	st, err := txn.ObjectStore(chunksStore)
	return txn, st, err
}

// Files lists the ids that have chunks (the index's unique keys), but for
// pending ones (journaled).
func (b *Backend) Files() ([]string, error) {
	pending, err := b.journalEntries()
	if err != nil {
		return nil, err
	}
	all, err := b.chunkIDs()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range all {
		if _, ok := pending[id]; !ok {
			out = append(out, id)
		}
	}
	return out, nil
}

// chunkIDs lists the ids that have chunks.
func (b *Backend) chunkIDs() ([]string, error) {
	_, st, err := b.chunks(idb.TransactionReadOnly, idb.DurabilityDefault)
	if err != nil {
		return nil, err
	}
	ix, err := st.Index(byIDIndex)
	if err != nil {
		return nil, err
	}
	req, err := ix.OpenKeyCursor(idb.CursorNextUnique)
	if err != nil {
		return nil, err
	}
	var out []string
	err = req.Iter(context.Background(), func(c *idb.Cursor) error {
		k, err := c.Key()
		if err != nil {
			return err
		}
		if s, ok := str(k); ok {
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// chunkIndexes returns the indexes of the chunks stored for id.
func (b *Backend) chunkIndexes(id string) (map[int64]bool, error) {
	_, st, err := b.chunks(idb.TransactionReadOnly, idb.DurabilityDefault)
	if err != nil {
		return nil, err
	}
	kr, err := chunkRange(id, 0)
	if err != nil {
		return nil, err
	}
	req, err := st.GetAllKeysRange(kr, 0)
	if err != nil {
		return nil, err
	}
	keys, err := req.Await(context.Background())
	if err != nil {
		return nil, mapErr(err)
	}
	present := make(map[int64]bool, len(keys))
	for _, k := range keys {
		if idx, ok := keyIndex(k); ok {
			present[idx] = true
		}
	}
	return present, nil
}

// CatalogGenerations reads every disk record and the mounts record in one
// transaction, so it sees one consistent state, as one generation
// ("records"): the catalog's JSON, or Missing when the database holds no
// record at all.
func (b *Backend) CatalogGenerations(bool) ([]manager.Generation, error) {
	g := manager.Generation{Name: "records"}
	data, missing, err := b.readRecords()
	switch {
	case err != nil:
		g.Err = err
	case missing:
		g.Missing = true
	default:
		g.Data = data
	}
	return []manager.Generation{g}, nil
}

// readRecords builds the catalog's JSON from the records.
func (b *Backend) readRecords() ([]byte, bool, error) {
	ctx := context.Background()
	txn, err := b.db.Transaction(idb.TransactionReadOnly, disksStore, mountsStore)
	if err != nil {
		return nil, false, err
	}
	disks, err := txn.ObjectStore(disksStore)
	if err != nil {
		return nil, false, err
	}
	mounts, err := txn.ObjectStore(mountsStore)
	if err != nil {
		return nil, false, err
	}
	mreq, err := mounts.Get(js.ValueOf(mountsKey))
	if err != nil {
		return nil, false, err
	}
	// Listen for the mounts record now: go-indexeddb attaches its listener
	// when Await is called, and the event must not fire before that.
	type result struct {
		v   js.Value
		err error
	}
	mch := make(chan result, 1)
	go func() {
		v, err := mreq.Await(ctx)
		mch <- result{v, err}
	}()
	creq, err := disks.OpenCursor(idb.CursorNext)
	if err != nil {
		return nil, false, err
	}
	doc := catalogDoc{Version: catalog.Version, Disks: map[string]json.RawMessage{}}
	err = creq.Iter(ctx, func(c *idb.CursorWithValue) error {
		v, err := c.Value()
		if err != nil {
			return err
		}
		raw, err := stringify(v)
		if err != nil {
			return err
		}
		// The key is the record's id (the store's keyPath).
		k, err := c.Key()
		if id, ok := str(k); err == nil && ok && len(raw) > 0 {
			doc.Disks[id] = raw
		}
		return nil
	})
	mr := <-mch // also when the cursor failed: the transaction is over either way
	if err != nil {
		return nil, false, mapErr(err)
	}
	if mr.err != nil {
		return nil, false, mapErr(mr.err)
	}
	hasMounts := false
	if isObject(mr.v) {
		hasMounts = true
		if v, ok := field(mr.v, "value"); ok {
			if raw, err := stringify(safejs.Unsafe(v)); err == nil && len(raw) > 0 && string(raw) != "null" {
				doc.Mounts = raw
			}
		}
	}
	text, err := json.Marshal(doc)
	return text, len(doc.Disks) == 0 && !hasMounts, err
}

// catalogDoc is the catalog's JSON shape, with each record kept raw.
type catalogDoc struct {
	Version int                        `json:"version"`
	Disks   map[string]json.RawMessage `json:"disks"`
	Mounts  json.RawMessage            `json:"mounts,omitempty"`
}

func docOf(c *catalog.Catalog) (catalogDoc, error) {
	var d catalogDoc
	b, err := c.Marshal()
	if err != nil {
		return d, err
	}
	err = json.Unmarshal(b, &d)
	return d, err
}

// WriteCatalog writes back what changed between oldCat (nothing, when
// nil) and next, in one readwrite transaction: records are replaced whole
// (a record this manager did not change is not written), a failed
// transaction changes nothing, and no record is deleted that next does not
// drop from oldCat.
func (b *Backend) WriteCatalog(old manager.Generation, oldCat, next *catalog.Catalog) error {
	if oldCat == nil {
		oldCat = catalog.New()
	}
	before, err := docOf(oldCat)
	if err != nil {
		return err
	}
	after, err := docOf(next)
	if err != nil {
		return err
	}
	ctx := context.Background()
	txn, err := b.db.Transaction(idb.TransactionReadWrite, disksStore, mountsStore)
	if err != nil {
		return err
	}
	disks, err := txn.ObjectStore(disksStore)
	if err != nil {
		return err
	}
	for id, raw := range after.Disks {
		if string(before.Disks[id]) == string(raw) {
			continue
		}
		v, err := parse(raw)
		if err != nil {
			return err
		}
		if _, err := disks.Put(v); err != nil {
			txn.Abort()
			return mapErr(err)
		}
	}
	for id := range before.Disks {
		if _, ok := after.Disks[id]; !ok {
			if _, err := disks.Delete(js.ValueOf(id)); err != nil {
				txn.Abort()
				return mapErr(err)
			}
		}
	}
	// A store with no record at all reads as no catalog (Missing), so a
	// catalog without disks keeps the mounts record: an empty catalog
	// (every disk deleted, or one rebuilt with nothing to list after a
	// tab died importing the first disk) reads back as one.
	if string(before.Mounts) != string(after.Mounts) || len(after.Disks) == 0 {
		if len(after.Mounts) == 0 {
			after.Mounts = json.RawMessage("{}")
		}
		mounts, err := txn.ObjectStore(mountsStore)
		if err != nil {
			return err
		}
		v, err := parse(after.Mounts)
		if err != nil {
			return err
		}
		rec, err := newObject(map[string]any{"key": mountsKey, "value": safejs.Safe(v)})
		if err != nil {
			txn.Abort()
			return err
		}
		if _, err := mounts.Put(rec); err != nil {
			txn.Abort()
			return mapErr(err)
		}
	}
	return mapErr(txn.Await(ctx))
}

func (b *Backend) Estimate() (usage, quota int64, err error) { return jsutil.Estimate() }

// stringify is JSON.stringify(v).
func stringify(v js.Value) ([]byte, error) {
	j, err := safejs.Global().Get("JSON")
	if err != nil {
		return nil, err
	}
	s, err := j.Call("stringify", safejs.Safe(v))
	if err != nil {
		return nil, err
	}
	if s.Type() != safejs.TypeString {
		return nil, nil
	}
	str, err := s.String()
	return []byte(str), err
}

// parse is JSON.parse(b).
func parse(b []byte) (js.Value, error) {
	j, err := safejs.Global().Get("JSON")
	if err != nil {
		return js.Value{}, err
	}
	v, err := j.Call("parse", string(b))
	return safejs.Unsafe(v), err
}

// mapErr turns IndexedDB exceptions into the manager's errors.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, idb.NewDOMException("QuotaExceededError")):
		return diskerr.New("", manager.ErrQuota, "%v", err)
	}
	return err
}
