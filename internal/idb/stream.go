//go:build js && wasm

package idb

import (
	"context"
	"fmt"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/jsutil"
)

// maxHeldChunks bounds the chunks TakeStream holds before it sends them to
// the checksum job: the import lends the worker's JS a fixed number of
// buffers (wasm/input.go: crcBuffers, 16), which come back only from the
// checksum worker, so holding at most half of them keeps the reading going.
const maxHeldChunks = 8

// TakeStream copies size bytes of s into the disk's chunks
// (jsutil.StreamSink): the worker's JS reads the stream into whole
// ChunkSize buffers (one copy, none through Go memory) and says which are
// all zeros; each is queued as a chunk (an all-zero one is not stored),
// and once its transaction has taken it — a put clones the value — it goes
// to the checksum job, which gives the buffer back for the next chunk.
func (f *File) TakeStream(ctx context.Context, s jsutil.Stream, size int64, job jsutil.CRCJob, progress func(done int64)) error {
	var held []safejs.Value // chunks queued (or all zero), not yet sent for the CRC
	send := func() error {
		if len(held) == 0 {
			return nil
		}
		err := jsutil.CRCPost(job, held)
		held = held[:0]
		return err
	}
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, ok, err := jsutil.StreamChunk(s, int(min(ChunkSize, size-off)), job)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("the file ended after %d of %d bytes", off, size)
		}
		sent, err := f.PutChunk(off/ChunkSize, c.Data, c.N, c.Zero)
		if err != nil {
			return err
		}
		held = append(held, c.Data)
		if !sent && len(held) >= maxHeldChunks {
			// All-zero chunks queue no put, so a sparse stretch would hold
			// every lent buffer (and stall the reading): put what is
			// queued now.
			if err := f.Submit(); err != nil {
				return err
			}
			sent = true
		}
		if sent {
			if err := send(); err != nil {
				return err
			}
		}
		off += int64(c.N)
		progress(off)
	}
	if err := f.Submit(); err != nil {
		return err
	}
	return send()
}
