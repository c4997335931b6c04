package layer

import (
	"encoding/binary"
	"hash"
	"hash/crc32"
	"io"
	"strings"

	"aerodisk/internal/diskerr"
)

// DeltaSource is what a delta is made of: the blocks that differ from the
// base, and their bytes.
type DeltaSource interface {
	// Changed yields every changed block in block order, Zero or Data. It
	// is walked three times and must yield the same blocks each time.
	Changed(yield func(b int64, s State) bool) error
	// ReadBlock reads a Data block's bytes (the block's length).
	ReadBlock(b int64, p []byte) error
}

// DeltaInfo describes a delta's disk and the base it applies to.
type DeltaInfo struct {
	DiskSize  int64
	BlockSize uint32 // 0: DefaultBlockSize
	BaseCRC32 uint32 // CRC32 of the base's logical content
	BaseName  string // for people
}

// Footer is a delta's last 512 bytes.
type Footer struct {
	CRC32      uint32 // of every byte before the footer
	DataBlocks int64
	ZeroBlocks int64
}

// WriteDelta writes a delta to w front to back (docs/overlays.md,
// "Deltas"): the header, the L1 table, the L2 tables, the data clusters in
// block order, the footer. Memory: one counter per L1 entry, one block.
func WriteDelta(w io.Writer, info DeltaInfo, src DeltaSource) (Footer, error) {
	if info.BlockSize == 0 {
		info.BlockSize = DefaultBlockSize
	}
	if err := checkSizes(info.BlockSize, info.DiskSize); err != nil {
		return Footer{}, err
	}
	name := info.BaseName
	if len(name) > MaxParentName {
		name = strings.ToValidUTF8(name[:MaxParentName], "") // not inside a rune
	}
	g := newGeometry(info.BlockSize, info.DiskSize)

	// Pass 1: which L2 tables exist, how many data clusters.
	counts := make([]int32, g.l1Entries)
	var f Footer
	last := int64(-1)
	order := func(b int64) error {
		if b <= last || b >= g.blocks {
			return errf(diskerr.ErrCorrupt, "changed blocks out of order or outside the disk (block %d after %d)", b, last)
		}
		last = b
		return nil
	}
	var err error
	walkErr := src.Changed(func(b int64, s State) bool {
		if err = order(b); err != nil {
			return false
		}
		counts[b/g.perL2]++
		if s == Data {
			f.DataBlocks++
		} else {
			f.ZeroBlocks++
		}
		return true
	})
	if err = firstErr(err, walkErr); err != nil {
		return Footer{}, err
	}
	var tables int64
	l1 := make([]byte, g.dataOff-l1Offset)
	for i, c := range counts {
		if c > 0 {
			binary.LittleEndian.PutUint64(l1[8*i:], uint64(g.dataOff+tables*g.bs))
			tables++
		}
	}
	dataStart := g.dataOff + tables*g.bs

	crc := crc32.NewIEEE()
	out := &countingWriter{w: io.MultiWriter(w, crc)}
	h := Header{BlockSize: info.BlockSize, DiskSize: info.DiskSize, Sequence: 1, Flags: FlagDelta,
		BaseSize: info.DiskSize, BaseCRC32: info.BaseCRC32, ParentName: name}
	head := make([]byte, l1Offset)
	copy(head, h.marshal())
	if _, err := out.Write(head); err != nil {
		return Footer{}, err
	}
	if _, err := out.Write(l1); err != nil {
		return Footer{}, err
	}

	// Pass 2: the L2 tables, in L1 order.
	table := make([]byte, g.bs)
	cur, m := int64(-1), int64(0)
	var zeros, datas int64
	last = -1
	emit := func() error {
		if cur < 0 {
			return nil
		}
		_, err := out.Write(table)
		clear(table)
		return err
	}
	walkErr = src.Changed(func(b int64, s State) bool {
		if err = order(b); err != nil {
			return false
		}
		if i := b / g.perL2; i != cur {
			if err = emit(); err != nil {
				return false
			}
			cur = i
		}
		e := uint64(entryZero)
		if s == Data {
			e = uint64(dataStart + m*g.bs)
			m++
			datas++
		} else {
			zeros++
		}
		binary.LittleEndian.PutUint64(table[8*(b%g.perL2):], e)
		return true
	})
	if err = firstErr(err, walkErr); err == nil {
		err = emit()
	}
	if err == nil && (datas != f.DataBlocks || zeros != f.ZeroBlocks) {
		err = errf(diskerr.ErrCorrupt, "the changed blocks changed while the delta was written")
	}
	if err != nil {
		return Footer{}, err
	}

	// Pass 3: the data clusters, in block order.
	buf := make([]byte, g.bs)
	datas = 0
	walkErr = src.Changed(func(b int64, s State) bool {
		if s != Data {
			return true
		}
		n := g.blockLen(b)
		if err = src.ReadBlock(b, buf[:n]); err != nil {
			return false
		}
		clear(buf[n:])
		if _, err = out.Write(buf); err != nil {
			return false
		}
		datas++
		return true
	})
	if err = firstErr(err, walkErr); err == nil && datas != f.DataBlocks {
		err = errf(diskerr.ErrCorrupt, "the changed blocks changed while the delta was written")
	}
	if err != nil {
		return Footer{}, err
	}
	f.CRC32 = crc.Sum32()
	if _, err := w.Write(f.marshal()); err != nil {
		return Footer{}, err
	}
	return f, nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (f Footer) marshal() []byte {
	b := make([]byte, FooterSize)
	copy(b, FooterMagic)
	binary.LittleEndian.PutUint32(b[8:], f.CRC32)
	binary.LittleEndian.PutUint64(b[12:], uint64(f.DataBlocks))
	binary.LittleEndian.PutUint64(b[20:], uint64(f.ZeroBlocks))
	return b
}

// FooterCheck verifies a delta as its bytes stream by: Write every byte of
// the file in order, then Verify. (An import checks the delta while it
// copies it, reading it once.)
type FooterCheck struct {
	crc  hash.Hash32
	tail []byte // the last FooterSize bytes seen
	n    int64
}

// NewFooterCheck starts a check.
func NewFooterCheck() *FooterCheck { return &FooterCheck{crc: crc32.NewIEEE()} }

func (c *FooterCheck) Write(p []byte) (int, error) {
	// Everything but the last FooterSize bytes goes into the CRC; hold
	// those back until more arrive.
	c.n += int64(len(p))
	all := len(c.tail) + len(p)
	if all <= FooterSize {
		c.tail = append(c.tail, p...)
		return len(p), nil
	}
	spill := all - FooterSize
	if spill <= len(c.tail) {
		c.crc.Write(c.tail[:spill])
		c.tail = append(c.tail[:0], c.tail[spill:]...)
		c.tail = append(c.tail, p...)
		return len(p), nil
	}
	c.crc.Write(c.tail)
	c.crc.Write(p[:spill-len(c.tail)])
	c.tail = append(c.tail[:0], p[spill-len(c.tail):]...)
	return len(p), nil
}

// Verify reads the footer of the bytes written and checks their CRC.
func (c *FooterCheck) Verify() (Footer, error) {
	if len(c.tail) < FooterSize || string(c.tail[:8]) != FooterMagic {
		return Footer{}, errf(diskerr.ErrTruncated, "the delta has no footer (%d bytes): it is incomplete", c.n)
	}
	le := binary.LittleEndian
	f := Footer{CRC32: le.Uint32(c.tail[8:]), DataBlocks: int64(le.Uint64(c.tail[12:])), ZeroBlocks: int64(le.Uint64(c.tail[20:]))}
	if got := c.crc.Sum32(); got != f.CRC32 {
		return Footer{}, errf(diskerr.ErrChecksum, "the delta's CRC32 is %08x, its footer says %08x", got, f.CRC32)
	}
	return f, nil
}

// VerifyDelta reads a whole delta file and checks its footer.
func VerifyDelta(r io.ReaderAt, size int64) (Footer, error) {
	c := NewFooterCheck()
	if _, err := io.Copy(c, io.NewSectionReader(r, 0, size)); err != nil {
		return Footer{}, err
	}
	return c.Verify()
}
