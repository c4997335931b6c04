//go:build js && wasm

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/gzipx"
	"aerodisk/internal/idb"
	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
	"aerodisk/internal/opfs"
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
			jsutil.Call("post", reply)
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
	idV, err := jsutil.Call("deflateStart", jsutil.Addr(p), len(p))
	if err != nil {
		return func() ([]byte, uint32, error) { return nil, 0, err }
	}
	return func() ([]byte, uint32, error) {
		v, err := jsutil.CallAwait("deflateWait", idV)
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

// handleFile is a backend file with a sync access handle (OPFS) that JS
// can write stream chunks into directly.
type handleFile interface {
	Handle() safejs.Value
	MapErr(op string, err error) error
}

// chunkFile is a backend file that takes whole chunks held in JS (IndexedDB).
type chunkFile interface {
	PutChunk(idx int64, data safejs.Value, n int, allZero bool) (sent bool, err error)
	Submit() error
}

var (
	_ handleFile = (*opfs.File)(nil)
	_ chunkFile  = (*idb.File)(nil)
)

// CopyTo implements manager.StreamCopier: the file's stream goes straight
// into the OPFS file (no copy through Go memory) and to the checksum worker,
// so the CRC runs in parallel with the copy.
func (f *fileInput) CopyTo(ctx context.Context, dst manager.File, progress func(done int64)) (uint32, error) {
	if cf, ok := dst.(chunkFile); ok {
		return f.copyToChunks(ctx, cf, progress)
	}
	of, ok := dst.(handleFile)
	if !ok {
		return 0, manager.ErrNoFastCopy
	}
	jobV, err := jsutil.Call("crcBegin")
	if err != nil {
		return 0, err
	}
	job, _ := jobV.Int()
	s, err := jsutil.Call("openStream", f.file)
	if err != nil {
		jsutil.Call("crcCancel", job)
		return 0, err
	}
	defer jsutil.Call("closeStream", s)
	const step = 16 << 20 // bytes per call: one awaited promise each
	for off := int64(0); off < f.size; {
		if err := ctx.Err(); err != nil {
			jsutil.Call("crcCancel", job)
			return 0, err
		}
		v, err := jsutil.CallAwait("streamCopy", s, of.Handle(), off, min(step, f.size-off), job)
		if err != nil {
			jsutil.Call("crcCancel", job)
			return 0, of.MapErr("write", err)
		}
		n, _ := v.Float()
		if n == 0 {
			jsutil.Call("crcCancel", job)
			return 0, fmt.Errorf("%s ended after %d of %d bytes", f.name, off, f.size)
		}
		off += int64(n)
		progress(off)
	}
	return crcEnd(job)
}

// maxHeldChunks bounds the chunks copyToChunks holds before posting them for
// the CRC: the disk worker reads into 16 buffers it gets back from the
// checksum worker (CRC_BUFS in web/disk_worker.js), so holding at most half
// of them keeps its reading going.
const maxHeldChunks = 8

// copyToChunks is CopyTo for an IndexedDB disk: the stream is assembled into
// chunk-sized Uint8Arrays in JS (one copy, none through Go memory), the
// file puts them, and then they are transferred to the checksum worker, so
// the CRC runs off this worker's thread.
func (f *fileInput) copyToChunks(ctx context.Context, dst chunkFile, progress func(done int64)) (uint32, error) {
	jobV, err := jsutil.Call("crcBegin")
	if err != nil {
		return 0, err
	}
	job, _ := jobV.Int()
	fail := func(err error) (uint32, error) {
		jsutil.Call("crcCancel", job)
		return 0, err
	}
	s, err := jsutil.Call("openStream", f.file)
	if err != nil {
		return fail(err)
	}
	defer jsutil.Call("closeStream", s)
	var put []safejs.Value // chunks put (or all-zero), not yet posted for the CRC
	post := func() error {
		if len(put) == 0 {
			return nil
		}
		arr, err := safejs.Global().Get("Array")
		if err == nil {
			arr, err = arr.New()
		}
		for i := 0; err == nil && i < len(put); i++ {
			err = arr.SetIndex(i, put[i])
		}
		if err != nil {
			return err
		}
		put = put[:0]
		_, err = jsutil.CallAwait("crcPost", job, arr)
		return err
	}
	for off := int64(0); off < f.size; {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		v, err := jsutil.CallAwait("streamChunk", s, min(idb.ChunkSize, f.size-off), job)
		if err != nil {
			return fail(err)
		}
		if v.IsNull() || v.IsUndefined() {
			return fail(fmt.Errorf("%s ended after %d of %d bytes", f.name, off, f.size))
		}
		chunk, err := v.Get("chunk")
		if err != nil {
			return fail(err)
		}
		n, err := jsutil.Int(v, "n")
		if err != nil {
			return fail(err)
		}
		zero, _ := jsutil.Bool(v, "zero")
		sent, err := dst.PutChunk(off/idb.ChunkSize, chunk, int(n), zero)
		if err != nil {
			return fail(err)
		}
		put = append(put, chunk)
		if !sent && len(put) >= maxHeldChunks {
			// All-zero chunks queue no put, so a sparse stretch would hold
			// every buffer the disk worker lends (and stall it): put what is
			// queued now.
			if err := dst.Submit(); err != nil {
				return fail(err)
			}
			sent = true
		}
		if sent {
			if err := post(); err != nil {
				return fail(err)
			}
		}
		off += n
		progress(off)
	}
	if err := dst.Submit(); err != nil {
		return fail(err)
	}
	if err := post(); err != nil {
		return fail(err)
	}
	return crcEnd(job)
}

// crcEnd waits for checksum job's CRC32 from the helper worker.
func crcEnd(job int) (uint32, error) {
	v, err := jsutil.CallAwait("crcEnd", job)
	if err != nil {
		return 0, err
	}
	crc, err := v.Float()
	if err != nil {
		return 0, errors.New("the checksum worker sent no checksum")
	}
	return uint32(crc), nil
}
