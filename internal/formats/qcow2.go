package formats

// qcow2 reader (versions 2 and 3). docs/qcow2.md describes the layout as this
// file reads it and which error each bad input gives.

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"aerodisk/internal/diskerr"
)

const (
	qcowMagic = "QFI\xfb"

	qcowV2HeaderLen = 72
	qcowV3HeaderLen = 104 // through header_length; compression_type at 104 is optional

	qcowMinClusterBits = 9
	qcowMaxClusterBits = 21 // qemu's implementation limit (2 MiB)

	// qcowMaxVirtualSize: L1/L2 entries address 56 bits, and qemu refuses
	// larger disks too. Anything bigger is not a real image.
	qcowMaxVirtualSize = int64(1) << 56
	// qcowMaxL1Entries: qemu's 32 MiB limit on the active L1 table.
	qcowMaxL1Entries = 32 << 20 / 8

	qcowOffsetMask = 0x00fffffffffffe00 // bits 9-55 of L1 and standard L2 entries
	qcowCopied     = uint64(1) << 63
	qcowCompressed = uint64(1) << 62
	qcowZeroFlag   = uint64(1) // v3 standard L2 entry: reads as zeros

	// incompatible feature bits
	qcowIncDirty        = 1 << 0
	qcowIncCorrupt      = 1 << 1
	qcowIncDataFile     = 1 << 2
	qcowIncCompression  = 1 << 3
	qcowIncExtendedL2   = 1 << 4
	qcowIncKnown        = qcowIncDirty | qcowIncCorrupt | qcowIncDataFile | qcowIncCompression | qcowIncExtendedL2
	qcowCompatLazyRefs  = 1 << 0
	qcowExtEnd          = 0x00000000
	qcowExtBackingFmt   = 0xe2792aca
	qcowExtFeatureNames = 0x6803f857

	qcowCompressionZlib = 0
	qcowCompressionZstd = 1

	// qcowL2CacheBytes bounds the memory spent on cached L2 tables.
	// qcowL2CacheMaxTables keeps the linear cache search short for small clusters.
	qcowL2CacheBytes     = 4 << 20
	qcowL2CacheMaxTables = 256
)

// overlap names the metadata table that [off, off+n) overlaps, if any.
func (q *qcow2) overlap(off, n int64) (string, bool) {
	for _, t := range q.tables {
		if t.overlaps(span{off: off, end: off + n}) {
			return t.what, true
		}
	}
	return "", false
}

func probeQcow2(r io.ReaderAt, size int64) bool {
	// The magic alone decides: a qcow version 1 image (same magic) is then
	// reported as unsupported instead of being mistaken for raw.
	b := readMagic(r, 0, 4, size)
	return b != nil && string(b) == qcowMagic
}

func qcowErr(sentinel error, msg string, args ...any) error {
	return diskerr.New(string(Qcow2), sentinel, msg, args...)
}

// qcow2 is an opened qcow2 image. A mutex serialises ReadAt and Extent (they
// share the L2 and decompression caches), so an Image may be used from
// several goroutines, one call at a time.
type qcow2 struct {
	r        io.ReaderAt
	fileSize int64
	size     int64 // virtual size (header size rounded down to 512)

	clusterBits uint
	clusterSize int64
	l2Bits      uint // log2(entries per L2 table)
	version     uint32
	compression uint8

	// compressed descriptor layout
	csizeShift uint
	csizeMask  uint64
	coffMask   uint64

	l1 []uint64 // the L1 entries the virtual size needs (raw, flags included)

	// tables are the fixed metadata ranges (L1 table, refcount table) that no
	// L2 table or data cluster may overlap.
	tables []span

	backing Image
	info    Info

	mu      sync.Mutex
	l2cache []*qcowL2
	l2last  *qcowL2 // most recently used
	l2max   int
	tick    uint64

	// last decompressed cluster, keyed by its descriptor
	zkey   uint64
	zvalid bool
	zbuf   []byte // one cluster
	cbuf   []byte // compressed input
	inflat io.ReadCloser
	zstdec *zstd.Decoder
}

type qcowL2 struct {
	l1i  uint64
	used uint64
	b    []byte // one cluster of big-endian entries
}

func openQcow2(o *opener, src Source) (Image, error) {
	var h [qcowV3HeaderLen + 8]byte
	n := min(int64(len(h)), src.Size)
	if n < 4 {
		return nil, qcowErr(ErrUnknownFormat, "not a qcow2 image (file of %d bytes)", src.Size)
	}
	if _, err := readFull(src.R, h[:n], 0, Qcow2, "header"); err != nil {
		return nil, err
	}
	if string(h[:4]) != qcowMagic {
		return nil, qcowErr(ErrUnknownFormat, "not a qcow2 image (bad magic % x)", h[:4])
	}
	if n < 8 {
		return nil, qcowErr(ErrTruncated, "file of %d bytes is shorter than the header", src.Size)
	}
	be := binary.BigEndian
	version := be.Uint32(h[4:])
	if version != 2 && version != 3 {
		return nil, qcowErr(ErrUnsupported, "qcow version %d (only qcow2 versions 2 and 3 are supported)", version)
	}
	hdrLen := int64(qcowV2HeaderLen)
	if version == 3 {
		hdrLen = qcowV3HeaderLen
	}
	if n < hdrLen {
		return nil, qcowErr(ErrTruncated, "file of %d bytes is shorter than the %d-byte version %d header", src.Size, hdrLen, version)
	}

	backingOff := be.Uint64(h[8:])
	backingLen := be.Uint32(h[16:])
	clusterBits := be.Uint32(h[20:])
	rawSize := be.Uint64(h[24:])
	cryptMethod := be.Uint32(h[32:])
	l1Size := be.Uint32(h[36:])
	l1Off := be.Uint64(h[40:])
	refTableOff := be.Uint64(h[48:])
	refTableClusters := be.Uint32(h[56:])
	nbSnapshots := be.Uint32(h[60:])

	var incompat, compat, autoclear uint64
	refcountOrder := uint32(4)
	compression := uint8(qcowCompressionZlib)
	if version == 3 {
		incompat = be.Uint64(h[72:])
		compat = be.Uint64(h[80:])
		autoclear = be.Uint64(h[88:])
		refcountOrder = be.Uint32(h[96:])
		hdrLen = int64(be.Uint32(h[100:]))
	}

	if clusterBits < qcowMinClusterBits {
		return nil, qcowErr(ErrCorrupt, "cluster_bits %d is below the minimum of %d (512-byte clusters)", clusterBits, qcowMinClusterBits)
	}
	if clusterBits > qcowMaxClusterBits {
		return nil, qcowErr(ErrUnsupported, "cluster_bits %d: clusters larger than 2 MiB (cluster_bits %d) are not supported", clusterBits, qcowMaxClusterBits)
	}
	cs := int64(1) << clusterBits
	if version == 3 {
		if hdrLen < qcowV3HeaderLen {
			return nil, qcowErr(ErrCorrupt, "version 3 header_length %d is below the minimum of %d", hdrLen, qcowV3HeaderLen)
		}
		if hdrLen > cs {
			return nil, qcowErr(ErrCorrupt, "header_length %d exceeds the cluster size %d", hdrLen, cs)
		}
		if hdrLen > src.Size {
			return nil, qcowErr(ErrTruncated, "header of %d bytes lies past the end of the %d-byte file", hdrLen, src.Size)
		}
		if hdrLen > 104 {
			compression = h[104]
		}
	}

	// Header extensions: from the end of the header to the backing file name
	// (or the end of the first cluster).
	extEnd := cs
	if backingOff != 0 && backingOff < uint64(cs) {
		extEnd = int64(backingOff)
	}
	var backingFmt string
	var haveBackingFmt bool
	var featureNames []byte
	for off := hdrLen; off+8 <= extEnd; {
		var eh [8]byte
		if _, err := readFull(src.R, eh[:], off, Qcow2, "header extension"); err != nil {
			return nil, err
		}
		typ, l := be.Uint32(eh[:]), int64(be.Uint32(eh[4:]))
		off += 8
		if typ == qcowExtEnd {
			break
		}
		if l > extEnd-off {
			return nil, qcowErr(ErrCorrupt, "header extension %#08x of %d bytes at offset %d runs past the header area (ends at %d)", typ, l, off-8, extEnd)
		}
		switch typ {
		case qcowExtBackingFmt:
			if l >= 16 {
				return nil, qcowErr(ErrCorrupt, "backing format name of %d bytes is too long", l)
			}
			b := make([]byte, l)
			if _, err := readFull(src.R, b, off, Qcow2, "backing format name"); err != nil {
				return nil, err
			}
			backingFmt, haveBackingFmt = string(b), true
		case qcowExtFeatureNames:
			featureNames = make([]byte, l)
			if _, err := readFull(src.R, featureNames, off, Qcow2, "feature name table"); err != nil {
				return nil, err
			}
		}
		off += (l + 7) &^ 7
	}

	if cryptMethod != 0 {
		m := map[uint32]string{1: "AES", 2: "LUKS"}[cryptMethod]
		if m == "" {
			m = fmt.Sprintf("method %d", cryptMethod)
		}
		return nil, qcowErr(ErrUnsupported, "encrypted images (%s encryption) are not supported", m)
	}
	if incompat&qcowIncCorrupt != 0 {
		return nil, qcowErr(ErrCorrupt, "the image is marked corrupt (incompatible feature bit 1); run qemu-img check -r")
	}
	if incompat&qcowIncDataFile != 0 {
		return nil, qcowErr(ErrUnsupported, "external data files (incompatible feature bit 2) are not supported")
	}
	if incompat&qcowIncExtendedL2 != 0 {
		return nil, qcowErr(ErrUnsupported, "extended L2 entries / subclusters (incompatible feature bit 4) are not supported")
	}
	if unknown := incompat &^ qcowIncKnown; unknown != 0 {
		return nil, qcowErr(ErrUnsupported, "unknown incompatible features: %s", qcowFeatureList(unknown, featureNames))
	}
	switch compression {
	case qcowCompressionZlib:
		if incompat&qcowIncCompression != 0 {
			return nil, qcowErr(ErrCorrupt, "compression type bit (incompatible feature bit 3) is set but compression_type is zlib")
		}
	case qcowCompressionZstd:
		if incompat&qcowIncCompression == 0 {
			return nil, qcowErr(ErrCorrupt, "compression_type is zstd but the compression type bit (incompatible feature bit 3) is not set")
		}
	default:
		return nil, qcowErr(ErrUnsupported, "unknown compression type %d", compression)
	}
	if refcountOrder > 6 {
		return nil, qcowErr(ErrCorrupt, "refcount_order %d exceeds 6 (64-bit refcounts)", refcountOrder)
	}

	// Virtual size and the L1 table it needs.
	if rawSize > uint64(qcowMaxVirtualSize) {
		return nil, qcowErr(ErrBadSize, "virtual size %d exceeds 2^56 bytes", rawSize)
	}
	size := int64(rawSize) &^ 511
	l2Bits := uint(clusterBits - 3)
	clusters := (uint64(size) + uint64(cs) - 1) >> clusterBits
	l1Need := (clusters + (1 << l2Bits) - 1) >> l2Bits
	if uint64(l1Size) < l1Need {
		return nil, qcowErr(ErrCorrupt, "L1 table has %d entries but a %d-byte disk needs %d", l1Size, size, l1Need)
	}
	if l1Size > 0 {
		if l1Off%uint64(cs) != 0 {
			return nil, qcowErr(ErrCorrupt, "L1 table offset %#x is not cluster-aligned", l1Off)
		}
		if l1Off == 0 {
			return nil, qcowErr(ErrCorrupt, "L1 table at offset 0 overlaps the header")
		}
		if l1Off >= uint64(src.Size) || uint64(l1Size)*8 > uint64(src.Size)-l1Off {
			return nil, qcowErr(ErrTruncated, "L1 table of %d entries at offset %#x lies past the end of the %d-byte file", l1Size, l1Off, src.Size)
		}
		if l1Size > qcowMaxL1Entries {
			return nil, qcowErr(ErrUnsupported, "L1 table of %d entries exceeds the 32 MiB limit", l1Size)
		}
	}

	// Backing file name (validated now, opened last).
	var backingName string
	if backingOff != 0 && backingLen > 0 {
		if backingLen > 1023 || backingOff >= uint64(cs) || uint64(backingLen) > uint64(cs)-backingOff {
			return nil, qcowErr(ErrCorrupt, "backing file name (%d bytes at offset %d) is longer than 1023 bytes or leaves the first cluster", backingLen, backingOff)
		}
		b := make([]byte, backingLen)
		if _, err := readFull(src.R, b, int64(backingOff), Qcow2, "backing file name"); err != nil {
			return nil, err
		}
		backingName = string(b)
	}
	var hint Format
	if backingName != "" && haveBackingFmt && backingFmt != "" {
		f, err := ParseFormat(backingFmt)
		if err != nil {
			return nil, qcowErr(ErrUnsupported, "backing file %q has format %q, which is not supported", backingName, backingFmt)
		}
		hint = f
	}

	l1 := make([]uint64, l1Need)
	if l1Need > 0 {
		b := make([]byte, l1Need*8)
		if _, err := readFull(src.R, b, int64(l1Off), Qcow2, "L1 table"); err != nil {
			return nil, err
		}
		for i := range l1 {
			l1[i] = be.Uint64(b[i*8:])
		}
	}

	q := &qcow2{
		r:           src.R,
		fileSize:    src.Size,
		size:        size,
		clusterBits: uint(clusterBits),
		clusterSize: cs,
		l2Bits:      l2Bits,
		version:     version,
		compression: compression,
		csizeShift:  62 - uint(clusterBits-8),
		l1:          l1,
	}
	q.csizeMask = (1 << (clusterBits - 8)) - 1
	// The refcount table is not read, but nothing may live inside it.
	if refTableOff != 0 && refTableOff < uint64(src.Size) {
		end := min(uint64(src.Size), refTableOff+uint64(refTableClusters)*uint64(cs))
		q.tables = append(q.tables, span{int64(refTableOff), int64(end), "refcount table"})
	}
	if l1Need > 0 {
		if name, ok := q.overlap(int64(l1Off), int64(l1Need)*8); ok {
			return nil, qcowErr(ErrCorrupt, "L1 table at offset %#x overlaps the %s", l1Off, name)
		}
		q.tables = append(q.tables, span{int64(l1Off), int64(l1Off) + int64(l1Need)*8, "L1 table"})
	}
	q.coffMask = (1 << q.csizeShift) - 1
	q.l2max = min(max(2, int(qcowL2CacheBytes/cs)), qcowL2CacheMaxTables)

	compatName := "1.1"
	if version == 2 {
		compatName = "0.10"
	}
	details := map[string]any{
		"version":          version,
		"compat":           compatName,
		"compression-type": map[uint8]string{0: "zlib", 1: "zstd"}[compression],
		"dirty":            incompat&qcowIncDirty != 0,
		"corrupt":          false,
		"lazy-refcounts":   compat&qcowCompatLazyRefs != 0,
		"refcount-bits":    1 << refcountOrder,
		"extended-l2":      false,
		"cluster-bits":     clusterBits,
		"l1-size":          l1Size,
		"snapshots":        nbSnapshots,
	}
	if autoclear != 0 {
		details["autoclear-features"] = autoclear
	}
	if rawSize != uint64(size) {
		details["header-size"] = rawSize
	}
	if haveBackingFmt {
		details["backing-format"] = backingFmt
	}
	q.info = Info{Format: Qcow2, VirtualSize: size, FileSize: src.Size, ClusterSize: cs, BackingFile: backingName, Details: details}

	if backingName != "" {
		b, err := o.openBacking(src, backingName, hint)
		if err != nil {
			return nil, err
		}
		q.backing = b
		bi := b.Info()
		q.info.Backing = &bi
	}
	return q, nil
}

// qcowFeatureList names the set bits of an incompatible feature mask, using
// the image's feature name table where it has an entry.
func qcowFeatureList(mask uint64, table []byte) string {
	var names []string
	for mask != 0 {
		bit := bits.TrailingZeros64(mask)
		mask &^= 1 << bit
		name := fmt.Sprintf("bit %d", bit)
		for i := 0; i+48 <= len(table); i += 48 {
			if table[i] == 0 && int(table[i+1]) == bit {
				if s := strings.TrimRight(string(table[i+2:i+48]), "\x00"); s != "" {
					name = fmt.Sprintf("bit %d (%q)", bit, s)
				}
				break
			}
		}
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}

func (q *qcow2) Size() int64 { return q.size }
func (q *qcow2) Info() Info  { return q.info }

func (q *qcow2) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.zstdec != nil {
		q.zstdec.Close()
		q.zstdec = nil
	}
	var err error
	if q.backing != nil {
		err = q.backing.Close()
		q.backing = nil
	}
	return err
}

// cluster classes
type qcowClass uint8

const (
	qcUnalloc qcowClass = iota
	qcZero
	qcNormal
	qcCompressed
)

// l2Table returns the L2 table for L1 index l1i, nil if unallocated.
func (q *qcow2) l2Table(l1i uint64) ([]byte, error) {
	e := q.l1[l1i]
	off := int64(e & qcowOffsetMask)
	if off == 0 {
		return nil, nil
	}
	q.tick++
	if q.l2last != nil && q.l2last.l1i == l1i {
		q.l2last.used = q.tick
		return q.l2last.b, nil
	}
	for _, t := range q.l2cache {
		if t.l1i == l1i {
			t.used = q.tick
			q.l2last = t
			return t.b, nil
		}
	}
	if off&(q.clusterSize-1) != 0 {
		return nil, qcowErr(ErrCorrupt, "L2 table offset %#x (L1 index %d) is not cluster-aligned", off, l1i)
	}
	if off < q.clusterSize {
		return nil, qcowErr(ErrCorrupt, "L2 table offset %#x (L1 index %d) overlaps the header cluster", off, l1i)
	}
	if off > q.fileSize-q.clusterSize {
		return nil, qcowErr(ErrTruncated, "L2 table at offset %#x (L1 index %d) lies past the end of the %d-byte file", off, l1i, q.fileSize)
	}
	if name, ok := q.overlap(off, q.clusterSize); ok {
		return nil, qcowErr(ErrCorrupt, "L2 table at offset %#x (L1 index %d) overlaps the %s", off, l1i, name)
	}
	var t *qcowL2
	if len(q.l2cache) < q.l2max {
		t = &qcowL2{b: make([]byte, q.clusterSize)}
		q.l2cache = append(q.l2cache, t)
	} else {
		t = q.l2cache[0]
		for _, c := range q.l2cache[1:] {
			if c.used < t.used {
				t = c
			}
		}
	}
	t.l1i, t.used = ^uint64(0), q.tick // invalid until filled
	if _, err := readFull(q.r, t.b, off, Qcow2, "L2 table"); err != nil {
		return nil, err
	}
	t.l1i = l1i
	q.l2last = t
	return t.b, nil
}

// classify decodes an L2 entry. For normal clusters host is the cluster's
// host offset; for compressed ones the caller uses the entry itself.
func (q *qcow2) classify(e uint64) (qcowClass, int64, error) {
	if e&qcowCompressed != 0 {
		return qcCompressed, 0, nil
	}
	host := int64(e & qcowOffsetMask)
	if e&qcowZeroFlag != 0 {
		if q.version < 3 {
			return 0, 0, qcowErr(ErrCorrupt, "zero cluster entry %#x in a version 2 image", e)
		}
		if host&(q.clusterSize-1) != 0 {
			return 0, 0, qcowErr(ErrCorrupt, "zero cluster at host offset %#x is not cluster-aligned", host)
		}
		return qcZero, 0, nil
	}
	if host == 0 {
		return qcUnalloc, 0, nil
	}
	if host&(q.clusterSize-1) != 0 {
		return 0, 0, qcowErr(ErrCorrupt, "data cluster at host offset %#x is not cluster-aligned", host)
	}
	if host < q.clusterSize {
		return 0, 0, qcowErr(ErrCorrupt, "data cluster at host offset %#x overlaps the header cluster", host)
	}
	if host >= q.fileSize {
		return 0, 0, qcowErr(ErrTruncated, "data cluster at host offset %#x lies past the end of the %d-byte file", host, q.fileSize)
	}
	if name, ok := q.overlap(host, q.clusterSize); ok {
		return 0, 0, qcowErr(ErrCorrupt, "data cluster at host offset %#x overlaps the %s", host, name)
	}
	return qcNormal, host, nil
}

// qcowRun is a run of guest bytes starting at a scan's offset.
type qcowRun struct {
	class qcowClass
	host  int64  // qcNormal: host offset of the run's first byte
	entry uint64 // qcCompressed: the descriptor
	n     int64
}

// scan returns the run starting at guest offset off (off < size, limit > 0,
// off+limit ≤ size) of clusters in one class. With contig (for reading),
// normal clusters join the run only when they follow on the host and a
// compressed run is a single cluster; without it (for Extent), normal and
// compressed clusters form one data run.
func (q *qcow2) scan(off, limit int64, contig bool) (qcowRun, error) {
	cs := q.clusterSize
	vc := uint64(off) >> q.clusterBits
	within := off & (cs - 1)
	l2n := uint64(1) << q.l2Bits
	end := off + limit

	var r qcowRun
	first := true
	pos := off - within // guest offset of the cluster being examined
	for pos < end {
		l1i := vc >> q.l2Bits
		t, err := q.l2Table(l1i)
		if err != nil {
			if first {
				return r, err
			}
			break // reported when a read or query starts there
		}
		if t == nil {
			// a whole unallocated L2 range
			if !first && r.class != qcUnalloc {
				break
			}
			r.class = qcUnalloc
			first = false
			next := (l1i + 1) << q.l2Bits
			pos += int64(next-vc) << q.clusterBits
			vc = next
			continue
		}
		stop := false
		for i := vc & (l2n - 1); i < l2n && pos < end; i++ {
			e := binary.BigEndian.Uint64(t[i*8:])
			c, host, err := q.classify(e)
			if err != nil {
				if first {
					return r, err
				}
				stop = true // report the error when the read gets there
				break
			}
			if first {
				r.class, first = c, false
				switch c {
				case qcNormal:
					r.host = host + within
				case qcCompressed:
					r.entry = e
				}
			} else if contig && (c != r.class || c == qcCompressed ||
				(c == qcNormal && host != r.host-within+(pos-(off-within)))) {
				stop = true
				break
			} else if !contig && c != r.class && !(c >= qcNormal && r.class >= qcNormal) {
				stop = true
				break
			}
			pos += cs
			vc++
		}
		if stop {
			break
		}
	}
	r.n = min(pos, end) - off
	return r, nil
}

// kindAt returns the Kind of the disk at off and how far (≤ limit) it lasts
// in the top layer's view, asking the backing image for unallocated runs.
func (q *qcow2) kindAt(off, limit int64) (Kind, int64, error) {
	r, err := q.scan(off, limit, false)
	if err != nil {
		return 0, 0, err
	}
	switch r.class {
	case qcZero:
		return Zero, r.n, nil
	case qcNormal, qcCompressed:
		return Data, r.n, nil
	}
	e, err := backingExtent(q.backing, off, r.n)
	if err != nil {
		return 0, 0, err
	}
	return e.Kind, e.Len, nil
}

func (q *qcow2) Extent(off, n int64) (Extent, error) {
	n, err := checkExtentArgs(off, n, q.size)
	if err != nil {
		return Extent{}, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	kind, l, err := q.kindAt(off, n)
	if err != nil {
		return Extent{}, err
	}
	for l < n {
		k, m, err := q.kindAt(off+l, n-l)
		if err != nil || k != kind {
			break // an error further on is reported when that range is asked for
		}
		l += m
	}
	return Extent{Off: off, Len: l, Kind: kind}, nil
}

func (q *qcow2) ReadAt(p []byte, off int64) (int, error) {
	p, eof := clampRead(p, off, q.size)
	if len(p) == 0 {
		return 0, eof
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	done := 0
	for len(p) > 0 {
		// scan ends a run before a cluster it cannot decode; the next scan,
		// which starts there, returns the error.
		r, err := q.scan(off, int64(len(p)), true)
		if err != nil {
			return done, err
		}
		b := p[:r.n]
		got := 0 // bytes of b filled when err is set
		switch r.class {
		case qcUnalloc:
			got, err = backingRead(q.backing, b, off)
		case qcZero:
			clear(b)
		case qcNormal:
			// The run's last cluster may be cut by the end of the file:
			// what the file holds is read, then the rest is ErrTruncated.
			in := max(0, min(r.n, q.fileSize-r.host))
			got, err = readFull(q.r, b[:in], r.host, Qcow2, "data cluster")
			if err == nil && in < r.n {
				err = qcowErr(ErrTruncated, "data at host offset %#x (%d bytes) lies past the end of the %d-byte file", r.host, r.n, q.fileSize)
			}
		case qcCompressed:
			var c []byte
			if c, err = q.decompress(r.entry); err == nil {
				copy(b, c[off&(q.clusterSize-1):])
			}
		}
		if err != nil {
			return done + got, err
		}
		done += len(b)
		off += r.n
		p = p[r.n:]
	}
	return done, eof
}

// decompress returns the cluster that compressed descriptor e holds.
func (q *qcow2) decompress(e uint64) ([]byte, error) {
	key := e &^ qcowCopied
	if q.zvalid && q.zkey == key {
		return q.zbuf, nil
	}
	host := int64(e & q.coffMask)
	nsec := int64((e>>q.csizeShift)&q.csizeMask) + 1
	csize := nsec*512 - host&511
	if host < q.clusterSize {
		return nil, qcowErr(ErrCorrupt, "compressed cluster at host offset %#x overlaps the header cluster", host)
	}
	if host >= q.fileSize {
		return nil, qcowErr(ErrTruncated, "compressed cluster at host offset %#x lies past the end of the %d-byte file", host, q.fileSize)
	}
	// The last compressed cluster may end inside its final sector, which the
	// file need not contain: read what there is, as qemu does.
	clipped := csize > q.fileSize-host
	if clipped {
		csize = q.fileSize - host
	}
	if q.cbuf == nil {
		q.cbuf = make([]byte, 2*q.clusterSize) // the most a descriptor can name
		q.zbuf = make([]byte, q.clusterSize)
	}
	in := q.cbuf[:csize]
	if _, err := readFull(q.r, in, host, Qcow2, "compressed cluster"); err != nil {
		return nil, err
	}
	q.zvalid = false
	var err error
	switch q.compression {
	case qcowCompressionZlib:
		if q.inflat == nil {
			q.inflat = flate.NewReader(bytes.NewReader(in))
		} else if err = q.inflat.(flate.Resetter).Reset(bytes.NewReader(in), nil); err != nil {
			break
		}
		_, err = io.ReadFull(q.inflat, q.zbuf)
	case qcowCompressionZstd:
		if q.zstdec == nil {
			q.zstdec, err = zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(uint64(max(q.clusterSize, 2<<20))))
			if err != nil {
				break
			}
		}
		if err = q.zstdec.Reset(bytes.NewReader(in)); err == nil {
			_, err = io.ReadFull(q.zstdec, q.zbuf)
		}
	}
	if err != nil {
		s := ErrCorrupt
		if clipped {
			s = ErrTruncated
		}
		return nil, qcowErr(s, "compressed cluster at host offset %#x (%d bytes) does not decompress to a %d-byte cluster: %v", host, csize, q.clusterSize, err)
	}
	q.zkey, q.zvalid = key, true
	return q.zbuf, nil
}
