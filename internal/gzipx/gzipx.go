// Package gzipx writes a disk image as one standard gzip member (RFC 1952),
// with a fast path for long runs of zero bytes: an empty 60 GB disk costs a
// few thousand copies of a 16 KB buffer instead of 60 GB of compression.
//
// # Stream layout
//
// The member is a 10-byte header (1f 8b 08, no flags, mtime 0, XFL 0, OS 255
// "unknown"), one raw DEFLATE stream (RFC 1951), and the trailer: CRC32 and
// ISIZE (length mod 2^32), both little-endian. The DEFLATE stream is
// assembled from segments, each a run of whole blocks:
//
//   - data segments: the output of a klauspost/compress flate.Writer between
//     two resets, ended with a sync flush (Flush: an empty stored block,
//     00 00 ff ff) when a zero run follows;
//   - zero segments, produced here without compressing anything;
//   - the last segment, ended by flate.Writer.Close with a final block.
//
// # Why segments may be concatenated
//
// A DEFLATE stream is a sequence of blocks, and only the last has BFINAL
// set. A decoder reads a block header at whatever bit follows the previous
// block; stored blocks skip to the next byte boundary, and no other state
// (bit buffer, Huffman tables) carries from one block to the next. So if
// every segment but the last consists of non-final blocks and ends exactly on
// a byte boundary, the byte concatenation of the segments is a valid DEFLATE
// stream: each segment's first block header lands where the decoder looks
// for it. The decoder's one piece of cross-block state is the 32 KB window
// that back-references copy from; it holds whatever bytes were decoded last,
// whichever segment produced them.
//
// # Why the compressor is reset after a zero run
//
// The window is why the compressor must be reset (flate.Writer.Reset) after
// a zero segment. The compressor remembers the data it was given and emits
// matches at distances into that history. After a zero segment the
// decoder's window holds zeros the compressor never saw, so a match the
// compressor computed against its stale history would copy the wrong bytes.
// After Reset the compressor has no history, so its matches only point into
// data it has been given since. Zero segments start with a literal and then
// only refer back into their own bytes, so before one a sync flush is all
// the compressor needs. No back-reference ever crosses a segment boundary.
//
// # The zero segment
//
// appendZeroSegment(n) builds, with a small bit writer, a segment decoding to
// n zero bytes:
//
//   - one dynamic-Huffman block whose literal/length code has three symbols
//     (length 258 → "0", literal 0 → "10", end of block → "11") and whose
//     distance code has two (distance 1 → "0", and an unused one, which keeps
//     the code complete as zlib does). It sends literal 0 and then
//     m = (n−1)/258 copies of "length 258, distance 1", which is 2 bits per
//     258 bytes: the body is all zero bits. That is deflate's best case
//     (1032:1); the block header costs 105 bits;
//   - for the t = (n−1) mod 258 bytes left, a fixed-Huffman block with one
//     match at distance 1 (or t literal zeros when t < 3), a few bytes;
//   - an empty stored block to reach a byte boundary (5 bytes), if needed.
//
// It uses only what every inflater implements: ordinary dynamic, fixed and
// stored blocks with complete Huffman codes (the tests decode it with
// compress/flate, klauspost, gzip -d and Node's DecompressionStream, i.e.
// zlib). The segment for
// K = 16 MiB (16,279 bytes, 1030.6:1) is built once per process, on
// the first long zero run, not at package initialisation; WriteZeros(n) with
// n ≥ zeroRunMin writes ⌊n/K⌋ copies of it and a freshly built segment for
// n mod K into a per-Writer buffer of at most 16 KB. Shorter zero runs go
// through the compressor from a shared zero buffer. The CRC32 is extended
// over zero runs arithmetically (checksum.ExtendZeros), never by hashing
// zeros. Memory does not depend on n.
//
// # Level
//
// DefaultLevel, klauspost level 1, was chosen by measurement (the tests'
// BenchmarkLevels; set GZIPX_BENCH_FILE to measure on a real image): the
// fastest level, natively and under js/wasm, and its output stays within
// 1.15× of zlib level 6, which CompressionStream("gzip") uses — 1.10× on
// testutil.MixedData, 1.145× on a corpus of Debian binaries. Level 2 is
// 1.09×/1.12× and 0–20 % slower; levels 3–6 gain little size for much
// speed; HuffmanOnly (-2) is faster but 1.6× the size.
package gzipx

import (
	"encoding/binary"
	"errors"
	"io"

	"aerodisk/internal/checksum"

	"github.com/klauspost/compress/flate"
)

// DefaultLevel is the klauspost flate level used for data; see the package
// comment for how it was chosen. flate.DefaultCompression selects it too.
const DefaultLevel = 1

// zeroRunMin is the shortest zero run written as a zero segment; shorter
// runs are compressed as ordinary data, from zeroBuf.
const zeroRunMin = 64 << 10

// zeroBuf is read-only; it lives in BSS and costs nothing at start-up.
var zeroBuf [zeroRunMin]byte

// header: ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=255 (unknown).
var header = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("gzipx: write after Close")

// Writer writes one gzip member. It is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	fw      *flate.Writer
	crc     uint32
	size    uint64 // logical bytes written; ISIZE is its low 32 bits
	started bool   // header written
	pending bool   // data given to fw since its last flush or reset
	hist    bool   // data given to fw since its last reset
	closed  bool
	err     error  // sticky
	scratch []byte // remainder zero segment, reused
}

// NewWriter returns a Writer that compresses data at the given klauspost
// flate level (-2 … 9; flate.DefaultCompression means DefaultLevel). Nothing
// is written to w until the first Write, WriteZeros or Close. The compressor
// hands w pieces of about 250 bytes: give it a bufio.Writer if each write is
// costly (a call into JavaScript, a system call).
func NewWriter(w io.Writer, level int) (*Writer, error) {
	if level == flate.DefaultCompression {
		level = DefaultLevel
	}
	fw, err := flate.NewWriter(w, level)
	if err != nil {
		return nil, err
	}
	return &Writer{w: w, fw: fw}, nil
}

// start writes the header before the first output.
func (z *Writer) start() error {
	if z.err != nil {
		return z.err
	}
	if z.closed {
		return ErrClosed
	}
	if !z.started {
		z.started = true
		if _, err := z.w.Write(header[:]); err != nil {
			z.err = err
			return err
		}
	}
	return nil
}

// Write compresses p as ordinary data.
func (z *Writer) Write(p []byte) (int, error) {
	if err := z.start(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := z.fw.Write(p)
	z.crc = checksum.Update(z.crc, p[:n])
	z.size += uint64(n)
	z.pending, z.hist = true, true
	if err != nil {
		z.err = err
	}
	return n, err
}

// WriteZeros writes n zero bytes. Runs of at least 64 KiB cost no
// compression work: about one byte of output per 1032 bytes of input, copied
// from a precomputed segment.
func (z *Writer) WriteZeros(n int64) error {
	if err := z.start(); err != nil {
		return err
	}
	if n <= 0 {
		return nil
	}
	if n < zeroRunMin {
		_, err := z.Write(zeroBuf[:n])
		return err
	}
	if err := z.endDataSegment(); err != nil {
		return err
	}
	seg := kSegment()
	for left := n; left >= K; left -= K {
		if _, err := z.w.Write(seg); err != nil {
			z.err = err
			return err
		}
	}
	if r := n % K; r > 0 {
		z.scratch = appendZeroSegment(z.scratch[:0], r)
		if _, err := z.w.Write(z.scratch); err != nil {
			z.err = err
			return err
		}
	}
	z.crc = checksum.ExtendZeros(z.crc, n)
	z.size += uint64(n)
	return nil
}

// endDataSegment ends the compressor's segment before a segment made
// elsewhere: a sync flush ends it on a byte boundary with non-final blocks,
// and a reset forgets the history the decoder's window will no longer hold.
func (z *Writer) endDataSegment() error {
	if z.pending {
		if err := z.fw.Flush(); err != nil {
			z.err = err
			return err
		}
		z.pending = false
	}
	if z.hist {
		z.fw.Reset(z.w)
		z.hist = false
	}
	return nil
}

// Close writes the final block and the gzip trailer. It does not close the
// underlying writer. Further calls return nil.
func (z *Writer) Close() error {
	if z.closed {
		return z.err
	}
	if err := z.start(); err != nil {
		return err
	}
	z.closed = true
	if err := z.fw.Close(); err != nil {
		z.err = err
		return err
	}
	var t [8]byte
	binary.LittleEndian.PutUint32(t[:4], z.crc)
	binary.LittleEndian.PutUint32(t[4:], uint32(z.size))
	if _, err := z.w.Write(t[:]); err != nil {
		z.err = err
		return err
	}
	return nil
}

// CRC32 returns the CRC32 (IEEE) of everything written so far; Size its
// length in bytes.
func (z *Writer) CRC32() uint32 { return z.crc }
func (z *Writer) Size() uint64  { return z.size }
