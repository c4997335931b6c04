// Package convert copies an image's logical content into a destination and
// computes its checksum in the same pass.
//
// Only allocated, non-zero data is read and written: Zero and Unallocated
// extents are folded into the CRC arithmetically and leave holes in the
// destination, and Data chunks that turn out to be all zeros are skipped the
// same way. A reader goroutine fills the next chunk while the current one is
// checksummed and written, so I/O overlaps the CRC work.
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
	buffers   = 3
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

// piece is one unit handed from the reader to the writer.
type piece struct {
	off, n int64
	data   []byte // nil for a zero run
	err    error
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

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, buffers)
	for range buffers {
		free <- make([]byte, chunk)
	}
	pieces := make(chan piece, buffers)
	go produce(ctx, src, chunk, free, pieces)
	// Wait for the reader to stop before returning: the caller may close src.
	defer func() {
		cancel()
		for range pieces {
		}
	}()

	var (
		d   checksum.Digest
		res = Result{Size: size}
	)
	report := NewReporter(opts, size)
	for p := range pieces {
		if p.err != nil {
			return res, p.err
		}
		if p.data == nil {
			d.Zeros(p.n)
		} else {
			w, err := consume(&d, dst, p.data, p.off)
			res.DataBytes += w
			free <- p.data[:cap(p.data)]
			if err != nil {
				return res, err
			}
		}
		report(p.off + p.n)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if d.Len() != size {
		return res, io.ErrUnexpectedEOF
	}
	res.Checksum = d.Sum32()
	return res, nil
}

// produce walks src's extents and sends zero runs and filled data chunks, in
// order, closing out when done or on the first error.
func produce(ctx context.Context, src formats.Image, chunk int, free chan []byte, out chan<- piece) {
	defer close(out)
	size := src.Size()
	send := func(p piece) bool {
		select {
		case out <- p:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for off := int64(0); off < size; {
		if ctx.Err() != nil {
			send(piece{err: ctx.Err()})
			return
		}
		e, err := src.Extent(off, size-off)
		if err != nil {
			send(piece{err: err})
			return
		}
		if e.Kind != formats.Data {
			if !send(piece{off: off, n: e.Len}) {
				return
			}
			off += e.Len
			continue
		}
		for end := off + e.Len; off < end; {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				send(piece{err: ctx.Err()})
				return
			}
			n := min(int64(chunk), end-off)
			buf = buf[:n]
			if got, err := src.ReadAt(buf, off); int64(got) != n {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				send(piece{err: err})
				return
			}
			if !send(piece{off: off, n: n, data: buf}) {
				return
			}
			off += n
		}
	}
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
