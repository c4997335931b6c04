package formats

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"aerodisk/internal/diskerr"
)

// DiskCopy 4.2 (Apple): an 84-byte big-endian header, then the sector data,
// then the tag bytes (12 per 512-byte sector on 400K/800K GCR disks).
//
//	0x00 name    Pascal string: length byte + up to 63 bytes
//	0x40 u32     data size    0x44 u32 tag size
//	0x48 u32     data checksum 0x4C u32 tag checksum
//	0x50 u8      disk format  0x51 u8 format byte
//	0x52 u16     0x0100 (private word, the magic)
//
// Checksum: for each big-endian u16, add it, then rotate the sum right by 1.
// The tag checksum skips the first 12 tag bytes (an old DiskCopy bug kept
// for compatibility). The logical disk is the data; tags are kept in the
// file and exposed through Tags for as-is storage.

const dc42HeaderSize = 0x54

// dc42DataSizes are the floppy capacities DiskCopy 4.2 images hold.
var dc42DataSizes = map[uint32]string{
	409600:  "400K GCR",
	819200:  "800K GCR",
	737280:  "720K MFM",
	1474560: "1440K MFM",
}

func probeDC42(r io.ReaderAt, size int64) bool {
	h := readMagic(r, 0, dc42HeaderSize, size)
	if h == nil || binary.BigEndian.Uint16(h[0x52:]) != 0x0100 || h[0] > 63 {
		return false
	}
	// The magic word, a floppy data size and a short name identify the
	// format; the file size is left to openDC42 so that a truncated image
	// is reported as truncated rather than taken for raw data.
	_, ok := dc42DataSizes[binary.BigEndian.Uint32(h[0x40:])]
	return ok
}

// DC42Image is an opened DiskCopy 4.2 image.
type DC42Image struct {
	flat
	tagSize int64
}

// Tags reads the tag bytes (not part of the logical disk), with ReadAt's
// contract over the TagSize() tag bytes.
func (d *DC42Image) Tags(p []byte, off int64) (int, error) {
	q, eof := clampRead(p, off, d.tagSize)
	if len(q) == 0 {
		return 0, eof
	}
	if n, err := readFull(d.r, q, dc42HeaderSize+d.size+off, DC42, "tags"); err != nil {
		return n, err
	}
	return len(q), eof
}

// TagSize is the number of tag bytes.
func (d *DC42Image) TagSize() int64 { return d.tagSize }

func openDC42(o *opener, src Source) (Image, error) {
	h := make([]byte, dc42HeaderSize)
	if _, err := readFull(src.R, h, 0, DC42, "header"); err != nil {
		return nil, err
	}
	if m := binary.BigEndian.Uint16(h[0x52:]); m != 0x0100 {
		return nil, diskerr.New(string(DC42), ErrCorrupt, "magic word is %#04x, want 0x0100", m)
	}
	if h[0] > 63 {
		return nil, diskerr.New(string(DC42), ErrCorrupt, "name length %d exceeds 63", h[0])
	}
	data, tags := binary.BigEndian.Uint32(h[0x40:]), binary.BigEndian.Uint32(h[0x44:])
	kind, ok := dc42DataSizes[data]
	if !ok {
		return nil, diskerr.New(string(DC42), ErrUnsupported, "data size %d is not a 400K/800K/720K/1440K floppy", data)
	}
	if tags%12 != 0 || int64(tags) > int64(data)/512*12 {
		return nil, diskerr.New(string(DC42), ErrCorrupt, "tag size %d is not 12 bytes per sector or fewer", tags)
	}
	want := dc42HeaderSize + int64(data) + int64(tags)
	if src.Size < want {
		return nil, diskerr.New(string(DC42), ErrTruncated, "file is %d bytes, header says %d (84 + %d data + %d tags)", src.Size, want, data, tags)
	}
	img := &DC42Image{
		flat: flat{r: src.R, base: dc42HeaderSize, size: int64(data), info: Info{
			Format: DC42, VirtualSize: int64(data), FileSize: src.Size, ClusterSize: 512,
			Details: map[string]any{
				"name":        string(h[1 : 1+h[0]]),
				"disk":        kind,
				"disk-format": int(h[0x50]),
				"format-byte": int(h[0x51]),
				"tag-bytes":   int64(tags),
			},
		}},
		tagSize: int64(tags),
	}
	wantData, wantTags := binary.BigEndian.Uint32(h[0x48:]), binary.BigEndian.Uint32(h[0x4C:])
	gotData, err := dc42Checksum(src.R, dc42HeaderSize, int64(data))
	if err != nil {
		return nil, err
	}
	gotTags := uint32(0)
	if tags > 12 {
		if gotTags, err = dc42Checksum(src.R, dc42HeaderSize+int64(data)+12, int64(tags)-12); err != nil {
			return nil, err
		}
	}
	img.info.Details["checksum-ok"] = gotData == wantData && gotTags == wantTags
	// Old tools often wrote a data checksum that disagrees with the bytes,
	// or appended bytes (a resource fork, padding) after the tags: with
	// AcceptBadChecksum both are read anyway and said in Warnings.
	for _, c := range []struct {
		what      string
		got, want uint32
	}{{"data", gotData, wantData}, {"tag", gotTags, wantTags}} {
		if c.got == c.want {
			continue
		}
		if !o.opts.AcceptBadChecksum {
			return nil, diskerr.New(string(DC42), ErrChecksum, "%s checksum is %08x, header says %08x", c.what, c.got, c.want)
		}
		img.info.Warnings = append(img.info.Warnings, fmt.Sprintf("the DiskCopy %s checksum is %08x but the header says %08x (common in images made by old tools); the %s was read as it is", c.what, c.got, c.want, c.what))
	}
	if extra := src.Size - want; extra > 0 {
		if !o.opts.AcceptBadChecksum {
			return nil, diskerr.New(string(DC42), ErrCorrupt, "file is %d bytes, header says %d (84 + %d data + %d tags)", src.Size, want, data, tags)
		}
		img.info.Details["trailing-bytes"] = extra
		img.info.Warnings = append(img.info.Warnings, fmt.Sprintf("%d bytes after the DiskCopy tag data were ignored", extra))
	}
	return img, nil
}

// dc42Checksum runs the DiskCopy checksum over n bytes at off (n is even:
// data sizes are multiples of 512 and tag sizes of 12).
func dc42Checksum(r io.ReaderAt, off, n int64) (uint32, error) {
	buf := make([]byte, min(n, 64<<10))
	var sum uint32
	for n > 0 {
		b := buf[:min(n, int64(len(buf)))]
		if _, err := readFull(r, b, off, DC42, "checksummed bytes"); err != nil {
			return 0, err
		}
		sum = DC42Sum(sum, b)
		off += int64(len(b))
		n -= int64(len(b))
	}
	return sum, nil
}

// DC42Sum continues a DiskCopy 4.2 checksum over b (len(b) even).
func DC42Sum(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
		sum = bits.RotateLeft32(sum, -1)
	}
	return sum
}
