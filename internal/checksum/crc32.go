// Package checksum computes a disk's checksum: CRC32 (IEEE) of its logical
// content. Zero runs are folded in arithmetically (the GF(2) polynomial
// arithmetic of zlib's crc32_combine), so an empty 60 GB disk costs a few
// dozen multiplications instead of 60 GB of table lookups.
package checksum

import (
	"fmt"
	"hash/crc32"
)

const poly = 0xedb88320 // reflected IEEE polynomial

var ieee = crc32.IEEETable

// Update extends crc with p (crc32.Update over the IEEE table).
func Update(crc uint32, p []byte) uint32 { return crc32.Update(crc, ieee, p) }

// multModP returns a*b modulo the CRC polynomial, in the reflected bit order.
func multModP(a, b uint32) uint32 {
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				break
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = (b >> 1) ^ poly
		} else {
			b >>= 1
		}
	}
	return p
}

// x2nTable[k] = x^(2^k) mod P, for k < 32.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	t[0] = p
	for n := 1; n < 32; n++ {
		p = multModP(p, p)
		t[n] = p
	}
	return t
}()

// x2nModP returns x^(n·2^k) mod P.
func x2nModP(n uint64, k uint) uint32 {
	p := uint32(1) << 31 // x^0 == 1
	for n != 0 {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		n >>= 1
		k++
	}
	return p
}

// ExtendZeros returns the CRC32 of (data whose CRC is crc) followed by n zero bytes.
func ExtendZeros(crc uint32, n int64) uint32 {
	if n <= 0 {
		return crc
	}
	// Appending zeros multiplies the raw (unconditioned) register by x^(8n).
	return ^multModP(x2nModP(uint64(n), 3), ^crc)
}

// Combine returns the CRC32 of A||B from crcA, crcB and len(B).
func Combine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	return multModP(x2nModP(uint64(lenB), 3), crcA) ^ crcB
}

// Hex formats a checksum the way the catalog stores it: 8 lowercase hex digits.
func Hex(crc uint32) string { return fmt.Sprintf("%08x", crc) }

// Digest is a running CRC32 over a logical disk, written in order.
type Digest struct {
	crc uint32
	n   int64
}

// Write adds data.
func (d *Digest) Write(p []byte) (int, error) {
	d.crc = Update(d.crc, p)
	d.n += int64(len(p))
	return len(p), nil
}

// Zeros adds n zero bytes without touching memory.
func (d *Digest) Zeros(n int64) {
	d.crc = ExtendZeros(d.crc, n)
	d.n += n
}

// Sum32 is the CRC so far; Len is the bytes covered.
func (d *Digest) Sum32() uint32 { return d.crc }
func (d *Digest) Len() int64    { return d.n }
