package testutil

import (
	"encoding/binary"
	"math/bits"
)

// DC42 builds a DiskCopy 4.2 image from the published layout: 84-byte header,
// data, tags. It computes both checksums independently of the reader's code.
func DC42(name string, data, tags []byte) []byte {
	h := make([]byte, 84)
	h[0] = byte(len(name))
	copy(h[1:64], name)
	binary.BigEndian.PutUint32(h[0x40:], uint32(len(data)))
	binary.BigEndian.PutUint32(h[0x44:], uint32(len(tags)))
	sum := func(b []byte) uint32 {
		var s uint32
		for i := 0; i < len(b); i += 2 {
			s = bits.RotateLeft32(s+(uint32(b[i])<<8|uint32(b[i+1])), -1)
		}
		return s
	}
	binary.BigEndian.PutUint32(h[0x48:], sum(data))
	if len(tags) > 12 {
		binary.BigEndian.PutUint32(h[0x4C:], sum(tags[12:]))
	}
	switch len(data) {
	case 409600:
		h[0x50], h[0x51] = 0, 0x12
	case 819200:
		h[0x50], h[0x51] = 1, 0x22
	case 737280:
		h[0x50], h[0x51] = 2, 0x22
	case 1474560:
		h[0x50], h[0x51] = 3, 0x22
	}
	h[0x52], h[0x53] = 1, 0
	return append(append(h, data...), tags...)
}
