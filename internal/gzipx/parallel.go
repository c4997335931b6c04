package gzipx

import (
	"bytes"

	"aerodisk/internal/checksum"

	"github.com/klauspost/compress/flate"
)

// Parallel compression. A chunk compressed by a fresh compressor and ended
// with a sync flush is a segment like any other (see the package comment):
// its back-references stay inside it, it ends byte-aligned with non-final
// blocks. So chunks can be compressed independently — on other threads, or
// in another Web Worker — and their segments concatenated in order. Each
// chunk restarts with an empty window, which costs a little ratio at chunk
// boundaries (well under 1 % for 4 MiB chunks).

// Compressor compresses one chunk into an independent segment and returns
// the chunk's CRC32 with it. Start begins the work and returns a function
// that waits for the result; a Compressor that runs elsewhere (another Web
// Worker) sends the chunk in Start, so it is busy at once, whatever the
// goroutine running here does meanwhile. p must not change until the wait
// returns, and one Compressor has one chunk at a time.
type Compressor interface {
	Start(p []byte) (wait func() (seg []byte, crc uint32, err error))
}

// SegmentCompressor is a Compressor running here.
type SegmentCompressor struct {
	fw  *flate.Writer
	out bytes.Buffer
}

// NewSegmentCompressor returns a Compressor at the given klauspost level.
func NewSegmentCompressor(level int) (*SegmentCompressor, error) {
	if level == flate.DefaultCompression {
		level = DefaultLevel
	}
	c := &SegmentCompressor{}
	fw, err := flate.NewWriter(&c.out, level)
	if err != nil {
		return nil, err
	}
	c.fw = fw
	return c, nil
}

// Start compresses p when its result is waited for (here, in the waiting
// goroutine).
func (c *SegmentCompressor) Start(p []byte) func() ([]byte, uint32, error) {
	return func() ([]byte, uint32, error) { return c.Compress(p) }
}

// Compress returns p's segment; the slice is valid until the next call.
func (c *SegmentCompressor) Compress(p []byte) ([]byte, uint32, error) {
	c.out.Reset()
	c.fw.Reset(&c.out)
	if _, err := c.fw.Write(p); err != nil {
		return nil, 0, err
	}
	if err := c.fw.Flush(); err != nil {
		return nil, 0, err
	}
	return c.out.Bytes(), checksum.Update(0, p), nil
}

// WriteSegment appends a segment made by a Compressor for n bytes of data
// whose CRC32 is crc.
func (z *Writer) WriteSegment(seg []byte, n int64, crc uint32) error {
	if err := z.start(); err != nil {
		return err
	}
	if err := z.endDataSegment(); err != nil {
		return err
	}
	if _, err := z.w.Write(seg); err != nil {
		z.err = err
		return err
	}
	z.crc = checksum.Combine(z.crc, crc, n)
	z.size += uint64(n)
	return nil
}

// ParallelChunk is the data chunk ParallelWriter hands each compressor.
const ParallelChunk = 4 << 20

// ParallelWriter is a Writer whose data is compressed in ParallelChunk
// pieces by several Compressors at once, and written in order. Zero runs
// take the same fast path as Writer's. It is not safe for concurrent use;
// the Compressors run in goroutines of their own.
type ParallelWriter struct {
	z       *Writer
	free    chan Compressor // idle compressors
	bufs    chan []byte     // chunk buffers not in flight
	buf     []byte          // the chunk being filled
	pending []chan result   // compressions in flight, in output order
}

type result struct {
	seg []byte
	n   int64
	crc uint32
	err error
	buf []byte // the chunk buffer, to reuse
	c   Compressor
}

// NewParallelWriter writes one gzip member to w, compressing data with the
// given compressors (at least one).
func NewParallelWriter(z *Writer, comps []Compressor) *ParallelWriter {
	p := &ParallelWriter{z: z, free: make(chan Compressor, len(comps)), bufs: make(chan []byte, len(comps)+1)}
	for _, c := range comps {
		p.free <- c
	}
	for range len(comps) + 1 {
		p.bufs <- make([]byte, 0, ParallelChunk)
	}
	return p
}

// Write buffers data and hands full chunks to the compressors.
func (p *ParallelWriter) Write(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		if p.buf == nil {
			p.buf = <-p.bufs
		}
		k := copy(p.buf[len(p.buf):cap(p.buf)], b)
		p.buf = p.buf[:len(p.buf)+k]
		b, n = b[k:], n+k
		if len(p.buf) == cap(p.buf) {
			if err := p.dispatch(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// dispatch sends the current chunk to the next idle compressor, writing
// finished segments first so at most len(comps) chunks are in flight.
func (p *ParallelWriter) dispatch() error {
	chunk := p.buf
	p.buf = nil
	var c Compressor
	for c == nil {
		select {
		case c = <-p.free:
		default:
			if err := p.emitOne(); err != nil {
				return err
			}
		}
	}
	done := make(chan result, 1)
	p.pending = append(p.pending, done)
	wait := c.Start(chunk)
	go func() {
		seg, crc, err := wait()
		// The segment may alias the compressor's buffer: copy it out before
		// the compressor is reused.
		done <- result{seg: append([]byte(nil), seg...), n: int64(len(chunk)), crc: crc, err: err, buf: chunk[:0], c: c}
	}()
	return nil
}

// emitOne waits for the oldest compression and writes its segment.
func (p *ParallelWriter) emitOne() error {
	r := <-p.pending[0]
	p.pending = p.pending[1:]
	p.free <- r.c
	p.bufs <- r.buf
	if r.err != nil {
		return r.err
	}
	return p.z.WriteSegment(r.seg, r.n, r.crc)
}

// flush compresses the partial chunk and writes everything in flight.
func (p *ParallelWriter) flush() error {
	if len(p.buf) > 0 {
		if err := p.dispatch(); err != nil {
			return err
		}
	}
	for len(p.pending) > 0 {
		if err := p.emitOne(); err != nil {
			return err
		}
	}
	return nil
}

// WriteZeros writes n zero bytes (long runs without compression work).
func (p *ParallelWriter) WriteZeros(n int64) error {
	if n < zeroRunMin {
		_, err := p.Write(zeroBuf[:n])
		return err
	}
	if err := p.flush(); err != nil {
		return err
	}
	return p.z.WriteZeros(n)
}

// Close writes the remaining data and the gzip trailer.
func (p *ParallelWriter) Close() error {
	if err := p.flush(); err != nil {
		return err
	}
	return p.z.Close()
}
