// Package crc32wasm generates web/crc32.wasm: a hand-written WebAssembly
// CRC32 (IEEE) kernel for the browser's helper worker.
//
// Why: Go's wasm code generator is slow for tight loops; hash/crc32 compiled
// to wasm runs ~1.2 GB/s, while the same slicing-by-16 loop written directly
// in wasm and compiled by V8 runs several times faster (docs/browser.md has
// the figures). During a raw import the helper checksums every byte on the
// second of two cores, where it competes with the browser's own file-reading
// threads, so its CPU time per byte is what the import pays.
//
// There is no wat2wasm here, so this package emits the binary directly. The
// module is small and fixed:
//
//	(memory (export "mem") 1)        ;; tables from 0, data from DataOffset
//	(global (export "data") i32 ...) ;; = DataOffset; also "segLen", "segStride", "lanes"
//	(func (export "update") (param crc ptr len i32) (result i32))   ;; slicing-by-16
//	(func (export "update16") (param crc ptr i32) (result i32))     ;; SIMD, one BlockLen block
//	(data (i32.const 0) <slicing, nibble and shift tables>)
//
// Both have the semantics of Go's crc32.Update with the IEEE table: the
// register is inverted on entry and exit, so update(0, …) starts a CRC and
// chunks continue with the previous result. update16 reads its block as
// Lanes segments of SegLen bytes placed SegStride apart; web/crc32_kernel.js
// (crc32Update) lays the bytes out and picks the function.
//
// `go generate ./internal/crc32wasm` (cmd/gen-crc32wasm) rewrites the file;
// a test checks that the committed file is up to date.
package crc32wasm

//go:generate go run ../../cmd/gen-crc32wasm -o ../../web/crc32.wasm

import (
	"bytes"
	"hash/crc32"
)

const (
	slices = 16 // slicing-by-16: 16 tables, 16 bytes per loop turn

	// Lanes, SegLen and SegStride shape update16's block: Lanes segments of
	// SegLen bytes, segment j at j*SegStride from the block's start. The
	// stride is not a power of two so the 16 streams of loads do not all
	// fall into the same L1 cache set.
	Lanes     = 16
	SegLen    = 64 << 10
	SegStride = SegLen + 64
	// BlockLen is the input bytes of one update16 call.
	BlockLen = Lanes * SegLen

	// Memory layout: the slicing tables, update16's nibble tables and its
	// shift tables, a scratch area, then the caller's data.
	nibbleOffset  = slices * 256 * 4
	shiftOffset   = nibbleOffset + 8*16
	scratchOffset = shiftOffset + 4*256*4
	// DataOffset is where callers copy their bytes, 64-byte aligned.
	DataOffset = (scratchOffset + 64 + 63) &^ 63
)

// tables returns the slicing tables: t[0] is the classic byte table, and
// t[k][i] is the CRC of byte i followed by k zero bytes.
func tables() [slices][256]uint32 {
	var t [slices][256]uint32
	t[0] = *crc32.MakeTable(crc32.IEEE)
	for k := 1; k < slices; k++ {
		for i := range 256 {
			p := t[k-1][i]
			t[k][i] = t[0][p&0xff] ^ p>>8
		}
	}
	return t
}

// WebAssembly opcodes used below.
const (
	opBlock    = 0x02
	opLoop     = 0x03
	opEnd      = 0x0b
	opBr       = 0x0c
	opBrIf     = 0x0d
	opLocalGet = 0x20
	opLocalSet = 0x21
	opLocalTee = 0x22
	opI32Load  = 0x28
	opI32Load8 = 0x2d // i32.load8_u
	opI32Const = 0x41
	opI32Eqz   = 0x45
	opI32LtU   = 0x49
	opI32Add   = 0x6a
	opI32Sub   = 0x6b
	opI32And   = 0x71
	opI32Xor   = 0x73
	opI32Shl   = 0x74
	opI32ShrU  = 0x76
	opI32Or    = 0x72
	typeI32    = 0x7f
	typeV128   = 0x7b
	blockVoid  = 0x40

	// SIMD (prefix 0xfd, then the opcode as a LEB128 u32; all below 0x80).
	opSIMD        = 0xfd
	simdLoad      = 0x00
	simdStore     = 0x0b
	simdConst     = 0x0c
	simdShuffle   = 0x0d
	simdSwizzle   = 0x0e
	simdAnd       = 0x4e
	simdXor       = 0x51
	simdI8x16ShrU = 0x6d
)

func uleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// asm is a tiny assembler for one function body.
type asm struct{ b []byte }

func (a *asm) op(ops ...byte)        { a.b = append(a.b, ops...) }
func (a *asm) get(l int)             { a.op(opLocalGet); a.b = uleb(a.b, uint64(l)) }
func (a *asm) set(l int)             { a.op(opLocalSet); a.b = uleb(a.b, uint64(l)) }
func (a *asm) tee(l int)             { a.op(opLocalTee); a.b = uleb(a.b, uint64(l)) }
func (a *asm) i32(v int32)           { a.op(opI32Const); a.b = sleb(a.b, int64(v)) }
func (a *asm) br(op byte, depth int) { a.op(op); a.b = uleb(a.b, uint64(depth)) }

// not pushes ^l.
func (a *asm) not(l int) { a.get(l); a.i32(-1); a.op(opI32Xor) }

// advance emits ptr += n; len -= n.
func (a *asm) advance(n int32) {
	a.get(lPtr)
	a.i32(n)
	a.op(opI32Add)
	a.set(lPtr)
	a.get(lLen)
	a.i32(n)
	a.op(opI32Sub)
	a.set(lLen)
}

func (a *asm) load(op byte, align, offset uint32) {
	a.op(op)
	a.b = uleb(a.b, uint64(align))
	a.b = uleb(a.b, uint64(offset))
}

// Locals of update: the three parameters, then scratch words.
const (
	lCRC = iota
	lPtr
	lLen
	lW0 // lW0..lW3: the four data words of one 16-byte block
)

// lookup pushes t[table][(word >> (8*byteIdx)) & 0xff]: the index is shifted
// straight to a byte offset (×4) and masked with 0x3fc, and the table's base
// goes into the load's constant offset, so each lookup is two ALU ops and a
// load (V8 needs no bounds check: wasm32 memories sit in guard regions).
func (a *asm) lookup(word, byteIdx, table int) { a.lookupAt(word, byteIdx, uint32(table*1024)) }

// lookupAt is lookup in the 256-entry u32 table at byte address base.
func (a *asm) lookupAt(word, byteIdx int, base uint32) {
	a.get(word)
	switch sh := 8*byteIdx - 2; {
	case sh < 0:
		a.i32(2)
		a.op(opI32Shl)
	default:
		a.i32(int32(sh))
		a.op(opI32ShrU)
	}
	a.i32(0x3fc)
	a.op(opI32And)
	a.load(opI32Load, 2, base)
}

// updateBody is the code of update(crc, ptr, len).
func updateBody() []byte {
	var a asm
	// crc = ^crc
	a.not(lCRC)
	a.set(lCRC)

	// while len >= 16: slicing-by-16. The four words are loaded first and
	// the 16 lookups are independent, so the CPU overlaps them; only the
	// XOR of the first word with crc is on the loop-carried path.
	a.op(opBlock, blockVoid)
	a.op(opLoop, blockVoid)
	a.get(lLen)
	a.i32(16)
	a.op(opI32LtU)
	a.br(opBrIf, 1)
	a.get(lPtr)
	a.load(opI32Load, 0, 0)
	a.get(lCRC)
	a.op(opI32Xor)
	a.set(lW0)
	for w := 1; w < 4; w++ {
		a.get(lPtr)
		a.load(opI32Load, 0, uint32(4*w))
		a.set(lW0 + w)
	}
	// Byte j of the block (0..15) goes through table 15-j.
	first := true
	for j := range 16 {
		a.lookup(lW0+j/4, j%4, 15-j)
		if !first {
			a.op(opI32Xor)
		}
		first = false
	}
	a.set(lCRC)
	a.advance(16)
	a.br(opBr, 0)
	a.op(opEnd, opEnd)

	// The last 0..15 bytes, one at a time:
	// crc = t0[(crc ^ *ptr) & 0xff] ^ crc >> 8.
	a.op(opBlock, blockVoid)
	a.op(opLoop, blockVoid)
	a.get(lLen)
	a.op(opI32Eqz)
	a.br(opBrIf, 1)
	a.get(lCRC)
	a.get(lPtr)
	a.load(opI32Load8, 0, 0)
	a.op(opI32Xor)
	a.i32(2)
	a.op(opI32Shl)
	a.i32(0x3fc)
	a.op(opI32And)
	a.load(opI32Load, 2, 0)
	a.get(lCRC)
	a.i32(8)
	a.op(opI32ShrU)
	a.op(opI32Xor)
	a.set(lCRC)
	a.advance(1)
	a.br(opBr, 0)
	a.op(opEnd, opEnd)

	// return ^crc
	a.not(lCRC)
	a.op(opEnd)

	// Body: one local declaration (4 × i32), then the code.
	body := uleb(nil, 1)
	body = uleb(body, 4)
	body = append(body, typeI32)
	return append(body, a.b...)
}

// vec encodes a vector: its count, then its items.
func vec(items ...[]byte) []byte {
	b := uleb(nil, uint64(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func name(s string) []byte { return append(uleb(nil, uint64(len(s))), s...) }

func section(out *bytes.Buffer, id byte, content []byte) {
	out.WriteByte(id)
	out.Write(uleb(nil, uint64(len(content))))
	out.Write(content)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// nibbleTables returns update16's lookup tables: for output byte k of the
// CRC register, lo[k][n] = byte k of t0[n] and hi[k][n] = byte k of
// t0[n<<4]. The byte table is linear (t0[a^b] = t0[a]^t0[b]), so t0[x] is
// lo[x&15] ^ hi[x>>4], byte by byte: 16-entry tables that i8x16.swizzle
// looks up for 16 lanes at once.
func nibbleTables() (lo, hi [4][16]byte) {
	t0 := crc32.MakeTable(crc32.IEEE)
	for k := range 4 {
		for n := range 16 {
			lo[k][n] = byte(t0[n] >> (8 * k))
			hi[k][n] = byte(t0[n<<4] >> (8 * k))
		}
	}
	return lo, hi
}

// shiftTables returns the tables of the operator that feeds SegLen zero
// bytes through the (non-inverted) register: s[b][v] is its image of v<<8b,
// so the image of r is the XOR of s[b][byte b of r]. update16 uses it to
// join the lanes' CRCs (like crc32_combine with a fixed length). The
// operator is linear; it is computed on the 32 basis bits and the tables
// are XORs of those.
func shiftTables() [4][256]uint32 {
	t0 := crc32.MakeTable(crc32.IEEE)
	var basis [32]uint32
	for bit := range 32 {
		r := uint32(1) << bit
		for range SegLen {
			r = t0[r&0xff] ^ r>>8
		}
		basis[bit] = r
	}
	var s [4][256]uint32
	for b := range 4 {
		for v := range 256 {
			for i := range 8 {
				if v>>i&1 != 0 {
					s[b][v] ^= basis[8*b+i]
				}
			}
		}
	}
	return s
}

func (a *asm) simd(op byte) { a.op(opSIMD, op) }
func (a *asm) simdMem(op byte, off uint32) {
	a.simd(op)
	a.b = uleb(a.b, 4)
	a.b = uleb(a.b, uint64(off))
}

// Locals of update16: the parameters crc and ptr, i32 scratch, then v128s.
const (
	u16CRC = iota
	u16Ptr
	u16End                // ptr + SegLen: where the segment offsets stop
	u16Acc                // the combined CRC register
	u16P0                 // P0..P3: byte planes of the 16 lanes' registers (byte k of lane j's register in lane j of Pk)
	u16TL0    = u16P0 + 4 // TL0..TL3, TH0..TH3: nibble tables
	u16TH0    = u16TL0 + 4
	u16Mask   = u16TH0 + 4 // 0x0f in every lane
	u16X      = u16Mask + 1
	u16Lo     = u16X + 1
	u16Hi     = u16Lo + 1
	u16R0     = u16Hi + 1  // R0..R15: the 16 rows being transposed, then bytes 0..15 of each lane
	u16Tmp0   = u16R0 + 16 // 16 more for the transpose's other half
	u16Locals = u16Tmp0 + 16
)

// update16Body is the code of update16(crc, ptr): crc32.Update(crc, IEEE,
// the BlockLen bytes at ptr) for input laid out as Lanes segments (see
// SegStride). Each of the 16 lanes of a v128 runs the classic byte-at-a-time
// CRC over its own segment, starting from a zero register; 16 bytes of
// every segment are loaded, transposed (four rounds of byte interleaves)
// so that vector i holds byte i of each segment, and fed one vector per
// step. The lanes' registers are then joined in order with the shift tables.
func update16Body() []byte {
	var a asm
	for k := range 4 {
		a.i32(0)
		a.simdMem(simdLoad, uint32(nibbleOffset+16*k))
		a.set(u16TL0 + k)
		a.i32(0)
		a.simdMem(simdLoad, uint32(nibbleOffset+64+16*k))
		a.set(u16TH0 + k)
	}
	a.simd(simdConst)
	for range 16 {
		a.op(0x0f)
	}
	a.set(u16Mask)
	// end = ptr + SegLen
	a.get(u16Ptr)
	a.i32(SegLen)
	a.op(opI32Add)
	a.set(u16End)

	a.op(opLoop, blockVoid)
	// Row j: 16 bytes of segment j.
	for j := range 16 {
		a.get(u16Ptr)
		a.simdMem(simdLoad, uint32(j*SegStride))
		a.set(u16R0 + j)
	}
	// Transpose: four rounds of pairing row i with row i+8 into the
	// interleave of their low halves (row 2i) and high halves (row 2i+1).
	src, dst := u16R0, u16Tmp0
	for range 4 {
		for i := range 8 {
			for h := range 2 {
				a.get(src + i)
				a.get(src + i + 8)
				a.simd(simdShuffle)
				for l := range 8 {
					a.op(byte(8*h+l), byte(16+8*h+l))
				}
				a.set(dst + 2*i + h)
			}
		}
		src, dst = dst, src
	}
	// After an even number of rounds the rows are back in R0..R15.
	for i := range 16 {
		a.step16(src + i)
	}
	// ptr += 16; loop while ptr != end
	a.get(u16Ptr)
	a.i32(16)
	a.op(opI32Add)
	a.tee(u16Ptr)
	a.get(u16End)
	a.op(0x47) // i32.ne
	a.br(opBrIf, 0)
	a.op(opEnd)

	// The lanes' registers, byte planes to the scratch area.
	for k := range 4 {
		a.i32(0)
		a.get(u16P0 + k)
		a.simdMem(simdStore, uint32(scratchOffset+16*k))
	}
	// acc = ^crc; for each lane in order: acc = shift(acc) ^ lane's register.
	a.not(u16CRC)
	a.set(u16Acc)
	for j := range 16 {
		for b := range 4 {
			a.lookupAt(u16Acc, b, uint32(shiftOffset+1024*b))
			if b > 0 {
				a.op(opI32Xor)
			}
		}
		for b := range 4 {
			a.i32(0)
			a.load(opI32Load8, 0, uint32(scratchOffset+16*b+j))
			if b > 0 {
				a.i32(int32(8 * b))
				a.op(opI32Shl)
				a.op(opI32Or)
			}
		}
		a.op(opI32Xor)
		a.set(u16Acc)
	}
	a.not(u16Acc)
	a.op(opEnd)

	body := uleb(nil, 2)
	body = uleb(body, 2)
	body = append(body, typeI32)
	body = uleb(body, uint64(u16Locals-u16P0))
	body = append(body, typeV128)
	return append(body, a.b...)
}

// step16 feeds one vector of input bytes (one per lane) through the 16
// lanes' registers: r = r>>8 ^ t0[(r ^ b) & 0xff], on byte planes.
func (a *asm) step16(in int) {
	a.get(u16P0)
	a.get(in)
	a.simd(simdXor)
	a.tee(u16X)
	a.get(u16Mask)
	a.simd(simdAnd)
	a.set(u16Lo)
	a.get(u16X)
	a.i32(4)
	a.simd(simdI8x16ShrU)
	a.set(u16Hi)
	for k := range 4 {
		// Pk = P(k+1) ^ lo[k][lo] ^ hi[k][hi]; P3 has no P4.
		a.get(u16TL0 + k)
		a.get(u16Lo)
		a.simd(simdSwizzle)
		a.get(u16TH0 + k)
		a.get(u16Hi)
		a.simd(simdSwizzle)
		a.simd(simdXor)
		if k < 3 {
			a.get(u16P0 + k + 1)
			a.simd(simdXor)
		}
		a.set(u16P0 + k)
	}
}

// Module returns the bytes of web/crc32.wasm.
func Module() []byte {
	var out bytes.Buffer
	out.Write([]byte{0, 'a', 's', 'm', 1, 0, 0, 0})
	// Types: (i32 i32 i32) -> i32 for update, (i32 i32) -> i32 for update16.
	section(&out, 1, vec(
		[]byte{0x60, 3, typeI32, typeI32, typeI32, 1, typeI32},
		[]byte{0x60, 2, typeI32, typeI32, 1, typeI32},
	))
	section(&out, 3, vec([]byte{0}, []byte{1}))
	// Memory 0: one page to start (no maximum; callers grow it).
	section(&out, 5, vec([]byte{0x00, 1}))
	// Globals: immutable i32s describing the layout.
	global := func(v int32) []byte {
		return cat([]byte{typeI32, 0}, sleb([]byte{opI32Const}, int64(v)), []byte{opEnd})
	}
	section(&out, 6, vec(global(DataOffset), global(SegLen), global(SegStride), global(Lanes)))
	// Exports.
	section(&out, 7, vec(
		cat(name("mem"), []byte{2, 0}),
		cat(name("data"), []byte{3, 0}),
		cat(name("segLen"), []byte{3, 1}),
		cat(name("segStride"), []byte{3, 2}),
		cat(name("lanes"), []byte{3, 3}),
		cat(name("update"), []byte{0, 0}),
		cat(name("update16"), []byte{0, 1}),
	))
	// Code.
	body, body16 := updateBody(), update16Body()
	section(&out, 10, vec(cat(uleb(nil, uint64(len(body))), body), cat(uleb(nil, uint64(len(body16))), body16)))
	// Data: all tables from address 0.
	t := tables()
	var tb []byte
	u32 := func(v uint32) { tb = append(tb, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
	for k := range t {
		for _, v := range t[k] {
			u32(v)
		}
	}
	lo, hi := nibbleTables()
	for k := range 4 {
		tb = append(tb, lo[k][:]...)
	}
	for k := range 4 {
		tb = append(tb, hi[k][:]...)
	}
	for _, st := range shiftTables() {
		for _, v := range st {
			u32(v)
		}
	}
	section(&out, 11, vec(cat([]byte{0, opI32Const, 0, opEnd}, uleb(nil, uint64(len(tb))), tb)))
	return out.Bytes()
}
