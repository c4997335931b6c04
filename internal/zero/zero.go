// Package zero detects all-zero data, which the sparse paths skip: zero
// grains are never written in conversions and all-zero AEROSPAR blocks are
// never stored.
package zero

import "encoding/binary"

// Is reports whether b holds only zero bytes. Word loads keep it fast in
// js/wasm too (no SIMD there): about 5 GB/s in wasm, 20 GB/s natively.
func Is(b []byte) bool {
	for len(b) >= 32 {
		if binary.LittleEndian.Uint64(b)|binary.LittleEndian.Uint64(b[8:])|
			binary.LittleEndian.Uint64(b[16:])|binary.LittleEndian.Uint64(b[24:]) != 0 {
			return false
		}
		b = b[32:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
