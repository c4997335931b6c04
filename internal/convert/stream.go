package convert

import (
	"context"
	"errors"
	"io"

	"aerodisk/internal/checksum"
)

// CopyStream copies exactly size bytes from r to dst (at offsets 0..size),
// returning the CRC32 of the bytes. A reader goroutine fills the next buffer
// while the current one is checksummed and written, so the input (a browser
// file stream, whose reads complete off-thread) overlaps the CRC and write.
// Every byte is written: backends that are not sparse need the zeros too.
func CopyStream(ctx context.Context, r io.Reader, dst io.WriterAt, size int64, opts Options) (uint32, error) {
	chunk := opts.ChunkSize
	if chunk <= 0 {
		chunk = DefaultChunkSize
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, buffers)
	for range buffers {
		free <- make([]byte, chunk)
	}
	type filled struct {
		b   []byte
		err error
	}
	full := make(chan filled, buffers)
	go func() {
		defer close(full)
		for off := int64(0); off < size; {
			var b []byte
			select {
			case b = <-free:
			case <-ctx.Done():
				return
			}
			b = b[:min(int64(len(b)), size-off)]
			n, err := io.ReadFull(r, b)
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
					err = io.ErrUnexpectedEOF // the input ended before its declared size
				}
				full <- filled{err: err}
				return
			}
			off += int64(n)
			full <- filled{b: b}
		}
	}()
	defer func() {
		cancel()
		for range full {
		}
	}()

	rep := NewReporter(opts, size)
	var crc uint32
	var off int64
	for f := range full {
		if f.err != nil {
			return 0, f.err
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		crc = checksum.Update(crc, f.b)
		if _, err := dst.WriteAt(f.b, off); err != nil {
			return 0, err
		}
		off += int64(len(f.b))
		free <- f.b[:cap(f.b)]
		rep(off)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if off != size {
		return 0, io.ErrUnexpectedEOF
	}
	return crc, nil
}
