package sparse

import (
	"aerodisk/internal/zero"
	"encoding/binary"
	"io"
	"io/fs"
	"slices"
	"sync"
	"time"

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
	alloc     int64   // allocated_blocks: data slots [0, alloc)
	mapped    int64   // non-zero table entries; < alloc: freed slots (read-only, or within a discard)
	table     []int64 // block -> file offset of its data, 0 = unallocated
	owner     []int64 // slot -> block, -1 = free (read-only opens, or during a discard)
	scratch   []byte  // one block, for partial allocations and block moves
	recovered byte    // 'A' or 'B' when Open rolled a crash state forward (for tests)
	// paced: freed slots are compacted by CompactStep (a block device
	// paces it between requests), and by Close, not at once.
	paced bool
	// freeHint: no freed slot below it (reuse's search starts there);
	// clearedUnflushed: an entry was cleared since the last flush.
	freeHint         int64
	clearedUnflushed bool
}

// Extent is a run of the logical disk that is either wholly allocated
// (stored in the image) or wholly unallocated (reads as zeros).
type Extent struct {
	Off, Len  int64
	Allocated bool
}

// Create makes a new, empty image of diskSize bytes on st, replacing any
// content: the header, a zeroed table and zeros up to data_offset (BlankSize
// bytes), as Aero's own create writes it. blockSize 0 means
// ChooseBlockSize(diskSize). Invalid sizes, and block sizes whose table Aero
// cannot read, are ErrBadSize, and st is left untouched.
func Create(st storage.Storage, diskSize int64, blockSize uint32) (*Disk, error) {
	l, err := newLayout(diskSize, blockSize)
	if err != nil {
		return nil, err
	}
	// Truncate zero-fills: the table and the padding after it need no writes
	// (on a file system they take no space). The header comes last, so until
	// then the storage holds no image.
	if err := st.Truncate(0); err != nil {
		return nil, err
	}
	if err := st.Truncate(l.fileEnd(0)); err != nil {
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
// rolled forward. Opened writable, every repair is written and flushed, and
// the file is left in the form both Aero readers accept: freed slots (from
// Aero's Rust writer) are compacted away, and a blank file that ends before
// data_offset (written by aerodisk before that was required) is extended.
func Open(st storage.Storage, writable bool) (*Disk, error) {
	return open(st, writable, false)
}

// OpenPaced opens st for writing like Open, except that freed slots (left
// by a killed tab, or by Discard afterwards) are compacted only by
// CompactStep and Close: a block device answers requests between the
// steps. Until then the image is valid for every reader but Aero's
// browser one (docs/aerospar.md, "Compaction in steps").
func OpenPaced(st storage.Storage) (*Disk, error) { return open(st, true, true) }

func open(st storage.Storage, writable, paced bool) (*Disk, error) {
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
	d := &Disk{layout: l, st: st, writable: writable, paced: paced}
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
	case over < 0:
		// Valid: count <= H. Fewer mapped entries than allocated_blocks are
		// slots freed by Aero's Rust writer (discard_range) below its
		// high-water mark; its reader accepts them, and so does this one.
		if d.slotOff(H) > fsize && H > 0 {
			return errf(diskerr.ErrTruncated, "the file (%d bytes) ends before the %d allocated blocks (need %d bytes)", fsize, H, d.slotOff(H))
		}
		d.alloc, d.mapped, d.owner = H, count, owner[:H]
	case d.slotOff(H+1) > fsize:
		// A roll-forward state needs the extra block present; without it the
		// entry just points past the allocated blocks.
		return errf(diskerr.ErrCorrupt, "block %d: entry %#x lies beyond the %d allocated blocks", over, d.table[over], H)
	case count == H+1:
		// Recovery A: crash between writing the entry and the header.
		d.recovered = 'A'
		d.alloc, d.mapped, d.owner = H+1, H+1, owner
		if d.writable {
			if err := writeU64(d.st, uint64(H+1), offAllocated); err != nil {
				return err
			}
			if err := d.st.Flush(); err != nil {
				return err
			}
		}
	case count == H:
		// Recovery B: crash in a discard as earlier aerodisk versions did it
		// (allocated_blocks lowered first), after clearing the freed entry
		// and before repointing the moved block; exactly one slot below H
		// is free. Reads already take the moved block from where its entry
		// points.
		hole := int64(slices.Index(owner[:H], -1))
		d.recovered = 'B'
		d.alloc, d.mapped, d.owner = H, H, owner
		if d.writable {
			if err := d.moveBlock(over, H, hole); err != nil {
				return err
			}
			if err := d.st.Flush(); err != nil {
				return err
			}
			d.owner = d.owner[:H]
			if err := d.st.Truncate(d.fileEnd(H)); err != nil {
				return err
			}
		}
	default:
		return errf(diskerr.ErrCorrupt, "%d blocks are mapped but allocated_blocks is %d, one of them beyond it", count, H)
	}
	if d.writable {
		return d.tidy(fsize)
	}
	return nil
}

// tidy brings a writable image into the form aerodisk writes and Aero's TS
// reader accepts: no freed slots (compact), and a file exactly
// data_offset + allocated blocks long. A blank file written by aerodisk
// before that was required stops at the table's end (Truncate extends it
// with zeros); a crash can leave bytes past the end (they are cut).
func (d *Disk) tidy(fsize int64) error {
	if d.mapped < d.alloc {
		if d.paced {
			return nil // CompactStep's, then Close's
		}
		return d.compact()
	}
	if end := d.fileEnd(d.alloc); fsize != end {
		if err := d.st.Truncate(end); err != nil {
			return err
		}
		return d.st.Flush()
	}
	return nil
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

// AllocatedBlocks is allocated_blocks: the number of data slots in the
// file. It equals MappedBlocks except for a file from Aero's Rust writer with
// freed slots, opened read-only.
func (d *Disk) AllocatedBlocks() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.alloc
}

// MappedBlocks is the number of blocks that hold data (non-zero entries).
func (d *Disk) MappedBlocks() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.mapped
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
		if got, err := readFullN(d.st, p[n:n+c], e+in, "data block"); err != nil {
			return int(n) + got, err // what the run filled before the error counts
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
	data := chunk
	if in != 0 || int64(len(chunk)) != d.bs {
		data = d.block()
		clear(data)
		copy(data[in:], chunk)
	}
	if d.paced && d.mapped < d.alloc {
		return d.reuse(b, data)
	}
	slot := d.alloc
	phys := d.slotOff(slot)
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
	d.mapped++
	return nil
}

// reuse puts block b's data into the lowest freed slot (a paced disk: the
// slots below allocated_blocks are all a reader may look at, and the table
// cannot name more than one slot per block).
func (d *Disk) reuse(b int64, data []byte) error {
	for d.freeHint < d.alloc && d.owner[d.freeHint] >= 0 {
		d.freeHint++
	}
	if d.freeHint >= d.alloc {
		d.freeHint = 0
		for d.owner[d.freeHint] >= 0 {
			d.freeHint++
		}
	}
	slot := d.freeHint
	if d.clearedUnflushed {
		// The cleared entry must be durable before its slot is overwritten.
		if err := d.st.Flush(); err != nil {
			return d.fail(err)
		}
		d.clearedUnflushed = false
	}
	phys := d.slotOff(slot)
	if err := writeFull(d.st, data, phys); err != nil {
		return d.fail(err) // the slot may hold part of it: it is free, nothing names it
	}
	if err := writeU64(d.st, uint64(phys), d.entryOff(b)); err != nil {
		return d.fail(err)
	}
	d.table[b] = phys
	d.owner[slot] = b
	d.mapped++
	return nil
}

// Discard makes [off, off+n) read as zeros: blocks wholly inside are freed
// (their entries cleared, then the topmost data blocks move into the freed
// slots below them, allocated_blocks drops and the file shrinks, so mapped
// entries == allocated_blocks as Aero's browser reader requires), partial
// blocks at the edges are zeroed in place.
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
	for _, b := range free {
		if err := d.free(b); err != nil {
			return err
		}
	}
	if d.paced {
		// Only the cleared entries must be durable before a later move
		// overwrites a freed slot; CompactStep flushes first.
		return nil
	}
	return d.compact()
}

// CompactionPending reports freed slots that CompactStep has yet to fill.
func (d *Disk) CompactionPending() bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.writable && !d.closed && d.mapped < d.alloc
}

// CompactStep moves blocks into freed slots for about budget (at least one
// block), then returns; done once no freed slot is left and the file is cut
// to its blocks (Aero's browser reader accepts it again). moved and left
// count blocks. Every state between steps is a valid image.
func (d *Disk) CompactStep(budget time.Duration) (done bool, moved, left int64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, 0, 0, fs.ErrClosed
	}
	if d.broken != nil {
		return false, 0, 0, d.broken
	}
	if !d.writable || d.mapped == d.alloc {
		return true, 0, 0, nil
	}
	start := time.Now()
	done, moved, err = d.compactUntil(func() bool { return time.Since(start) >= budget })
	return done, moved, d.alloc - d.mapped, err
}

// free clears block b's entry (docs/aerospar.md, Discard step 1): b reads
// as zeros and its slot is free, a state every reader but Aero's TS one
// accepts; compact restores mapped == allocated_blocks.
func (d *Disk) free(b int64) error {
	s := (d.table[b] - d.dataOff) / d.bs
	if err := writeU64(d.st, 0, d.entryOff(b)); err != nil {
		return d.fail(err)
	}
	d.table[b] = 0
	d.owner[s] = -1
	d.mapped--
	d.clearedUnflushed = true
	d.freeHint = min(d.freeHint, s)
	return nil
}

// compact removes the free slots (Discard steps 2–4): each free slot below
// the topmost used one receives the topmost block (copy, flush, repoint),
// then allocated_blocks drops to the number of mapped blocks and the file is
// cut there. Every intermediate state is a valid image.
func (d *Disk) compact() error {
	_, _, err := d.compactUntil(func() bool { return false })
	return err
}

// compactUntil is compact, stopping between two moves once stop says so
// (done false then).
func (d *Disk) compactUntil(stop func() bool) (done bool, n int64, err error) {
	top, lo := d.alloc, int64(0)
	moved := false
	for {
		for top > 0 && d.owner[top-1] < 0 {
			top--
		}
		for lo < top && d.owner[lo] >= 0 {
			lo++
		}
		if lo >= top {
			break
		}
		if n > 0 && stop() {
			return false, n, nil
		}
		if !moved {
			// The cleared entries must be durable before a freed slot is
			// overwritten.
			if err := d.st.Flush(); err != nil {
				return false, n, d.fail(err)
			}
			moved = true
		}
		if err := d.moveBlock(d.owner[top-1], top-1, lo); err != nil {
			return false, n, d.fail(err)
		}
		n++
	}
	if top == d.alloc {
		return true, n, nil
	}
	// The cleared and repointed entries must be durable before the header
	// stops covering the slots they used to name, and the header before the
	// file is cut.
	if err := d.st.Flush(); err != nil {
		return false, n, d.fail(err)
	}
	if err := writeU64(d.st, uint64(top), offAllocated); err != nil {
		return false, n, d.fail(err)
	}
	if err := d.st.Flush(); err != nil {
		return false, n, d.fail(err)
	}
	d.alloc = top
	d.owner = d.owner[:top]
	if err := d.st.Truncate(d.fileEnd(top)); err != nil {
		return false, n, d.fail(err)
	}
	return true, n, nil
}

// moveBlock copies block j's data from slot from to the free slot to,
// flushes, and points j's entry at it: the copy must be durable before the
// entry names it. Slot from is free afterwards. Idempotent.
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
	d.table[j] = d.slotOff(to)
	d.owner[to] = j
	d.owner[from] = -1
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
		// A paced disk leaves no freed slot behind: Aero's browser reader
		// refuses them.
		if d.paced && d.broken == nil && d.mapped < d.alloc {
			if err := d.compact(); err != nil {
				return err
			}
		}
		return d.st.Flush()
	}
	return nil
}
