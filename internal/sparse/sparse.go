package sparse

import (
	"aerodisk/internal/zero"
	"cmp"
	"encoding/binary"
	"io"
	"io/fs"
	"slices"
	"sync"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/storage"
)

// Disk is an opened AEROSPAR image. Its methods are safe for concurrent use.
type Disk struct {
	layout
	mu        sync.RWMutex
	st        storage.Storage
	writable  bool
	closed    bool
	broken    error   // sticky: a metadata write failed, the on-disk state is uncertain
	alloc     int64   // allocated_blocks
	table     []int64 // block -> file offset of its data, 0 = unallocated
	owner     []int64 // slot -> block; -1 only transiently during recovery B (read-only)
	scratch   []byte  // one block, for partial allocations and block moves
	recovered byte    // 'A' or 'B' when Open rolled a crash state forward (for tests)
}

// Extent is a run of the logical disk that is either wholly allocated
// (stored in the image) or wholly unallocated (reads as zeros).
type Extent struct {
	Off, Len  int64
	Allocated bool
}

// Create makes a new, empty image of diskSize bytes on st, replacing any
// content: the header and a zeroed table, nothing else. blockSize 0 means
// DefaultBlockSize. Invalid sizes are ErrBadSize.
func Create(st storage.Storage, diskSize int64, blockSize uint32) (*Disk, error) {
	l, err := newLayout(diskSize, blockSize)
	if err != nil {
		return nil, err
	}
	// Truncate zero-fills: the table needs no writes. The header comes last,
	// so until then the storage holds no image.
	if err := st.Truncate(0); err != nil {
		return nil, err
	}
	if err := st.Truncate(l.tableEnd()); err != nil {
		return nil, err
	}
	h := l.header(0)
	if err := writeFull(st, h.marshal(), 0); err != nil {
		return nil, err
	}
	// No flush here: creation stays O(table) even on slow storage; Flush or
	// Close makes the new image durable.
	return &Disk{layout: l, st: st, writable: true, table: make([]int64, l.entries)}, nil
}

// OpenReader opens a read-only image from r, whose size is size.
func OpenReader(r io.ReaderAt, size int64) (*Disk, error) {
	return Open(&readOnly{r: r, size: size}, false)
}

// readOnly adapts an io.ReaderAt to storage.Storage for read-only opens.
type readOnly struct {
	r    io.ReaderAt
	size int64
}

func (s *readOnly) ReadAt(p []byte, off int64) (int, error) { return s.r.ReadAt(p, off) }
func (s *readOnly) WriteAt([]byte, int64) (int, error) {
	return 0, errf(diskerr.ErrReadOnly, "opened read-only")
}
func (s *readOnly) Truncate(int64) error { return errf(diskerr.ErrReadOnly, "opened read-only") }
func (s *readOnly) Size() (int64, error) { return s.size, nil }
func (s *readOnly) Flush() error         { return nil }

// Open opens and fully validates the image on st (see docs/aerospar.md for
// every rule and its error). A crash-interrupted allocation or discard is
// rolled forward; when writable, the repair is written and flushed.
func Open(st storage.Storage, writable bool) (*Disk, error) {
	fsize, err := st.Size()
	if err != nil {
		return nil, err
	}
	if fsize < 0 {
		return nil, errf(diskerr.ErrBadSize, "negative file size %d", fsize)
	}
	var hb [HeaderSize]byte
	want := int(min(HeaderSize, fsize))
	n, rerr := st.ReadAt(hb[:want], 0)
	if n < want {
		if rerr != nil && rerr != io.EOF {
			return nil, rerr
		}
		want = n
	}
	m := min(len(Magic), want)
	if string(hb[:m]) != Magic[:m] {
		return nil, errf(diskerr.ErrUnknownFormat, "no AEROSPAR magic")
	}
	if want < HeaderSize {
		return nil, errf(diskerr.ErrTruncated, "file of %d bytes ends inside the %d-byte header", want, HeaderSize)
	}
	h := parseHeader(hb[:])
	l, err := checkHeader(h, fsize)
	if err != nil {
		return nil, err
	}
	d := &Disk{layout: l, st: st, writable: writable}
	if err := d.loadTable(h.allocated, fsize); err != nil {
		return nil, err
	}
	return d, nil
}

// checkHeader validates every header field against each other and the file
// size, before anything is allocated.
func checkHeader(h header, fsize int64) (layout, error) {
	if h.version != Version {
		return layout{}, errf(diskerr.ErrUnsupported, "version %d (only %d is supported)", h.version, Version)
	}
	if h.headerSize != HeaderSize {
		return layout{}, errf(diskerr.ErrCorrupt, "header_size is %d, not %d", h.headerSize, HeaderSize)
	}
	if h.reserved != 0 {
		return layout{}, errf(diskerr.ErrUnsupported, "reserved header field is %#x, not 0", h.reserved)
	}
	if !validBlockSize(h.blockSize) {
		return layout{}, errf(diskerr.ErrCorrupt, "block_size %d is not a power of two between %d and %d", h.blockSize, MinBlockSize, MaxBlockSize)
	}
	if h.diskSize == 0 || h.diskSize%512 != 0 || h.diskSize > 1<<63-1 {
		return layout{}, errf(diskerr.ErrBadSize, "disk_size %d is not a non-zero multiple of 512 below 2^63", h.diskSize)
	}
	if h.tableOffset != HeaderSize {
		return layout{}, errf(diskerr.ErrCorrupt, "table_offset is %d, not %d", h.tableOffset, HeaderSize)
	}
	l := geometry(int64(h.diskSize), int64(h.blockSize))
	if h.tableEntries != uint64(l.entries) {
		return layout{}, errf(diskerr.ErrCorrupt, "table_entries is %d; a %d-byte disk of %d-byte blocks needs %d", h.tableEntries, h.diskSize, h.blockSize, l.entries)
	}
	if h.dataOffset != uint64(l.dataOff) {
		return layout{}, errf(diskerr.ErrCorrupt, "data_offset is %d, not %d", h.dataOffset, l.dataOff)
	}
	if h.allocated > h.tableEntries {
		return layout{}, errf(diskerr.ErrCorrupt, "allocated_blocks %d exceeds table_entries %d", h.allocated, h.tableEntries)
	}
	if l.tableEnd() > fsize {
		return layout{}, errf(diskerr.ErrTruncated, "block table [%d,%d) extends past the end of the %d-byte file", HeaderSize, l.tableEnd(), fsize)
	}
	return l, nil
}

// loadTable reads and validates the table (its size is bounded by the file
// size, checked by checkHeader) and applies the recovery rules.
func (d *Disk) loadTable(allocated uint64, fsize int64) error {
	H := int64(allocated)
	d.table = make([]int64, d.entries)
	owner := make([]int64, H+1) // slot -> block, -1 = free; slot H only for recovery
	for i := range owner {
		owner[i] = -1
	}
	var count int64
	buf := make([]byte, min(64<<10, 8*d.entries))
	for b := int64(0); b < d.entries; {
		chunk := buf[:min(int64(len(buf)), 8*(d.entries-b))]
		if err := readFull(d.st, chunk, d.entryOff(b), "block table"); err != nil {
			return err
		}
		for i := 0; i < len(chunk); i, b = i+8, b+1 {
			e := binary.LittleEndian.Uint64(chunk[i:])
			if e == 0 {
				continue
			}
			if e < uint64(d.dataOff) {
				return errf(diskerr.ErrCorrupt, "block %d: entry %#x lies below data_offset %#x", b, e, d.dataOff)
			}
			rel := e - uint64(d.dataOff)
			if rel%uint64(d.bs) != 0 {
				return errf(diskerr.ErrCorrupt, "block %d: entry %#x is not block-aligned", b, e)
			}
			slot := rel / uint64(d.bs)
			if slot > uint64(H) {
				return errf(diskerr.ErrCorrupt, "block %d: entry %#x lies beyond the %d allocated blocks", b, e, H)
			}
			if prev := owner[slot]; prev >= 0 {
				return errf(diskerr.ErrCorrupt, "blocks %d and %d: duplicate entry %#x", prev, b, e)
			}
			owner[slot] = b
			d.table[b] = int64(e)
			count++
		}
	}
	over := owner[H] // the block at slot H, if any: only legal in the recovery states
	switch {
	case over < 0 && count == H:
		owner = owner[:H]
	case over < 0:
		return errf(diskerr.ErrCorrupt, "%d blocks are mapped but allocated_blocks is %d", count, H)
	case d.slotOff(H+1) > fsize:
		// A roll-forward state needs the extra block present; without it the
		// entry just points past the allocated blocks.
		return errf(diskerr.ErrCorrupt, "block %d: entry %#x lies beyond the %d allocated blocks", over, d.table[over], H)
	case count == H+1:
		// Recovery A: crash between writing the entry and the header.
		d.recovered = 'A'
		d.alloc = H + 1
		d.owner = owner
		if d.writable {
			if err := writeU64(d.st, uint64(H+1), offAllocated); err != nil {
				return err
			}
			if err := d.st.Flush(); err != nil {
				return err
			}
		}
		return nil
	case count == H:
		// Recovery B: crash in a discard after clearing the freed entry and
		// before repointing the moved block; exactly one slot below H is free.
		hole := int64(slices.Index(owner[:H], -1))
		d.recovered = 'B'
		d.alloc = H
		d.owner = owner
		if d.writable {
			return d.finishMove(over, H, hole)
		}
		return nil
	default:
		return errf(diskerr.ErrCorrupt, "%d blocks are mapped but allocated_blocks is %d", count, H)
	}
	if d.slotOff(H) > fsize && H > 0 {
		return errf(diskerr.ErrTruncated, "the file (%d bytes) ends before the %d allocated blocks (need %d bytes)", fsize, H, d.slotOff(H))
	}
	d.alloc = H
	d.owner = owner
	return nil
}

// finishMove completes a discard's block move and truncates (recovery B).
func (d *Disk) finishMove(j, from, to int64) error {
	if err := d.moveBlock(j, from, to); err != nil {
		return err
	}
	return d.st.Truncate(d.fileEnd(d.alloc))
}

// block returns the scratch block buffer (contents undefined).
func (d *Disk) block() []byte {
	if d.scratch == nil {
		d.scratch = make([]byte, d.bs)
	}
	return d.scratch
}

// Size is the logical disk size in bytes.
func (d *Disk) Size() int64 { return d.size }

// BlockSize is the allocation unit in bytes.
func (d *Disk) BlockSize() uint32 { return uint32(d.bs) }

// AllocatedBlocks is the number of data blocks stored.
func (d *Disk) AllocatedBlocks() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.alloc
}

// Writable reports whether the disk was opened for writing.
func (d *Disk) Writable() bool { return d.writable }

// ReadAt reads logical content; unallocated blocks read as zeros. Like
// io.SectionReader, a read reaching past Size returns the bytes before it
// and io.EOF.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errf(diskerr.ErrBadSize, "negative offset %d", off)
	}
	if off >= d.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	var eof error
	if rem := d.size - off; int64(len(p)) > rem {
		p, eof = p[:rem], io.EOF
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return 0, fs.ErrClosed
	}
	for n := int64(0); n < int64(len(p)); {
		pos := off + n
		b, in := pos/d.bs, pos%d.bs
		c := min(d.bs-in, int64(len(p))-n)
		e := d.table[b]
		if e == 0 {
			clear(p[n : n+c])
			n += c
			continue
		}
		// Coalesce physically consecutive blocks into one read.
		for nb := b + 1; n+c < int64(len(p)) && d.table[nb] == d.table[nb-1]+d.bs; nb++ {
			c += min(d.bs, int64(len(p))-n-c)
		}
		if err := readFull(d.st, p[n:n+c], e+in, "data block"); err != nil {
			return int(n), err
		}
		n += c
	}
	return len(p), eof
}

// Extent describes the longest run starting at off, at most n bytes long,
// whose blocks are all allocated or all unallocated. off must be in
// [0, Size()) and n > 0.
func (d *Disk) Extent(off, n int64) (Extent, error) {
	if off < 0 || off >= d.size || n <= 0 {
		return Extent{}, errf(diskerr.ErrBadSize, "extent query [%d,+%d) outside disk of %d bytes", off, n, d.size)
	}
	end := off + min(n, d.size-off)
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return Extent{}, fs.ErrClosed
	}
	b := off / d.bs
	alloc := d.table[b] != 0
	pos := (b + 1) * d.bs
	for b++; pos < end && (d.table[b] != 0) == alloc; b++ {
		pos += d.bs
	}
	return Extent{Off: off, Len: min(pos, end) - off, Allocated: alloc}, nil
}

func (d *Disk) checkWrite(off, n int64) error {
	if !d.writable {
		return errf(diskerr.ErrReadOnly, "disk opened read-only")
	}
	if d.closed {
		return fs.ErrClosed
	}
	if d.broken != nil {
		return d.broken
	}
	if off < 0 || n < 0 || off > d.size || n > d.size-off {
		return errf(diskerr.ErrBadSize, "range [%d,+%d) outside disk of %d bytes", off, n, d.size)
	}
	return nil
}

// fail records a failed metadata update: the on-disk state may now differ
// from memory, so further changes are refused until the disk is reopened.
func (d *Disk) fail(err error) error {
	if d.broken == nil {
		d.broken = err
	}
	return err
}

// WriteAt writes p at off. The whole range must lie inside the disk (else
// ErrBadSize and nothing is written). Allocated blocks are overwritten in
// place; non-zero data for an unallocated block allocates it (the rest of
// the block reads as zeros); zero data for an unallocated block is dropped.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkWrite(off, int64(len(p))); err != nil {
		return 0, err
	}
	for n := int64(0); n < int64(len(p)); {
		pos := off + n
		b, in := pos/d.bs, pos%d.bs
		c := min(d.bs-in, int64(len(p))-n)
		e := d.table[b]
		if e != 0 {
			for nb := b + 1; n+c < int64(len(p)) && d.table[nb] == d.table[nb-1]+d.bs; nb++ {
				c += min(d.bs, int64(len(p))-n-c)
			}
			if err := writeFull(d.st, p[n:n+c], e+in); err != nil {
				return int(n), err
			}
		} else if chunk := p[n : n+c]; !zero.Is(chunk) {
			if err := d.allocate(b, in, chunk); err != nil {
				return int(n), err
			}
		}
		n += c
	}
	return len(p), nil
}

// allocate stores chunk at offset in of the unallocated block b: data at
// the next slot, then the table entry, then allocated_blocks.
func (d *Disk) allocate(b, in int64, chunk []byte) error {
	slot := d.alloc
	phys := d.slotOff(slot)
	data := chunk
	if in != 0 || int64(len(chunk)) != d.bs {
		data = d.block()
		clear(data)
		copy(data[in:], chunk)
	}
	if err := writeFull(d.st, data, phys); err != nil {
		return err // nothing references the slot yet
	}
	if err := writeU64(d.st, uint64(phys), d.entryOff(b)); err != nil {
		return d.fail(err)
	}
	if err := writeU64(d.st, uint64(slot+1), offAllocated); err != nil {
		return d.fail(err)
	}
	d.table[b] = phys
	d.owner = append(d.owner, b)
	d.alloc++
	return nil
}

// Discard makes [off, off+n) read as zeros: blocks wholly inside are freed
// (the last data block moves into each freed slot, keeping data dense, and
// the file shrinks), partial blocks at the edges are zeroed in place.
func (d *Disk) Discard(off, n int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkWrite(off, n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	end := off + n
	var free []int64
	for b := off / d.bs; b*d.bs < end; b++ {
		e := d.table[b]
		if e == 0 {
			continue
		}
		start := b * d.bs
		lo, hi := max(off, start), min(end, start+d.blockLen(b))
		if lo == start && hi == start+d.blockLen(b) {
			free = append(free, b)
			continue
		}
		for p := lo; p < hi; {
			c := min(hi-p, int64(len(zeros)))
			if err := writeFull(d.st, zeros[:c], e+p-start); err != nil {
				return err
			}
			p += c
		}
	}
	if len(free) == 0 {
		return nil
	}
	// Highest slot first: freeing the top block needs no move.
	slices.SortFunc(free, func(a, b int64) int { return cmp.Compare(d.table[b], d.table[a]) })
	for _, b := range free {
		if err := d.free(b); err != nil {
			return err
		}
	}
	if err := d.st.Truncate(d.fileEnd(d.alloc)); err != nil {
		return d.fail(err)
	}
	return nil
}

// free unallocates block b (docs/aerospar.md, Discard steps 1–4).
func (d *Disk) free(b int64) error {
	H := d.alloc
	s := (d.table[b] - d.dataOff) / d.bs
	last := H - 1
	if err := writeU64(d.st, uint64(H-1), offAllocated); err != nil {
		return d.fail(err)
	}
	if err := writeU64(d.st, 0, d.entryOff(b)); err != nil {
		return d.fail(err)
	}
	d.table[b] = 0
	d.alloc = H - 1
	if s == last {
		d.owner = d.owner[:last]
		return nil
	}
	d.owner[s] = -1
	if err := d.moveBlock(d.owner[last], last, s); err != nil {
		return d.fail(err)
	}
	return nil
}

// moveBlock does steps 3–4 of a discard (docs/aerospar.md): copy slot from
// to slot to, flush, point block j there, flush. Idempotent. d.owner holds
// slot from as its last element, and d.alloc is already from.
func (d *Disk) moveBlock(j, from, to int64) error {
	buf := d.block()
	if err := readFull(d.st, buf, d.slotOff(from), "data block"); err != nil {
		return err
	}
	if err := writeFull(d.st, buf, d.slotOff(to)); err != nil {
		return err
	}
	if err := d.st.Flush(); err != nil {
		return err
	}
	if err := writeU64(d.st, uint64(d.slotOff(to)), d.entryOff(j)); err != nil {
		return err
	}
	if err := d.st.Flush(); err != nil {
		return err
	}
	d.table[j] = d.slotOff(to)
	d.owner[to] = j
	d.owner = d.owner[:from]
	return nil
}

// Flush makes everything written so far durable.
func (d *Disk) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fs.ErrClosed
	}
	if !d.writable {
		return nil
	}
	return d.st.Flush()
}

// Close flushes a writable disk and releases it. The storage itself is the
// caller's to close. Closing twice is a no-op.
func (d *Disk) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.writable {
		return d.st.Flush()
	}
	return nil
}
