package formats

import (
	"encoding/binary"
	"io"

	"aerodisk/internal/diskerr"
)

// ISO 9660: volume descriptors start at sector 16 (byte 0x8000), each 2048
// bytes: type byte, "CD001", version. The primary volume descriptor (type 1)
// holds the volume space size (both-endian u32 at 80) and the logical block
// size (both-endian u16 at 128). The set ends with type 255.
//
// The logical disk is the whole file: the PVD's volume size must fit in it,
// and anything after the volume (padding, partitions appended by hybrid ISO
// tools) is kept, so an as-is import exports the same bytes it was given.

const (
	isoDescStart   = 16 * 2048
	isoDescSize    = 2048
	isoMaxDescs    = 64 // descriptors examined before giving up on the terminator
	isoTypePrimary = 1
	isoTypeEnd     = 255
)

func probeISO(r io.ReaderAt, size int64) bool {
	b := readMagic(r, isoDescStart+1, 5, size)
	return b != nil && string(b) == "CD001"
}

func openISO(o *opener, src Source) (Image, error) {
	desc := make([]byte, isoDescSize)
	for i := int64(0); i < isoMaxDescs; i++ {
		off := isoDescStart + i*isoDescSize
		if _, err := readFull(src.R, desc, off, ISO, "volume descriptor"); err != nil {
			return nil, err
		}
		if string(desc[1:6]) != "CD001" {
			return nil, diskerr.New(string(ISO), ErrCorrupt, "volume descriptor %d lacks the CD001 signature", i)
		}
		switch desc[0] {
		case isoTypePrimary:
			return isoFromPVD(src, desc)
		case isoTypeEnd:
			return nil, diskerr.New(string(ISO), ErrCorrupt, "no primary volume descriptor before the set terminator")
		}
	}
	return nil, diskerr.New(string(ISO), ErrCorrupt, "no primary volume descriptor in the first %d descriptors", isoMaxDescs)
}

func isoFromPVD(src Source, d []byte) (Image, error) {
	blocks := binary.LittleEndian.Uint32(d[80:])
	if binary.BigEndian.Uint32(d[84:]) != blocks {
		return nil, diskerr.New(string(ISO), ErrCorrupt, "volume space size differs between its little- and big-endian copies")
	}
	bs := binary.LittleEndian.Uint16(d[128:])
	if binary.BigEndian.Uint16(d[130:]) != bs {
		return nil, diskerr.New(string(ISO), ErrCorrupt, "logical block size differs between its little- and big-endian copies")
	}
	if bs < 512 || bs > 2048 || bs&(bs-1) != 0 {
		return nil, diskerr.New(string(ISO), ErrCorrupt, "logical block size %d is not 512, 1024 or 2048", bs)
	}
	volume := int64(blocks) * int64(bs)
	if volume < isoDescStart+2*isoDescSize {
		return nil, diskerr.New(string(ISO), ErrCorrupt, "volume of %d bytes cannot hold its own descriptors", volume)
	}
	if volume > src.Size {
		return nil, diskerr.New(string(ISO), ErrTruncated, "volume declares %d bytes but the file has %d", volume, src.Size)
	}
	return &flat{r: src.R, size: src.Size, info: Info{
		Format: ISO, VirtualSize: src.Size, FileSize: src.Size, ClusterSize: int64(bs),
		Details: map[string]any{
			"volume-id":    trimISO(d[40:72]),
			"volume-bytes": volume,
			"block-size":   int(bs),
		},
	}}, nil
}

// trimISO returns an a-/d-character field without its space padding.
func trimISO(b []byte) string {
	end := len(b)
	for end > 0 && (b[end-1] == ' ' || b[end-1] == 0) {
		end--
	}
	return string(b[:end])
}
