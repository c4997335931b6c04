package layer

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/storage"
	"aerodisk/internal/zero"
)

// State is what a layer holds for one block.
type State uint8

const (
	// Absent: the layer does not have the block; the layer below decides.
	Absent State = iota
	// Zero: the block reads as zeros whatever is below (a discard).
	Zero
	// Data: the block's bytes are in the layer.
	Data
)

func (s State) String() string {
	switch s {
	case Absent:
		return "absent"
	case Zero:
		return "zero"
	case Data:
		return "data"
	}
	return "State(?)"
}

// cachedTables bounds the L2 tables held in memory (32 × 64 KiB at the
// default block size): a guest's working set, not the disk's size.
const cachedTables = 32

// Layer is an open layer file and the view of the disk through it.
type Layer struct {
	geometry
	h        Header
	slot     int // the current header slot
	st       storage.Storage
	writable bool
	below    io.ReaderAt // nil: the disk below reads as zeros
	l1       []uint64
	allocEnd int64 // where the next cluster goes

	tables map[int64]*l2Table // by L1 index
	tick   uint64             // LRU clock
	buf    []byte             // one block, for partial writes
	err    error              // sticky: a failed metadata write
	closed bool
}

type l2Table struct {
	e    []uint64
	used uint64
}

// Options are the choices made when a layer is created.
type Options struct {
	BlockSize  uint32 // 0: DefaultBlockSize
	ParentName string
	BaseSize   int64
}

// Create makes a new, empty layer of diskSize bytes on st, replacing any
// content: the header in slot 0, the L1 table zero (every block absent).
// The file reaches data_offset and no further.
func Create(st storage.Storage, diskSize int64, o Options) (*Layer, error) {
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if err := checkSizes(o.BlockSize, diskSize); err != nil {
		return nil, err
	}
	if len(o.ParentName) > MaxParentName {
		return nil, errf(diskerr.ErrBadSize, "parent name of %d bytes (at most %d)", len(o.ParentName), MaxParentName)
	}
	h := Header{BlockSize: o.BlockSize, DiskSize: diskSize, Sequence: 1, ParentName: o.ParentName, BaseSize: o.BaseSize}
	g := newGeometry(h.BlockSize, h.DiskSize)
	if err := st.Truncate(0); err != nil {
		return nil, err
	}
	hdr := make([]byte, l1Offset)
	copy(hdr, h.marshal())
	if err := writeFull(st, hdr, 0); err != nil {
		return nil, err
	}
	if err := st.Truncate(g.dataOff); err != nil {
		return nil, err
	}
	return newLayer(st, true, h, 0, g, make([]uint64, g.l1Entries), g.dataOff), nil
}

func newLayer(st storage.Storage, writable bool, h Header, slot int, g geometry, l1 []uint64, fileSize int64) *Layer {
	return &Layer{geometry: g, h: h, slot: slot, st: st, writable: writable, l1: l1,
		allocEnd: roundUp(fileSize, g.bs), tables: map[int64]*l2Table{}}
}

// Open opens the layer file on st. Read-only opens never write st.
func Open(st storage.Storage, writable bool) (*Layer, error) {
	size, err := st.Size()
	if err != nil {
		return nil, err
	}
	h, slot, err := readHeader(st, size)
	if err != nil {
		return nil, err
	}
	g := newGeometry(h.BlockSize, h.DiskSize)
	if size < g.dataOff {
		return nil, errf(diskerr.ErrTruncated, "file of %d bytes ends before data_offset %d", size, g.dataOff)
	}
	raw := make([]byte, 8*g.l1Entries) // ≤ size: checked just above
	if _, err := readFull(st, raw, l1Offset, "the L1 table"); err != nil {
		return nil, err
	}
	l1 := make([]uint64, g.l1Entries)
	seen := make(map[uint64]bool)
	for i := range l1 {
		e := binary.LittleEndian.Uint64(raw[8*i:])
		if e != 0 {
			if err := checkCluster(g, e, size); err != nil {
				return nil, errf(diskerr.ErrCorrupt, "L1 entry %d: %v", i, err)
			}
			if seen[e] {
				return nil, errf(diskerr.ErrCorrupt, "L1 entries share the L2 table at %d", e)
			}
			seen[e] = true
		}
		l1[i] = e
	}
	return newLayer(st, writable, h, slot, g, l1, size), nil
}

// OpenReader opens a layer read-only over r, a file of size bytes.
func OpenReader(r io.ReaderAt, size int64) (*Layer, error) {
	return Open(&readOnly{r, size}, false)
}

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

// checkCluster: e names a whole cluster of the file, at or past data_offset.
func checkCluster(g geometry, e uint64, fileSize int64) error {
	if e%uint64(g.bs) != 0 || e < uint64(g.dataOff) || e > uint64(fileSize) || uint64(fileSize)-e < uint64(g.bs) {
		return errors.New("offset " + itoa(int64(e)) + " is not a whole cluster of the file")
	}
	return nil
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	neg := n < 0
	if neg {
		n = -n
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Header returns the current header.
func (l *Layer) Header() Header { return l.h }

// Size is the virtual disk size.
func (l *Layer) Size() int64 { return l.size }

// BlockSize is the layer's block size.
func (l *Layer) BlockSize() int64 { return l.bs }

// Blocks is the number of blocks of the disk.
func (l *Layer) Blocks() int64 { return l.blocks }

// Writable reports whether the layer was opened for writing.
func (l *Layer) Writable() bool { return l.writable }

// SetBelow sets the disk below this layer (nil: zeros). It must have the
// layer's size.
func (l *Layer) SetBelow(r io.ReaderAt) { l.below = r }

// Below is the disk below this layer.
func (l *Layer) Below() io.ReaderAt { return l.below }

// table returns L2 table i (nil when it does not exist), loading and
// checking it on first use.
func (l *Layer) table(i int64) (*l2Table, error) {
	if l.closed {
		// A merge may outlive the device it yields to.
		return nil, fs.ErrClosed
	}
	if l.l1[i] == 0 {
		return nil, nil
	}
	l.tick++
	if t := l.tables[i]; t != nil {
		t.used = l.tick
		return t, nil
	}
	raw := make([]byte, l.bs)
	if _, err := readFull(l.st, raw, int64(l.l1[i]), "an L2 table"); err != nil {
		return nil, err
	}
	t := &l2Table{e: make([]uint64, l.perL2), used: l.tick}
	for j := range t.e {
		e := binary.LittleEndian.Uint64(raw[8*j:])
		if e > entryZero {
			if err := checkCluster(l.geometry, e, l.allocEnd); err != nil {
				return nil, errf(diskerr.ErrCorrupt, "block %d: %v", i*l.perL2+int64(j), err)
			}
			if e == l.l1[i] {
				return nil, errf(diskerr.ErrCorrupt, "block %d names its own L2 table", i*l.perL2+int64(j))
			}
		}
		if i*l.perL2+int64(j) >= l.blocks && e != entryAbsent {
			return nil, errf(diskerr.ErrCorrupt, "L2 entry for block %d past the disk's %d blocks", i*l.perL2+int64(j), l.blocks)
		}
		t.e[j] = e
	}
	l.remember(i, t)
	return t, nil
}

func (l *Layer) remember(i int64, t *l2Table) {
	if len(l.tables) >= cachedTables {
		var oldest int64 = -1
		for k, v := range l.tables {
			if oldest < 0 || v.used < l.tables[oldest].used {
				oldest = k
			}
		}
		delete(l.tables, oldest)
	}
	l.tables[i] = t
}

// Lookup says what the layer holds for block b and, for Data, where.
func (l *Layer) Lookup(b int64) (State, int64, error) {
	if b < 0 || b >= l.blocks {
		return Absent, 0, errf(diskerr.ErrBadSize, "block %d outside the disk's %d blocks", b, l.blocks)
	}
	t, err := l.table(b / l.perL2)
	if err != nil || t == nil {
		return Absent, 0, err
	}
	switch e := t.e[b%l.perL2]; e {
	case entryAbsent:
		return Absent, 0, nil
	case entryZero:
		return Zero, 0, nil
	default:
		return Data, int64(e), nil
	}
}

// ReadAt reads the disk as seen through the layer, with
// io.SectionReader's rules at the end of the disk.
func (l *Layer) ReadAt(p []byte, off int64) (int, error) {
	if l.closed {
		return 0, fs.ErrClosed
	}
	if off < 0 {
		return 0, errf(diskerr.ErrBadSize, "negative offset %d", off)
	}
	if off >= l.size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > l.size-off {
		p, eof = p[:l.size-off], io.EOF
	}
	for done := int64(0); done < int64(len(p)); {
		pos := off + done
		b := pos / l.bs
		s, doff, err := l.Lookup(b)
		if err != nil {
			return int(done), err
		}
		// The run: following blocks in the same state (and, for data,
		// in consecutive clusters) are read with one call.
		n := min((b+1)*l.bs-pos, int64(len(p))-done)
		for nb := b + 1; done+n < int64(len(p)); nb++ {
			s2, d2, err := l.Lookup(nb)
			if err != nil || s2 != s || (s == Data && d2 != doff+(nb-b)*l.bs) {
				break
			}
			n = min(n+l.bs, int64(len(p))-done)
		}
		chunk := p[done : done+n]
		switch s {
		case Zero:
			clear(chunk)
		case Data:
			if got, err := readFull(l.st, chunk, doff+pos-b*l.bs, "a data cluster"); err != nil {
				return int(done) + got, err
			}
		case Absent:
			if got, err := l.readBelow(chunk, pos); err != nil {
				return int(done) + got, err
			}
		}
		done += n
	}
	return len(p), eof
}

func (l *Layer) readBelow(p []byte, off int64) (int, error) {
	if l.below == nil {
		clear(p)
		return len(p), nil
	}
	n, err := l.below.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (l *Layer) checkWrite(off, n int64) error {
	switch {
	case l.closed:
		return fs.ErrClosed
	case !l.writable:
		return errf(diskerr.ErrReadOnly, "the layer is open read-only")
	case l.err != nil:
		return l.err
	case off < 0 || n < 0 || off > l.size || n > l.size-off:
		return errf(diskerr.ErrBadSize, "range [%d,+%d) outside the disk of %d bytes", off, n, l.size)
	}
	return nil
}

// fail makes err sticky: after a failed table write the layer's state in
// memory may be ahead of the file, so nothing more is written.
func (l *Layer) fail(err error) error {
	if l.err == nil {
		l.err = err
	}
	return err
}

// WriteAt writes p at off into the layer. A block the layer lacks is
// completed from the layer below before it is stored (docs/overlays.md,
// "Writing"): the data cluster first, then its entry.
func (l *Layer) WriteAt(p []byte, off int64) (int, error) {
	if err := l.checkWrite(off, int64(len(p))); err != nil {
		return 0, err
	}
	for done := int64(0); done < int64(len(p)); {
		pos := off + done
		b := pos / l.bs
		in := pos - b*l.bs
		c := min(l.bs-in, int64(len(p))-done)
		s, doff, err := l.Lookup(b)
		if err != nil {
			return int(done), err
		}
		chunk := p[done : done+c]
		whole := in == 0 && c == l.blockLen(b)
		if zero.Is(chunk) {
			// Zeros never become a named cluster of zeros: a whole block
			// becomes a zero entry, a part is merged and checked.
			if whole {
				if s != Zero {
					if err := l.SetZero(b, 1); err != nil {
						return int(done), err
					}
				}
				done += c
				continue
			}
			if s == Zero {
				done += c
				continue
			}
		}
		if s == Data {
			if zero.Is(chunk) {
				// The block may now be all zeros: then a zero entry (the
				// cluster keeps its old bytes, leaked until compaction).
				buf := l.block()[:l.blockLen(b)]
				if _, err := readFull(l.st, buf, doff, "a data cluster"); err != nil {
					return int(done), err
				}
				copy(buf[in:], chunk)
				if zero.Is(buf) {
					if err := l.SetZero(b, 1); err != nil {
						return int(done), err
					}
					done += c
					continue
				}
			}
			if err := writeFull(l.st, chunk, doff+in); err != nil {
				return int(done), err
			}
			done += c
			continue
		}
		if whole && c == l.bs {
			// A run of whole non-zero blocks the layer lacks: one append,
			// then their entries.
			n := int64(1)
			for ; done+(n+1)*l.bs <= int64(len(p)); n++ {
				s2, _, err := l.Lookup(b + n)
				if err != nil || s2 == Data || zero.Is(p[done+n*l.bs:done+(n+1)*l.bs]) {
					break
				}
			}
			at := l.allocEnd
			if err := writeFull(l.st, p[done:done+n*l.bs], at); err != nil {
				return int(done), err
			}
			l.allocEnd += n * l.bs
			if err := l.setEntries(b, n, func(k int64) uint64 { return uint64(at + k*l.bs) }); err != nil {
				return int(done), err
			}
			done += n * l.bs
			continue
		}
		// Part of a block (or the disk's short last block): build the
		// whole cluster in buf.
		buf := l.block()
		if s == Zero || whole {
			clear(buf)
		} else if _, err := l.readBelow(buf[:l.blockLen(b)], b*l.bs); err != nil {
			return int(done), err
		}
		clear(buf[l.blockLen(b):])
		copy(buf[in:], chunk)
		if zero.Is(buf) {
			err = l.SetZero(b, 1)
		} else {
			err = l.store(b, buf)
		}
		if err != nil {
			return int(done), err
		}
		done += c
	}
	return len(p), nil
}

func (l *Layer) block() []byte {
	if l.buf == nil {
		l.buf = make([]byte, l.bs)
	}
	return l.buf
}

// store appends one whole cluster for block b and names it.
func (l *Layer) store(b int64, cluster []byte) error {
	at := l.allocEnd
	if err := writeFull(l.st, cluster, at); err != nil {
		return err
	}
	l.allocEnd += l.bs
	return l.setEntries(b, 1, func(int64) uint64 { return uint64(at) })
}

// PutBlock stores block b whole (len(data) is the block's length; a merge
// copies blocks this way). An all-zero block becomes a zero entry.
func (l *Layer) PutBlock(b int64, data []byte) error {
	if b < 0 || b >= l.blocks || int64(len(data)) != l.blockLen(b) {
		return errf(diskerr.ErrBadSize, "block %d of %d bytes", b, len(data))
	}
	if err := l.checkWrite(b*l.bs, int64(len(data))); err != nil {
		return err
	}
	if zero.Is(data) {
		return l.SetZero(b, 1)
	}
	s, doff, err := l.Lookup(b)
	if err != nil {
		return err
	}
	if s == Data {
		return writeFull(l.st, data, doff)
	}
	if int64(len(data)) == l.bs {
		return l.store(b, data)
	}
	buf := l.block()
	clear(buf)
	copy(buf, data)
	return l.store(b, buf)
}

// SetZero makes blocks [b, b+n) read as zeros in this layer.
func (l *Layer) SetZero(b, n int64) error {
	if b < 0 || n < 0 || b > l.blocks || n > l.blocks-b {
		return errf(diskerr.ErrBadSize, "blocks [%d,+%d) outside the disk's %d blocks", b, n, l.blocks)
	}
	if err := l.checkWrite(0, 0); err != nil {
		return err
	}
	return l.setEntries(b, n, func(int64) uint64 { return entryZero })
}

// Discard makes [off, off+n) read as zeros: whole blocks become zero
// entries, the parts of blocks at either end are written with zeros.
func (l *Layer) Discard(off, n int64) error {
	if err := l.checkWrite(off, n); err != nil {
		return err
	}
	end := off + n
	for off < end {
		b := off / l.bs
		in := off - b*l.bs
		c := min(l.blockLen(b)-in, end-off)
		if in == 0 && c == l.blockLen(b) {
			// Every whole block up to end at once.
			last := end / l.bs // blocks wholly before end
			if end == l.size {
				last = l.blocks
			}
			if err := l.SetZero(b, last-b); err != nil {
				return err
			}
			off = min(end, last*l.bs)
			continue
		}
		if s, _, err := l.Lookup(b); err != nil {
			return err
		} else if s == Zero {
			off += c
			continue
		}
		if _, err := l.WriteAt(make([]byte, c), off); err != nil {
			return err
		}
		off += c
	}
	return nil
}

// setEntries sets the entries of blocks [b, b+n) to val(k) for block b+k,
// table by table: an existing table's entries in one write; a new table
// written whole before its L1 entry.
func (l *Layer) setEntries(b, n int64, val func(k int64) uint64) error {
	for k := int64(0); k < n; {
		i := (b + k) / l.perL2
		j0 := (b + k) % l.perL2
		m := min(n-k, l.perL2-j0)
		t, err := l.table(i)
		if err != nil {
			return err
		}
		if t == nil {
			allAbsent := true
			for x := range m {
				if val(k+x) != entryAbsent {
					allAbsent = false
					break
				}
			}
			if allAbsent {
				k += m
				continue
			}
			t = &l2Table{e: make([]uint64, l.perL2)}
			for x := range m {
				t.e[j0+x] = val(k + x)
			}
			raw := make([]byte, l.bs)
			for j, e := range t.e {
				binary.LittleEndian.PutUint64(raw[8*j:], e)
			}
			at := l.allocEnd
			if err := writeFull(l.st, raw, at); err != nil {
				return l.fail(err)
			}
			l.allocEnd += l.bs
			var e [8]byte
			binary.LittleEndian.PutUint64(e[:], uint64(at))
			if err := writeFull(l.st, e[:], l1Offset+8*i); err != nil {
				return l.fail(err)
			}
			l.l1[i] = uint64(at)
			l.tick++
			t.used = l.tick
			l.remember(i, t)
		} else {
			raw := make([]byte, 8*m)
			for x := range m {
				t.e[j0+x] = val(k + x)
				binary.LittleEndian.PutUint64(raw[8*x:], t.e[j0+x])
			}
			if err := writeFull(l.st, raw, int64(l.l1[i])+8*j0); err != nil {
				return l.fail(err)
			}
		}
		k += m
	}
	return nil
}

// Walk calls fn for every block the layer has (Zero or Data), in block
// order, until fn returns false or an error stops it.
func (l *Layer) Walk(fn func(b int64, s State) bool) error {
	for i := range int64(len(l.l1)) {
		t, err := l.table(i)
		if err != nil {
			return err
		}
		if t == nil {
			continue
		}
		// Copy the entries: fn may write through the layer (a merge).
		entries := append([]uint64(nil), t.e...)
		for j, e := range entries {
			if e == entryAbsent {
				continue
			}
			s := Data
			if e == entryZero {
				s = Zero
			}
			if !fn(i*l.perL2+int64(j), s) {
				return nil
			}
		}
	}
	return nil
}

// LiveBytes is what a compacted copy of the layer would take: the header
// and L1 table up to data_offset, and one cluster per L2 table and per
// data block. The file's size above it is reclaimable (clusters left
// unnamed by discards, zeroing overwrites or a killed tab's appends).
func (l *Layer) LiveBytes() (int64, error) {
	var tables, data int64
	for _, e := range l.l1 {
		if e != 0 {
			tables++
		}
	}
	err := l.Walk(func(_ int64, s State) bool {
		if s == Data {
			data++
		}
		return true
	})
	return l.dataOff + (tables+data)*l.bs, err
}

// ReadBlock reads block b's bytes as the layer holds them into p (the
// block's length): Data from its cluster, Zero as zeros. Absent is an error.
func (l *Layer) ReadBlock(b int64, p []byte) (State, error) {
	s, doff, err := l.Lookup(b)
	if err != nil {
		return s, err
	}
	if int64(len(p)) != l.blockLen(b) {
		return s, errf(diskerr.ErrBadSize, "block %d is %d bytes, not %d", b, l.blockLen(b), len(p))
	}
	switch s {
	case Zero:
		clear(p)
	case Data:
		_, err = readFull(l.st, p, doff, "a data cluster")
	default:
		err = errf(diskerr.ErrBadSize, "block %d is not in the layer", b)
	}
	return s, err
}

// SetParent rewrites the header with a new parent (a merge relinked the
// layer) through the spare slot, so a torn write leaves the old header.
func (l *Layer) SetParent(name string, baseSize int64) error {
	if err := l.checkWrite(0, 0); err != nil {
		return err
	}
	if len(name) > MaxParentName {
		return errf(diskerr.ErrBadSize, "parent name of %d bytes (at most %d)", len(name), MaxParentName)
	}
	h := l.h
	h.ParentName, h.BaseSize = name, baseSize
	return l.writeHeader(h)
}

// ClearDelta makes an imported delta an ordinary layer: later writes
// append past its footer, which would no longer match.
func (l *Layer) ClearDelta() error {
	if err := l.checkWrite(0, 0); err != nil {
		return err
	}
	h := l.h
	h.Flags &^= FlagDelta
	return l.writeHeader(h)
}

func (l *Layer) writeHeader(h Header) error {
	h.Sequence = l.h.Sequence + 1
	spare := 1 - l.slot
	if err := writeFull(l.st, h.marshal(), int64(spare*slotSize)); err != nil {
		return l.fail(err)
	}
	if err := l.st.Flush(); err != nil {
		return l.fail(err)
	}
	l.h, l.slot = h, spare
	return nil
}

// Flush makes every write so far durable.
func (l *Layer) Flush() error {
	if l.closed || !l.writable {
		return nil
	}
	if l.err != nil {
		return l.err
	}
	return l.st.Flush()
}

// Close flushes a writable layer; the storage is the caller's to close.
func (l *Layer) Close() error {
	if l.closed {
		return nil
	}
	err := l.Flush()
	l.closed = true
	l.tables = nil
	return err
}

func readFull(r io.ReaderAt, p []byte, off int64, what string) (int, error) {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = errf(diskerr.ErrTruncated, "%s at offset %d lies past the end of the file", what, off)
	}
	return n, err
}

func writeFull(w io.WriterAt, p []byte, off int64) error {
	n, err := w.WriteAt(p, off)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return err
}
