// Package convert copies an image's logical content into a destination and
// computes its checksum in the same pass.
//
// Only allocated, non-zero data is read and written: Zero and Unallocated
// extents are folded into the CRC arithmetically and leave holes in the
// destination, and Data chunks that turn out to be all zeros are skipped the
// same way. A reader goroutine fills the next chunk while the current one is
// checksummed and written, so I/O overlaps the CRC work (pipeline.go: the
// same pipeline copies streams, CopyStream).
package convert

import (
	"context"
	"io"
	"time"

	"aerodisk/internal/checksum"
	"aerodisk/internal/formats"
	"aerodisk/internal/zero"
)

const (
	// DefaultChunkSize is the read size for Data extents: large enough to
	// amortise per-call costs (JS promises in the browser), small enough that
	// memory stays flat (3 chunks in flight).
	DefaultChunkSize = 4 << 20
	// zeroGrain is the granularity at which data chunks are tested for zeros
	// and holes are left in the destination.
	zeroGrain = 64 << 10
)

// Progress reports how far a conversion is.
type Progress struct {
	Done, Total int64
}

// Options tunes Convert. The zero value is usable.
type Options struct {
	// Progress, if set, is called at most every ProgressEvery and once at the end.
	Progress      func(Progress)
	ProgressEvery time.Duration // default 100 ms
	ChunkSize     int           // default DefaultChunkSize
}

// Result describes a finished conversion.
type Result struct {
	Size      int64  // logical bytes covered (== src.Size())
	Checksum  uint32 // CRC32 (IEEE) of the logical content
	DataBytes int64  // bytes written to the destination
}

// NewReporter returns a function to call with the bytes done so far: it
// calls opts.Progress at once with 0, then at most every ProgressEvery, and
// always when done reaches total.
func NewReporter(opts Options, total int64) func(done int64) {
	if opts.Progress == nil {
		return func(int64) {}
	}
	every := opts.ProgressEvery
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	last := time.Now()
	opts.Progress(Progress{Done: 0, Total: total})
	return func(done int64) {
		if now := time.Now(); done == total || now.Sub(last) >= every {
			last = now
			opts.Progress(Progress{Done: done, Total: total})
		}
	}
}

// Convert copies src's logical content into dst (holes where the content is
// zero; the caller sizes or truncates dst to src.Size() afterwards) and returns
// the content's CRC32. dst may be nil to only checksum. Cancelling ctx stops
// the copy with ctx.Err().
func Convert(ctx context.Context, src formats.Image, dst io.WriterAt, opts Options) (Result, error) {
	chunk := opts.ChunkSize
	if chunk <= 0 {
		chunk = DefaultChunkSize
	}
	chunk = max(zeroGrain, chunk/zeroGrain*zeroGrain)
	size := src.Size()
	var (
		d   checksum.Digest
		res = Result{Size: size}
	)
	report := NewReporter(opts, size)
	err := runPipeline(ctx, chunk, func(p *pipeline) error {
		return produceExtents(p, src)
	}, func(pc piece) error {
		if pc.data == nil {
			d.Zeros(pc.n)
		} else {
			w, err := consume(&d, dst, pc.data, pc.off)
			res.DataBytes += w
			if err != nil {
				return err
			}
		}
		report(pc.off + pc.n)
		return nil
	})
	if err != nil {
		return res, err
	}
	if d.Len() != size {
		return res, io.ErrUnexpectedEOF
	}
	res.Checksum = d.Sum32()
	return res, nil
}

// produceExtents walks src's extents and sends zero runs and filled data
// chunks, in order.
func produceExtents(p *pipeline, src formats.Image) error {
	for e, err := range formats.Extents(src, 0, src.Size()) {
		if cerr := p.ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			return err
		}
		if e.Kind != formats.Data {
			if !p.send(piece{off: e.Off, n: e.Len}) {
				return nil
			}
			continue
		}
		for off := e.Off; off < e.End(); {
			buf := p.buffer()
			if buf == nil {
				return nil
			}
			buf = buf[:min(int64(len(buf)), e.End()-off)]
			if _, err := formats.ReadFull(src, buf, off); err != nil {
				return err
			}
			if !p.send(piece{off: off, n: int64(len(buf)), data: buf}) {
				return nil
			}
			off += int64(len(buf))
		}
	}
	return nil
}

// consume checksums a data chunk and writes its non-zero runs to dst.
func consume(d *checksum.Digest, dst io.WriterAt, b []byte, off int64) (written int64, err error) {
	runStart := -1 // start of the current non-zero run in b
	flush := func(end int) error {
		if runStart < 0 {
			return nil
		}
		run := b[runStart:end]
		d.Write(run)
		if dst != nil {
			if _, err := dst.WriteAt(run, off+int64(runStart)); err != nil {
				return err
			}
			written += int64(len(run))
		}
		runStart = -1
		return nil
	}
	for i := 0; i < len(b); i += zeroGrain {
		g := b[i:min(i+zeroGrain, len(b))]
		if zero.Is(g) {
			if err := flush(i); err != nil {
				return written, err
			}
			d.Zeros(int64(len(g)))
		} else if runStart < 0 {
			runStart = i
		}
	}
	return written, flush(len(b))
}
