//go:build js && wasm

package idb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall/js"

	"github.com/hack-pad/go-indexeddb/idb"
	"github.com/hack-pad/safejs"

	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/zero"
)

const (
	// batchChunks chunks go into one transaction while importing: 8 and 3
	// in flight measured steadier than 4 and 2 (make bench line 7, median
	// per-run ratio 1.03 against 0.97; docs/idb.md).
	batchChunks = 8
	// maxInflight transactions may be committing while the next batch fills:
	// IndexedDB commits on its own threads, so the copy and checksum of the
	// next chunks overlap with it, and memory stays bounded.
	maxInflight = 3
)

// File is one disk's chunks, read and written like a file. It keeps one
// chunk in Go memory (the one being written, or the last one read); full
// chunks are copied into reusable staging Uint8Arrays — never views over
// the wasm memory, which IndexedDB's structured clone would copy whole — and
// put batchChunks to a relaxed-durability transaction. An all-zero chunk is
// never stored (and is deleted if it was). Reads see every write: pending
// chunks are submitted before a read goes to the database, and IndexedDB
// runs a later transaction on the same store after the earlier ones.
// A whole-chunk WriteAt is queued straight from the caller's bytes, and
// PutChunk queues a chunk a caller already holds in a JS-owned Uint8Array
// (the raw import's fast path, wasm/helper.go).
type File struct {
	b        *Backend
	id       string
	size     int64
	writable bool
	release  func()
	present  map[int64]bool // chunks stored (or queued to be)

	buf    []byte // one chunk
	bufIdx int64  // the chunk buf holds; -1 for none
	dirty  bool   // buf holds writes not yet queued

	pending  []pendingOp
	staging  []safejs.Value // batchChunks Uint8Array(ChunkSize), reused
	inflight []chan error
	err      error // the first failed transaction's, returned from then on

	ahead  *prefetch // the next chunk's read, started while this one is used
	closed bool
}

type pendingOp struct {
	idx  int64
	data safejs.Value // the chunk; undefined to delete it
	del  bool
}

type prefetch struct {
	idx int64
	ch  chan getResult
}

type getResult struct {
	v   js.Value
	err error
}

func newFile(b *Backend, id string, size int64, present map[int64]bool, writable bool, release func()) *File {
	return &File{b: b, id: id, size: size, writable: writable, release: release, present: present, bufIdx: -1}
}

func (f *File) Size() (int64, error) { return f.size, nil }

// StoredBytes is what the stored chunks hold (manager.StoredSizer).
func (f *File) StoredBytes() (int64, error) {
	var n int64
	for idx := range f.present {
		n += max(0, min(ChunkSize, f.size-idx*ChunkSize))
	}
	return n, nil
}

// DataRun reports stored chunks as data and absent ones as holes
// (formats.HoleReporter), so exports and checksums skip holes unread.
func (f *File) DataRun(off, n int64) (bool, int64, error) {
	isData := func(idx int64) bool { return f.present[idx] || (f.bufIdx == idx && f.dirty) }
	idx := off / ChunkSize
	data := isData(idx)
	run := (idx+1)*ChunkSize - off
	for run < n && isData(idx+1) == data {
		idx++
		run += ChunkSize
	}
	return data, min(run, n), nil
}

func (f *File) check(write bool) error {
	switch {
	case f.closed:
		return fmt.Errorf("idb: disk %s is closed", f.id)
	case write && !f.writable:
		return fmt.Errorf("idb: disk %s is open read-only", f.id)
	}
	return f.err
}

func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check(false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, diskerr.New("", catalog.ErrInvalid, "negative offset")
	}
	if off >= f.size {
		return 0, io.EOF
	}
	n, eof := len(p), error(nil)
	if rest := f.size - off; int64(n) > rest {
		n, eof = int(rest), io.EOF
	}
	for done := 0; done < n; {
		pos := off + int64(done)
		idx, in := pos/ChunkSize, int(pos%ChunkSize)
		m := min(n-done, ChunkSize-in)
		switch {
		case f.bufIdx == idx:
			copy(p[done:done+m], f.buf[in:])
		case !f.present[idx]:
			clear(p[done : done+m])
		default:
			if err := f.load(idx); err != nil {
				return done, err
			}
			copy(p[done:done+m], f.buf[in:])
		}
		done += m
	}
	return n, eof
}

func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if err := f.check(true); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, diskerr.New("", catalog.ErrInvalid, "negative offset")
	}
	for done := 0; done < len(p); {
		pos := off + int64(done)
		idx, in := pos/ChunkSize, int(pos%ChunkSize)
		m := min(len(p)-done, ChunkSize-in)
		if in == 0 && m == ChunkSize {
			// A whole chunk (an import's every write): queued straight
			// from p, without passing through buf.
			f.replaced(idx, pos+int64(m))
			if err := f.enqueue(idx, p[done:done+m]); err != nil {
				return done, err
			}
			done += m
			continue
		}
		if f.bufIdx != idx {
			if f.present[idx] {
				if err := f.load(idx); err != nil {
					return done, err
				}
			} else {
				if err := f.retire(); err != nil {
					return done, err
				}
				f.ensureBuf()
				clear(f.buf)
				f.bufIdx = idx
			}
		}
		copy(f.buf[in:], p[done:done+m])
		f.dirty = true
		f.size = max(f.size, pos+int64(m))
		done += m
	}
	return len(p), nil
}

// PutChunk queues chunk idx from data, a Uint8Array of n bytes that is not
// a view over wasm memory and that nobody changes until it has been put
// (allZero: it holds only zeros, and is not stored). It replaces the whole
// chunk: bytes past n read as zeros. It is for a caller
// that assembles whole chunks in JS (the raw import's fast path, which
// then hands them to the checksum worker): sent reports that every queued
// chunk, this one included, has been put — cloned — so data may be
// transferred or reused.
func (f *File) PutChunk(idx int64, data safejs.Value, n int, allZero bool) (sent bool, err error) {
	if err := f.check(true); err != nil {
		return false, err
	}
	if idx < 0 || n <= 0 || n > ChunkSize {
		return false, diskerr.New("", catalog.ErrInvalid, "chunk %d of %d bytes", idx, n)
	}
	f.replaced(idx, idx*ChunkSize+int64(n))
	if err := f.queue(idx, data, allZero); err != nil {
		return false, err
	}
	return len(f.pending) == 0, nil
}

// replaced forgets what a whole new chunk idx, ending at byte end, makes
// stale: buffered writes to it, its read ahead.
func (f *File) replaced(idx, end int64) {
	if f.bufIdx == idx {
		f.bufIdx, f.dirty = -1, false
	}
	if f.ahead != nil && f.ahead.idx == idx {
		f.ahead = nil
	}
	f.size = max(f.size, end)
}

// Submit puts the queued chunks now (in the background; Flush waits).
func (f *File) Submit() error {
	if err := f.check(true); err != nil {
		return err
	}
	return f.submit()
}

func (f *File) ensureBuf() {
	if f.buf == nil {
		f.buf = make([]byte, ChunkSize)
	}
}

// retire queues the buffered chunk if it holds writes.
func (f *File) retire() error {
	if !f.dirty {
		return nil
	}
	f.dirty = false
	n := min(ChunkSize, f.size-f.bufIdx*ChunkSize)
	return f.enqueue(f.bufIdx, f.buf[:n])
}

// enqueue copies a chunk out of Go memory into a staging array and queues
// it.
func (f *File) enqueue(idx int64, b []byte) error {
	if zero.Is(b) {
		return f.queue(idx, safejs.Undefined(), true)
	}
	var dst safejs.Value
	var err error
	if len(b) == ChunkSize {
		dst, err = f.stagingSlot(len(f.pending))
	} else {
		dst, err = newUint8Array(len(b)) // exactly sized: the clone copies the whole buffer
	}
	if err != nil {
		return err
	}
	if _, err := safejs.CopyBytesToJS(dst, b); err != nil {
		return err
	}
	return f.queue(idx, dst, false)
}

// queue queues the put of chunk idx's data (or, allZero, the delete of
// what was stored) and puts a full batch.
func (f *File) queue(idx int64, data safejs.Value, allZero bool) error {
	if allZero {
		if !f.present[idx] {
			return nil
		}
		delete(f.present, idx)
		f.pending = append(f.pending, pendingOp{idx: idx, del: true})
	} else {
		f.present[idx] = true
		f.pending = append(f.pending, pendingOp{idx: idx, data: data})
	}
	if len(f.pending) >= batchChunks {
		return f.submit()
	}
	return nil
}

func (f *File) stagingSlot(i int) (safejs.Value, error) {
	for len(f.staging) <= i {
		a, err := newUint8Array(ChunkSize)
		if err != nil {
			return a, err
		}
		f.staging = append(f.staging, a)
	}
	return f.staging[i], nil
}

func newUint8Array(n int) (safejs.Value, error) {
	ctor, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return ctor, err
	}
	return ctor.New(n)
}

// submit puts the pending chunks in one relaxed-durability transaction.
// put() clones each value at once, so the staging arrays are free again
// when it returns; the commit completes in the background.
func (f *File) submit() error {
	if len(f.pending) == 0 {
		return f.err
	}
	for len(f.inflight) >= maxInflight {
		f.waitOldest()
	}
	if f.err != nil {
		return f.err
	}
	ops := f.pending
	f.pending = f.pending[:0]
	txn, st, err := f.b.chunks(idb.TransactionReadWrite, idb.DurabilityRelaxed)
	if err != nil {
		return f.fail(err)
	}
	obj, err := safejs.Global().Get("Object")
	if err != nil {
		return f.fail(err)
	}
	for _, op := range ops {
		if op.del {
			_, err = st.Delete(js.ValueOf([]any{f.id, float64(op.idx)}))
		} else {
			var rec safejs.Value
			if rec, err = obj.New(); err == nil {
				err = errors.Join(rec.Set("id", f.id), rec.Set("index", float64(op.idx)), rec.Set("data", op.data))
			}
			if err == nil {
				_, err = st.Put(safejs.Unsafe(rec))
			}
		}
		if err != nil {
			txn.Abort()
			return f.fail(err)
		}
	}
	txn.Commit()
	ch := make(chan error, 1)
	// The listener is attached before this goroutine's caller next yields to
	// the event loop, so the completion cannot be missed.
	go func() { ch <- txn.Await(context.Background()) }()
	f.inflight = append(f.inflight, ch)
	return nil
}

func (f *File) waitOldest() {
	ch := f.inflight[0]
	f.inflight = f.inflight[1:]
	if err := <-ch; err != nil && f.err == nil {
		f.err = mapErr(err)
	}
}

func (f *File) fail(err error) error {
	if f.err == nil {
		f.err = mapErr(err)
	}
	return f.err
}

// load makes buf hold chunk idx as stored.
func (f *File) load(idx int64) error {
	if err := f.retire(); err != nil {
		return err
	}
	if err := f.submit(); err != nil { // the read must see queued writes
		return err
	}
	var r getResult
	if f.ahead != nil && f.ahead.idx == idx {
		r = <-f.ahead.ch
	} else {
		r.v, r.err = f.get(idx).wait()
	}
	f.ahead = nil
	if r.err != nil {
		return mapErr(r.err)
	}
	f.ensureBuf()
	if err := copyChunk(f.buf, r.v); err != nil {
		return fmt.Errorf("idb: chunk %d of disk %s: %w", idx, f.id, err)
	}
	f.bufIdx = idx
	// Sequential readers (export, verify, conversion) find the next chunk
	// already on its way.
	if f.present[idx+1] {
		f.ahead = f.get(idx + 1)
	}
	return nil
}

// get starts reading chunk idx.
func (f *File) get(idx int64) *prefetch {
	p := &prefetch{idx: idx, ch: make(chan getResult, 1)}
	_, st, err := f.b.chunks(idb.TransactionReadOnly, idb.DurabilityDefault)
	if err != nil {
		p.ch <- getResult{err: err}
		return p
	}
	req, err := st.Get(js.ValueOf([]any{f.id, float64(idx)}))
	if err != nil {
		p.ch <- getResult{err: err}
		return p
	}
	go func() {
		v, err := req.Await(context.Background())
		p.ch <- getResult{v, err}
	}()
	return p
}

func (p *prefetch) wait() (js.Value, error) {
	r := <-p.ch
	return r.v, r.err
}

// errBadChunk: a chunk record without bytes in a form we read.
var errBadChunk = errors.New("chunk record has no Uint8Array or ArrayBuffer data")

// copyChunk copies a chunk record's data into buf, zero-filling past its end
// (a missing record reads as zeros).
func copyChunk(buf []byte, rec js.Value) error {
	clear(buf)
	data, ok := field(rec, "data")
	if !ok {
		return nil
	}
	u8, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return err
	}
	ab, err := safejs.Global().Get("ArrayBuffer")
	if err != nil {
		return err
	}
	if ok, _ := data.InstanceOf(ab); ok {
		if data, err = u8.New(data); err != nil {
			return err
		}
	} else if ok, _ := data.InstanceOf(u8); !ok {
		return errBadChunk
	}
	n, err := data.Length()
	if err != nil {
		return err
	}
	if n > len(buf) {
		return fmt.Errorf("chunk holds %d bytes, more than %d", n, len(buf))
	}
	_, err = safejs.CopyBytesToGo(buf[:n], data)
	return err
}

// Truncate changes the length; chunks past a shorter end are deleted.
func (f *File) Truncate(size int64) error {
	if err := f.check(true); err != nil {
		return err
	}
	if size < 0 {
		return diskerr.New("", catalog.ErrInvalid, "negative size")
	}
	if size >= f.size {
		f.size = size
		return nil
	}
	keep := (size + ChunkSize - 1) / ChunkSize // chunks [0, keep) remain
	if tail := size % ChunkSize; tail != 0 && (f.present[keep-1] || f.bufIdx == keep-1) {
		if f.bufIdx != keep-1 {
			if err := f.load(keep - 1); err != nil {
				return err
			}
		}
		clear(f.buf[tail:])
		f.dirty = true
	}
	if f.bufIdx >= keep {
		f.bufIdx, f.dirty = -1, false
	}
	f.ahead = nil
	f.size = size
	if err := f.retire(); err != nil {
		return err
	}
	if err := f.submit(); err != nil {
		return err
	}
	for idx := range f.present {
		if idx >= keep {
			delete(f.present, idx)
		}
	}
	return f.b.deleteChunks(f.id, keep)
}

// Flush queues the buffered chunk and waits until every transaction has
// committed: after Flush the data is in the database.
func (f *File) Flush() error {
	if f.closed {
		return f.check(false)
	}
	if f.writable {
		if err := f.retire(); err != nil {
			return err
		}
		if err := f.submit(); err != nil {
			return err
		}
	}
	for len(f.inflight) > 0 {
		f.waitOldest()
	}
	return f.err
}

// Close flushes and releases the disk's lock.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	var err error
	if f.writable && f.err == nil {
		err = f.Flush()
	}
	for len(f.inflight) > 0 {
		f.waitOldest()
	}
	f.closed = true
	f.buf, f.staging, f.pending = nil, nil, nil
	if f.release != nil {
		f.release()
	}
	return err
}
