package convert

import (
	"context"
	"errors"
	"io"

	"aerodisk/internal/checksum"
)

// CopyStream copies exactly size bytes from r to dst (at offsets 0..size),
// returning the CRC32 of the bytes. It runs Convert's pipeline: a reader
// goroutine fills the next buffer while the current one is checksummed and
// written, so the input (a browser file stream, whose reads complete
// off-thread) overlaps the CRC and write. Every byte is written: backends
// that are not sparse need the zeros too.
func CopyStream(ctx context.Context, r io.Reader, dst io.WriterAt, size int64, opts Options) (uint32, error) {
	chunk := opts.ChunkSize
	if chunk <= 0 {
		chunk = DefaultChunkSize
	}
	rep := NewReporter(opts, size)
	var crc uint32
	var done int64
	err := runPipeline(ctx, chunk, func(p *pipeline) error {
		return produceStream(p, r, size)
	}, func(pc piece) error {
		crc = checksum.Update(crc, pc.data)
		if _, err := dst.WriteAt(pc.data, pc.off); err != nil {
			return err
		}
		done = pc.off + pc.n
		rep(done)
		return nil
	})
	if err != nil {
		return 0, err
	}
	if done != size {
		return 0, io.ErrUnexpectedEOF
	}
	return crc, nil
}

// produceStream reads size bytes from r into buffers and sends them, in order.
func produceStream(p *pipeline, r io.Reader, size int64) error {
	for off := int64(0); off < size; {
		b := p.buffer()
		if b == nil {
			return nil
		}
		b = b[:min(int64(len(b)), size-off)]
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.ErrUnexpectedEOF // the input ended before its declared size
			}
			return err
		}
		if !p.send(piece{off: off, n: int64(len(b)), data: b}) {
			return nil
		}
		off += int64(len(b))
	}
	return nil
}
