package gzipx

import "sync"

// bitWriter packs DEFLATE bits LSB-first into buf. Between calls fewer than 8
// bits are pending in acc.
type bitWriter struct {
	buf []byte
	acc uint64
	n   uint
}

// bits writes the low n (≤ 32) bits of v, least significant first.
func (b *bitWriter) bits(v uint32, n uint) {
	b.acc |= uint64(v) << b.n
	b.n += n
	for b.n >= 8 {
		b.buf = append(b.buf, byte(b.acc))
		b.acc >>= 8
		b.n -= 8
	}
}

// code writes a Huffman code of length n: codes are sent most significant
// bit first, so the bits are reversed into the LSB-first stream.
func (b *bitWriter) code(c uint32, n uint) {
	var r uint32
	for i := uint(0); i < n; i++ {
		r = r<<1 | (c>>i)&1
	}
	b.bits(r, n)
}

// zeros writes z zero bits. Once the pending bits are pushed out by the first
// whole byte, the accumulator is empty and every further byte is 0x00, so
// long runs cost one append.
func (b *bitWriter) zeros(z uint64) {
	if z >= 8 {
		nb := z / 8
		b.buf = append(b.buf, byte(b.acc))
		b.buf = append(b.buf, make([]byte, nb-1)...)
		b.acc = 0
		z -= nb * 8
	}
	b.bits(0, uint(z))
}

// Length codes 257..284 (285 is exactly 258): base length and extra bits.
var lenBase = [...]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227}
var lenExtra = [...]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5}

// clOrder is the order code-length code lengths are sent in (RFC 1951 3.2.7).
var clOrder = [...]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// appendZeroSegment appends a self-contained, byte-aligned run of non-final
// DEFLATE blocks that decodes to n ≥ 1 zero bytes and never refers to
// anything before its own first byte. See the package comment for the layout.
func appendZeroSegment(dst []byte, n int64) []byte {
	if n <= 0 {
		return dst
	}
	b := bitWriter{buf: dst}

	// Block 1, dynamic Huffman (BFINAL 0, BTYPE 10): one literal 0 then
	// m matches of length 258 at distance 1.
	m := uint64(n-1) / 258
	t := uint32(uint64(n-1) % 258)
	b.bits(0, 1)
	b.bits(2, 2)
	b.bits(286-257, 5) // HLIT: literal/length lengths for symbols 0..285
	b.bits(2-1, 5)     // HDIST: distance codes 0 and 1
	b.bits(18-4, 4)    // HCLEN: code-length code lengths up to clOrder[17] (symbol 1)
	for _, s := range clOrder[:18] {
		var l uint32
		switch s {
		case 18:
			l = 1 // "0"
		case 1, 2:
			l = 2 // 1: "10", 2: "11"
		}
		b.bits(l, 3)
	}
	// Literal/length code lengths: 0→2, 1..255→0, 256→2, 257..284→0, 285→1;
	// distance code lengths: 0→1, 1→1 (two codes keep the distance code
	// complete, as zlib does).
	b.code(0b11, 2) // length 2 (symbol 0)
	b.code(0, 1)    // 18: repeat zero 11+127 = 138 times (1..138)
	b.bits(127, 7)  //
	b.code(0, 1)    // 18: repeat zero 11+106 = 117 times (139..255)
	b.bits(106, 7)  //
	b.code(0b11, 2) // length 2 (symbol 256)
	b.code(0, 1)    // 18: repeat zero 11+17 = 28 times (257..284)
	b.bits(17, 7)   //
	b.code(0b10, 2) // length 1 (symbol 285)
	b.code(0b10, 2) // length 1 (distance 0)
	b.code(0b10, 2) // length 1 (distance 1)
	// Canonical codes: 285 → "0", literal 0 → "10", end of block → "11";
	// distance 0 (distance 1 byte) → "0".
	b.code(0b10, 2) // literal 0
	b.zeros(2 * m)  // m × (length 258 "0", distance 1 "0")
	b.code(0b11, 2) // end of block

	// Block 2, fixed Huffman (BFINAL 0, BTYPE 01), for the t < 258 bytes
	// left: literal zeros, or one match at distance 1 (the byte before is
	// a zero of this segment).
	if t > 0 {
		b.bits(0, 1)
		b.bits(1, 2)
		if t < 3 {
			for range t {
				b.code(0x30, 8) // literal 0
			}
		} else {
			i := len(lenBase) - 1
			for uint32(lenBase[i]) > t {
				i--
			}
			sym := uint32(257 + i)
			if sym <= 279 {
				b.code(sym-256, 7)
			} else {
				b.code(0xc0+sym-280, 8)
			}
			b.bits(t-uint32(lenBase[i]), uint(lenExtra[i]))
			b.code(0, 5) // distance code 0: distance 1
		}
		b.code(0, 7) // end of block
	}

	// Byte-align with an empty stored block (a sync-flush marker), unless
	// the blocks already end on a byte boundary.
	if b.n != 0 {
		b.bits(0, 3)
		if b.n != 0 {
			b.bits(0, 8-b.n)
		}
		b.buf = append(b.buf, 0x00, 0x00, 0xff, 0xff)
	}
	return b.buf
}

// K is the length of the zero run encoded by the precomputed segment; long
// zero runs are written as copies of it plus one segment for the remainder.
const K = 16 << 20

var (
	kSegOnce sync.Once
	kSeg     []byte
)

// kSegment returns the segment for K zero bytes, built on first use (about
// 16 KB, a few microseconds) so that start-up pays nothing.
func kSegment() []byte {
	kSegOnce.Do(func() { kSeg = appendZeroSegment(nil, K) })
	return kSeg
}
