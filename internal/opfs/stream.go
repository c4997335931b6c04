//go:build js && wasm

package opfs

import (
	"context"
	"fmt"

	"aerodisk/internal/jsutil"
)

// streamStep is how many bytes one StreamCopy call moves (one awaited
// promise each): large enough to amortise the call, small enough that an
// abort and progress come through often.
const streamStep = 16 << 20

// TakeStream copies size bytes of s into the file from its start, straight
// from the stream's buffers into the sync access handle (no copy through Go
// memory), each buffer then going to the checksum job (jsutil.StreamSink).
func (f *File) TakeStream(ctx context.Context, s jsutil.Stream, size int64, job jsutil.CRCJob, progress func(done int64)) error {
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := jsutil.StreamCopy(s, f.h, off, min(streamStep, size-off), job)
		if err != nil {
			return f.err("write", err)
		}
		if n == 0 {
			return fmt.Errorf("the file ended after %d of %d bytes", off, size)
		}
		off += n
		progress(off)
	}
	return nil
}
