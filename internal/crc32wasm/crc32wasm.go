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
//	(memory (export "mem") 1)            ;; tables at 0, data from DataOffset
//	(global (export "data") i32 ...)     ;; = DataOffset
//	(func (export "update") (param crc ptr len i32) (result i32))
//	(data (i32.const 0) <16 tables of 256 little-endian u32>)
//
// update has the semantics of Go's crc32.Update with the IEEE table: the
// register is inverted on entry and exit, so update(0, …) starts a CRC and
// chunks continue with the previous result.
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
	// DataOffset is where callers copy their bytes: just past the tables,
	// rounded up to 64 bytes.
	DataOffset = (slices*256*4 + 63) &^ 63
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
	typeI32    = 0x7f
	blockVoid  = 0x40
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
func (a *asm) lookup(word, byteIdx, table int) {
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
	a.load(opI32Load, 2, uint32(table*1024))
}

// updateBody is the code of update(crc, ptr, len).
func updateBody() []byte {
	var a asm
	// crc = ^crc
	a.get(lCRC)
	a.i32(-1)
	a.op(opI32Xor)
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
	a.get(lCRC)
	a.i32(-1)
	a.op(opI32Xor)
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

// Module returns the bytes of web/crc32.wasm.
func Module() []byte {
	var out bytes.Buffer
	out.Write([]byte{0, 'a', 's', 'm', 1, 0, 0, 0})
	// Type: (i32 i32 i32) -> i32.
	section(&out, 1, vec([]byte{0x60, 3, typeI32, typeI32, typeI32, 1, typeI32}))
	// Function 0 has type 0.
	section(&out, 3, vec([]byte{0}))
	// Memory 0: one page to start (no maximum; callers grow it).
	section(&out, 5, vec([]byte{0x00, 1}))
	// Global 0: immutable i32 = DataOffset.
	section(&out, 6, vec(cat([]byte{typeI32, 0}, sleb([]byte{opI32Const}, DataOffset), []byte{opEnd})))
	// Exports.
	section(&out, 7, vec(
		cat(name("mem"), []byte{2, 0}),
		cat(name("data"), []byte{3, 0}),
		cat(name("update"), []byte{0, 0}),
	))
	// Code.
	body := updateBody()
	section(&out, 10, vec(cat(uleb(nil, uint64(len(body))), body)))
	// Data: the tables at address 0.
	t := tables()
	var tb []byte
	for k := range t {
		for _, v := range t[k] {
			tb = append(tb, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
		}
	}
	section(&out, 11, vec(cat([]byte{0, opI32Const, 0, opEnd}, uleb(nil, uint64(len(tb))), tb)))
	return out.Bytes()
}
