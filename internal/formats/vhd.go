package formats

// VHD (Microsoft Virtual Hard Disk, qemu's "vpc"): fixed, dynamic and
// differencing disks. The on-disk layout as read here, the disk-size rule and
// the error each bad input gives are described in docs/vhd.md.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"unicode/utf16"

	"aerodisk/internal/diskerr"
)

const (
	vhdFooterSize   = 512
	vhdHeaderSize   = 1024
	vhdSector       = 512
	vhdUnallocated  = 0xFFFFFFFF
	vhdMaxSectors   = 0xff000000 // qemu's VHD_MAX_SECTORS: 2040 GiB
	vhdMaxGeometry  = 65535 * 16 * 255
	vhdMaxBlockSize = 256 << 20 // larger blocks are refused as unsupported
	vhdMaxLocator   = 64 << 10  // a Windows path is at most 32767 UTF-16 units
	vhdBitmapCache  = 1 << 20   // bytes of sector bitmaps kept in memory

	vhdTypeFixed   = 2
	vhdTypeDynamic = 3
	vhdTypeDiff    = 4
)

// Footer field offsets.
const (
	vfFeatures    = 8
	vfVersion     = 12
	vfDataOffset  = 16
	vfTimestamp   = 24
	vfCreatorApp  = 28
	vfCreatorVer  = 32
	vfCreatorOS   = 36
	vfOrigSize    = 40
	vfCurrentSize = 48
	vfCyls        = 56
	vfHeads       = 58
	vfSecs        = 59
	vfDiskType    = 60
	vfChecksum    = 64
	vfUUID        = 68
	vfSavedState  = 84
)

// Dynamic-disk header field offsets.
const (
	vhTableOffset = 16
	vhVersion     = 24
	vhMaxEntries  = 28
	vhBlockSize   = 32
	vhChecksum    = 36
	vhParentUUID  = 40
	vhParentTime  = 56
	vhParentName  = 64  // 512 bytes, UTF-16BE
	vhLocators    = 576 // 8 entries of 24 bytes
)

var vhdCookie = []byte("conectix")

// vhdCurrentSizeApps are the creator apps whose images qemu 7.2 sizes by the
// footer's current_size instead of the CHS geometry (block/vpc.c, vpc_open).
var vhdCurrentSizeApps = map[string]bool{
	"win ": true, "qem2": true, "d2v ": true, "CTXS": true, "tap\x00": true,
}

func probeVHD(r io.ReaderAt, size int64) bool {
	if b := readMagic(r, 0, 8, size); b != nil && bytes.Equal(b, vhdCookie) {
		return true
	}
	if b := readMagic(r, size-vhdFooterSize, 8, size); b != nil && bytes.Equal(b, vhdCookie) {
		return true
	}
	// Old Virtual PC images end in a 511-byte footer.
	b := readMagic(r, size-vhdFooterSize+1, 8, size)
	return b != nil && bytes.Equal(b, vhdCookie)
}

// vhdChecksum is the one's complement of the byte sum of b, the 4-byte
// checksum field at csOff excluded.
func vhdChecksum(b []byte, csOff int) uint32 {
	var s uint32
	for i, c := range b {
		if i >= csOff && i < csOff+4 {
			continue
		}
		s += uint32(c)
	}
	return ^s
}

func vhdErr(sentinel error, msg string, args ...any) error {
	return diskerr.New(string(VHD), sentinel, msg, args...)
}

// vhdFooter is a parsed hard disk footer.
type vhdFooter struct {
	raw      [vhdFooterSize]byte
	at       int64 // file offset it was read from
	length   int64 // 512, or 511 for the old short trailing footer
	trailing bool  // read from the end of the file (not the copy at 0)
}

func (f *vhdFooter) u16(o int) uint16 { return binary.BigEndian.Uint16(f.raw[o:]) }
func (f *vhdFooter) u32(o int) uint32 { return binary.BigEndian.Uint32(f.raw[o:]) }
func (f *vhdFooter) u64(o int) uint64 { return binary.BigEndian.Uint64(f.raw[o:]) }
func (f *vhdFooter) diskType() uint32 { return f.u32(vfDiskType) }
func (f *vhdFooter) creatorApp() string {
	return string(f.raw[vfCreatorApp : vfCreatorApp+4])
}

// vhdTryFooter reads a footer of length n at off. ok says the cookie is
// there; err is ErrChecksum when the cookie is but the checksum is wrong.
func vhdTryFooter(r io.ReaderAt, off, n int64, trailing bool) (f *vhdFooter, ok bool, err error) {
	f = &vhdFooter{at: off, length: n, trailing: trailing}
	if _, err := ReadFull(r, f.raw[:n], off); err != nil || !bytes.Equal(f.raw[:8], vhdCookie) {
		return nil, false, nil
	}
	want := f.u32(vfChecksum)
	if have := vhdChecksum(f.raw[:], vfChecksum); have != want {
		return nil, true, vhdErr(ErrChecksum, "footer at offset %d: checksum is %#08x, computed %#08x", off, want, have)
	}
	return f, true, nil
}

// vhdReadFooter finds the footer: the trailing one (512 or, on old images,
// 511 bytes), else, for dynamic and differencing disks, the copy at offset 0.
func vhdReadFooter(r io.ReaderAt, size int64) (*vhdFooter, error) {
	if size < vhdFooterSize {
		return nil, vhdErr(ErrTruncated, "file of %d bytes is shorter than a VHD footer", size)
	}
	var firstErr error
	for _, n := range []int64{vhdFooterSize, vhdFooterSize - 1} {
		f, ok, err := vhdTryFooter(r, size-n, n, true)
		if err != nil {
			firstErr = err
			break
		}
		if ok {
			return f, nil
		}
	}
	f, ok, err := vhdTryFooter(r, 0, vhdFooterSize, false)
	switch {
	case ok && err == nil:
		if t := f.diskType(); t == vhdTypeDynamic || t == vhdTypeDiff {
			return f, nil
		}
		if firstErr == nil {
			return nil, vhdErr(ErrCorrupt, "footer copy at offset 0 is of disk type %d and there is no footer at the end", f.diskType())
		}
	case ok && firstErr == nil:
		firstErr = err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, vhdErr(ErrUnknownFormat, "no VHD footer (cookie \"conectix\") at the end or the start of the file")
}

func openVHD(o *opener, src Source) (Image, error) {
	r, fileSize := src.R, src.Size
	ft, err := vhdReadFooter(r, fileSize)
	if err != nil {
		return nil, err
	}

	// Disk size, exactly as qemu 7.2's vpc_open chooses it.
	cyls, heads, secs := ft.u16(vfCyls), ft.raw[vfHeads], ft.raw[vfSecs]
	geom := int64(cyls) * int64(heads) * int64(secs)
	sectors, sizeFrom := geom, "chs"
	if vhdCurrentSizeApps[ft.creatorApp()] || geom == vhdMaxGeometry {
		sectors, sizeFrom = int64(ft.u64(vfCurrentSize)/vhdSector), "current-size"
	}
	if sectors == 0 {
		return nil, vhdErr(ErrBadSize, "disk size is zero (size taken from the %s)", sizeFrom)
	}
	if sectors > vhdMaxSectors {
		return nil, vhdErr(ErrBadSize, "disk of %d sectors exceeds the VHD maximum of %d (2040 GiB)", sectors, int64(vhdMaxSectors))
	}
	size := sectors * vhdSector

	info := Info{Format: VHD, VirtualSize: size, FileSize: fileSize}
	u := ft.raw[vfUUID : vfUUID+16]
	info.Details = map[string]any{
		"creator-app":     strings.TrimRight(ft.creatorApp(), "\x00"),
		"creator-version": fmt.Sprintf("%d.%d", ft.u16(vfCreatorVer), ft.u16(vfCreatorVer+2)),
		"creator-os":      strings.TrimRight(string(ft.raw[vfCreatorOS:vfCreatorOS+4]), "\x00"),
		"geometry":        map[string]int{"cylinders": int(cyls), "heads": int(heads), "sectors-per-track": int(secs)},
		"size-from":       sizeFrom,
		"current-size":    ft.u64(vfCurrentSize),
		"uuid":            vhdUUID(u),
	}
	if !ft.trailing {
		info.Details["footer"] = "copy at offset 0 (no valid footer at the end)"
	}

	switch t := ft.diskType(); t {
	case vhdTypeFixed:
		info.Details["subformat"] = "fixed"
		if avail := ft.at; size > avail {
			return nil, vhdErr(ErrTruncated, "fixed disk of %d bytes but only %d data bytes precede the footer", size, avail)
		}
		return &flat{r: r, base: 0, size: size, info: info}, nil
	case vhdTypeDynamic, vhdTypeDiff:
		return openVHDDynamic(o, src, ft, size, info)
	default:
		return nil, vhdErr(ErrUnsupported, "disk type %d (want 2 fixed, 3 dynamic or 4 differencing)", t)
	}
}

func vhdUUID(u []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func openVHDDynamic(o *opener, src Source, ft *vhdFooter, size int64, info Info) (Image, error) {
	r, fileSize := src.R, src.Size
	diff := ft.diskType() == vhdTypeDiff

	// Dynamic header.
	dataOff := ft.u64(vfDataOffset)
	if dataOff > uint64(fileSize) || uint64(fileSize)-dataOff < vhdHeaderSize {
		return nil, vhdErr(ErrTruncated, "dynamic header at offset %d (1024 bytes) lies past the end of the %d-byte file", dataOff, fileSize)
	}
	hoff := int64(dataOff)
	hdr := make([]byte, vhdHeaderSize)
	if _, err := readFull(r, hdr, hoff, VHD, "dynamic header"); err != nil {
		return nil, err
	}
	if string(hdr[:8]) != "cxsparse" {
		return nil, vhdErr(ErrCorrupt, "no dynamic header (cookie \"cxsparse\") at offset %d", hoff)
	}
	if want, have := binary.BigEndian.Uint32(hdr[vhChecksum:]), vhdChecksum(hdr, vhChecksum); want != have {
		return nil, vhdErr(ErrChecksum, "dynamic header: checksum is %#08x, computed %#08x", want, have)
	}

	bs := int64(binary.BigEndian.Uint32(hdr[vhBlockSize:]))
	if bs < vhdSector || bs&(bs-1) != 0 {
		return nil, vhdErr(ErrCorrupt, "block size %d is not a power of two of at least 512", bs)
	}
	if bs > vhdMaxBlockSize {
		return nil, vhdErr(ErrUnsupported, "block size %d is larger than %d", bs, vhdMaxBlockSize)
	}
	bitmapSize := (bs/vhdSector/8 + vhdSector - 1) &^ (vhdSector - 1)
	if bitmapSize == 0 {
		bitmapSize = vhdSector
	}

	mte := int64(binary.BigEndian.Uint32(hdr[vhMaxEntries:]))
	if mte*bs < size {
		return nil, vhdErr(ErrCorrupt, "block table of %d entries of %d bytes cannot cover the %d-byte disk", mte, bs, size)
	}
	if maxEntries := (vhdMaxSectors*vhdSector + bs - 1) / bs; mte > maxEntries {
		return nil, vhdErr(ErrCorrupt, "block table of %d entries is larger than any VHD needs (%d)", mte, maxEntries)
	}
	tableOff := binary.BigEndian.Uint64(hdr[vhTableOffset:])
	if tableOff > uint64(fileSize) || uint64(fileSize)-tableOff < uint64(mte*4) {
		return nil, vhdErr(ErrTruncated, "block table at offset %d (%d bytes) lies past the end of the %d-byte file", tableOff, mte*4, fileSize)
	}

	// Metadata that no data block may overlap.
	meta := []span{
		{0, vhdFooterSize, "footer copy"},
		{hoff, hoff + vhdHeaderSize, "dynamic header"},
		{int64(tableOff), int64(tableOff) + mte*4, "block table"},
	}
	if ft.trailing {
		meta = append(meta, span{ft.at, fileSize, "footer"})
	}
	for i := range meta {
		for j := range i {
			if meta[i].overlaps(meta[j]) {
				return nil, vhdErr(ErrCorrupt, "%s [%d,%d) overlaps the %s [%d,%d)", meta[i].what, meta[i].off, meta[i].end, meta[j].what, meta[j].off, meta[j].end)
			}
		}
	}

	// Block table: read in chunks; keep the entries that cover the disk.
	needed := (size + bs - 1) / bs
	bat := make([]uint32, needed)
	var starts []int64
	blockLen := bitmapSize + bs
	chunk := make([]byte, min(mte*4, 64<<10))
	for i := int64(0); i < mte; {
		n := min(mte-i, int64(len(chunk))/4)
		buf := chunk[:n*4]
		if _, err := readFull(r, buf, int64(tableOff)+i*4, VHD, "block table"); err != nil {
			return nil, err
		}
		for k := int64(0); k < n; k++ {
			e := binary.BigEndian.Uint32(buf[k*4:])
			idx := i + k
			if idx < needed {
				bat[idx] = e
			}
			if e == vhdUnallocated {
				continue
			}
			b := span{int64(e) * vhdSector, int64(e)*vhdSector + blockLen, "block"}
			if b.end > fileSize {
				return nil, vhdErr(ErrTruncated, "block %d at offset %d (%d bytes) lies past the end of the %d-byte file", idx, b.off, blockLen, fileSize)
			}
			for _, m := range meta {
				if b.overlaps(m) {
					return nil, vhdErr(ErrCorrupt, "block %d [%d,%d) overlaps the %s [%d,%d)", idx, b.off, b.end, m.what, m.off, m.end)
				}
			}
			starts = append(starts, b.off)
		}
		i += n
	}
	slices.Sort(starts)
	for i := 1; i < len(starts); i++ {
		if starts[i] < starts[i-1]+blockLen {
			return nil, vhdErr(ErrCorrupt, "data blocks at offsets %d and %d overlap", starts[i-1], starts[i])
		}
	}

	img := &vhdImage{
		r: r, size: size, bs: bs, bitmapSize: bitmapSize, bat: bat, diff: diff,
		cache: map[int64][]byte{}, cacheMax: max(4, vhdBitmapCache/int(bitmapSize)),
	}
	info.ClusterSize = bs
	info.Details["block-size"] = bs
	info.Details["allocated-blocks"] = len(starts)
	if !diff {
		info.Details["subformat"] = "dynamic"
		img.info = info
		return img, nil
	}

	info.Details["subformat"] = "differencing"
	info.Details["parent-uuid"] = vhdUUID(hdr[vhParentUUID : vhParentUUID+16])
	names, err := vhdParentNames(r, fileSize, hdr)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, vhdErr(ErrCorrupt, "differencing disk names no parent (no parent locator and no parent name)")
	}
	info.Details["parent-candidates"] = names
	var firstErr error
	for _, name := range names {
		parent, err := o.openBacking(src, name, "")
		if err == nil {
			img.parent = parent
			info.BackingFile = name
			pi := parent.Info()
			info.Backing = &pi
			img.info = info
			return img, nil
		}
		if !errors.Is(err, ErrBackingNotFound) {
			return nil, err
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// vhdParentNames lists the parent's names in order of preference: relative
// Windows path (W2ru), absolute Windows path (W2ku), Mac OS X file URL (MacX),
// then the header's parent unicode name.
func vhdParentNames(r io.ReaderAt, fileSize int64, hdr []byte) ([]string, error) {
	var w2ru, w2ku, macx []string
	for i := 0; i < 8; i++ {
		l := hdr[vhLocators+24*i:]
		code := string(l[:4])
		if code != "W2ru" && code != "W2ku" && code != "MacX" {
			continue // none (0), deprecated Wi2r/Wi2k, or a Mac alias blob
		}
		n := int64(binary.BigEndian.Uint32(l[8:]))
		off := binary.BigEndian.Uint64(l[16:])
		if n == 0 {
			continue
		}
		if n > vhdMaxLocator {
			return nil, vhdErr(ErrCorrupt, "parent locator %d (%s) is %d bytes long", i, code, n)
		}
		if off > uint64(fileSize) || uint64(fileSize)-off < uint64(n) {
			return nil, vhdErr(ErrTruncated, "parent locator %d (%s) at offset %d (%d bytes) lies past the end of the file", i, code, off, n)
		}
		buf := make([]byte, n)
		if _, err := readFull(r, buf, int64(off), VHD, "parent locator"); err != nil {
			return nil, err
		}
		switch code {
		case "W2ru":
			if s := vhdWinPath(utf16String(buf, binary.LittleEndian)); s != "" {
				w2ru = append(w2ru, strings.TrimPrefix(s, "./"))
			}
		case "W2ku":
			if s := vhdWinPath(utf16String(buf, binary.LittleEndian)); s != "" {
				w2ku = append(w2ku, s)
			}
		case "MacX":
			if s := vhdFileURL(string(bytes.TrimRight(buf, "\x00"))); s != "" {
				macx = append(macx, s)
			}
		}
	}
	names := slices.Concat(w2ru, w2ku, macx)
	if s := utf16String(hdr[vhParentName:vhParentName+512], binary.BigEndian); s != "" {
		names = append(names, s)
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// utf16String decodes UTF-16 up to the first NUL unit.
func utf16String(b []byte, bo binary.ByteOrder) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := bo.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

func vhdWinPath(s string) string { return strings.ReplaceAll(s, `\`, "/") }

// vhdFileURL turns "file://localhost/Users/x/p.vhd" into "/Users/x/p.vhd".
func vhdFileURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme == "file" && u.Path != "" {
		return u.Path
	}
	return s
}

// vhdImage is a dynamic or differencing disk.
type vhdImage struct {
	r          io.ReaderAt
	size       int64
	bs         int64 // block size
	bitmapSize int64 // bytes of sector bitmap before each block's data
	bat        []uint32
	diff       bool
	parent     Image // differencing only
	info       Info

	mu       sync.Mutex
	cache    map[int64][]byte // block index -> sector bitmap
	order    []int64          // FIFO of cached block indexes
	cacheMax int
}

func (v *vhdImage) Size() int64 { return v.size }
func (v *vhdImage) Info() Info  { return v.info }
func (v *vhdImage) Close() error {
	if v.parent != nil {
		return v.parent.Close()
	}
	return nil
}

// bitmap returns the sector bitmap of the allocated block bi.
func (v *vhdImage) bitmap(bi int64) ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b, ok := v.cache[bi]; ok {
		return b, nil
	}
	b := make([]byte, v.bitmapSize)
	if _, err := readFull(v.r, b, int64(v.bat[bi])*vhdSector, VHD, "sector bitmap"); err != nil {
		return nil, err
	}
	if len(v.order) >= v.cacheMax {
		delete(v.cache, v.order[0])
		v.order = v.order[1:]
	}
	v.cache[bi] = b
	v.order = append(v.order, bi)
	return b, nil
}

// bitRun reports the bit of the sector holding byte inb of a block and how
// many bytes from inb (at most lim) share it. Bit 0 of a byte is its MSB.
func bitRun(bm []byte, inb, lim int64) (bool, int64) {
	bit := func(s int64) bool { return bm[s>>3]&(0x80>>(s&7)) != 0 }
	s := inb / vhdSector
	b := bit(s)
	end := (s + 1) * vhdSector
	for end-inb < lim && bit(end/vhdSector) == b {
		end += vhdSector
	}
	return b, min(end-inb, lim)
}

func (v *vhdImage) ReadAt(p []byte, off int64) (int, error) {
	q, eof := clampRead(p, off, v.size)
	if len(q) == 0 {
		return 0, eof
	}
	for done := 0; done < len(q); {
		pos := off + int64(done)
		bi, inb := pos/v.bs, pos%v.bs
		n := int(min(v.bs-inb, int64(len(q)-done)))
		got, err := v.readBlock(q[done:done+n], bi, inb, pos)
		if err != nil {
			return done + got, err
		}
		done += n
	}
	return len(q), eof
}

// readBlock fills buf, which lies in block bi from byte inb on (logical
// offset pos), and returns how many bytes of it it filled.
func (v *vhdImage) readBlock(buf []byte, bi, inb, pos int64) (int, error) {
	e := v.bat[bi]
	switch {
	case e == vhdUnallocated && v.diff:
		return backingRead(v.parent, buf, pos)
	case e == vhdUnallocated:
		clear(buf)
		return len(buf), nil
	case !v.diff:
		// qemu reads a dynamic disk's allocated block whole, whatever its bitmap says.
		return readFull(v.r, buf, int64(e)*vhdSector+v.bitmapSize+inb, VHD, "data block")
	}
	bm, err := v.bitmap(bi)
	if err != nil {
		return 0, err
	}
	n := int64(len(buf))
	for k := int64(0); k < n; {
		mine, l := bitRun(bm, inb+k, n-k)
		part := buf[k : k+l]
		var got int
		if mine {
			got, err = readFull(v.r, part, int64(e)*vhdSector+v.bitmapSize+inb+k, VHD, "data block")
		} else {
			got, err = backingRead(v.parent, part, pos+k)
		}
		if err != nil {
			return int(k) + got, err
		}
		k += l
	}
	return len(buf), nil
}

func (v *vhdImage) Extent(off, n int64) (Extent, error) {
	n, err := checkExtentArgs(off, n, v.size)
	if err != nil {
		return Extent{}, err
	}
	kind, l, err := v.piece(off, n)
	if err != nil {
		return Extent{}, err
	}
	for l < n {
		k2, l2, err := v.piece(off+l, n-l)
		if err != nil || k2 != kind {
			break // an error further on is reported when that range is asked for
		}
		l += l2
	}
	return Extent{Off: off, Len: l, Kind: kind}, nil
}

// piece is the Kind of the run at pos (inside one block, at most lim bytes).
func (v *vhdImage) piece(pos, lim int64) (Kind, int64, error) {
	bi, inb := pos/v.bs, pos%v.bs
	m := min(lim, v.bs-inb)
	e := v.bat[bi]
	switch {
	case e == vhdUnallocated && v.diff:
		x, err := backingExtent(v.parent, pos, m)
		return x.Kind, x.Len, err
	case e == vhdUnallocated:
		return Unallocated, m, nil
	case !v.diff:
		return Data, m, nil
	}
	bm, err := v.bitmap(bi)
	if err != nil {
		return 0, 0, err
	}
	mine, l := bitRun(bm, inb, m)
	if mine {
		return Data, l, nil
	}
	x, err := backingExtent(v.parent, pos, l)
	return x.Kind, x.Len, err
}
