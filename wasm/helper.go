//go:build js && wasm

package main

import (
	"errors"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/gzipx"
	"aerodisk/internal/jsutil"
)

// The helper worker: a second instance of this module, started by the disk
// worker, working on another core. It compresses chunks of a gzip export as
// independent deflate segments here, and checksums the chunks of a raw
// import while the disk worker streams them into the file — that part in
// web/disk_worker.js with a hand-written wasm CRC32 kernel (crcMessage, see
// internal/crc32wasm), since Go's wasm CRC32 is the slower half of the helper's
// work; those messages never reach Go.
//
//	disk → helper  {deflate: id, chunk: Uint8Array (transferred)}
//	helper → disk  {deflated: id, seg: Uint8Array, crc} or {deflated: id, error}
func serveHelper() {
	var buf []byte
	var comp *gzipx.SegmentCompressor
	handler, err := safejs.FuncOf(func(this safejs.Value, args []safejs.Value) any {
		if len(args) == 0 {
			return nil
		}
		msg := args[0]
		if id, _ := jsutil.Int(msg, "deflate"); id != 0 {
			// Always answer: the disk worker waits for this reply.
			seg, crc, err := deflateChunk(&comp, &buf, msg)
			var reply safejs.Value
			if err == nil {
				if reply, err = safejs.ValueOf(map[string]any{"deflated": id, "crc": float64(crc)}); err == nil {
					err = reply.Set("seg", seg) // ValueOf cannot take a Value inside a map
				}
			}
			if err != nil {
				reply, _ = safejs.ValueOf(map[string]any{"deflated": id, "error": err.Error()})
			}
			jsutil.Post(reply)
			return nil
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	if err := safejs.Global().Set("aerodiskHandle", handler); err != nil {
		panic(err)
	}
}

// deflateChunk compresses the message's chunk into a new Uint8Array.
func deflateChunk(comp **gzipx.SegmentCompressor, buf *[]byte, msg safejs.Value) (safejs.Value, uint32, error) {
	if *comp == nil {
		c, err := gzipx.NewSegmentCompressor(gzipx.DefaultLevel)
		if err != nil {
			return safejs.Undefined(), 0, err
		}
		*comp = c
	}
	chunk, err := msg.Get("chunk")
	if err != nil {
		return safejs.Undefined(), 0, err
	}
	n, err := chunk.Length()
	if err != nil {
		return safejs.Undefined(), 0, err
	}
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	got, err := safejs.CopyBytesToGo((*buf)[:n], chunk)
	if err != nil {
		return safejs.Undefined(), 0, err
	}
	seg, crc, err := (*comp).Compress((*buf)[:got])
	if err != nil {
		return safejs.Undefined(), 0, err
	}
	u8, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return safejs.Undefined(), 0, err
	}
	out, err := u8.New(len(seg))
	if err != nil {
		return safejs.Undefined(), 0, err
	}
	if _, err := safejs.CopyBytesToJS(out, seg); err != nil {
		return safejs.Undefined(), 0, err
	}
	return out, crc, nil
}

// remoteCompressor is a gzipx.Compressor that runs in the helper worker.
// Several share the worker: it queues their chunks, so while this worker
// compresses its own share the helper always has the next chunk waiting.
type remoteCompressor struct{ out []byte }

func (r *remoteCompressor) Start(p []byte) func() ([]byte, uint32, error) {
	// The chunk is copied and posted now, synchronously.
	idV, err := jsutil.DeflateStart(p)
	if err != nil {
		return func() ([]byte, uint32, error) { return nil, 0, err }
	}
	return func() ([]byte, uint32, error) {
		v, err := jsutil.DeflateWait(idV)
		if err != nil {
			return nil, 0, err
		}
		if msg, _ := jsutil.Str(v, "error"); msg != "" {
			return nil, 0, errors.New("helper worker: " + msg)
		}
		seg, err := v.Get("seg")
		if err != nil {
			return nil, 0, err
		}
		n, err := seg.Length()
		if err != nil {
			return nil, 0, err
		}
		if cap(r.out) < n {
			r.out = make([]byte, n)
		}
		if _, err := safejs.CopyBytesToGo(r.out[:n], seg); err != nil {
			return nil, 0, err
		}
		crc, err := jsutil.Int(v, "crc")
		return r.out[:n], uint32(crc), err
	}
}
