//go:build js && wasm

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/checksum"
	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
	"aerodisk/internal/opfs"
)

// The checksum worker: a second instance of this module, started by the
// disk worker, that checksums the chunks of a raw import on another core
// while the disk worker streams them into the file.
//
//	disk → crc  {job, begin} · {job, chunk: Uint8Array (transferred)} · {job, end} · {job, cancel}
//	crc → disk  {job, ack: bytes} after each chunk · {job, crc} after end
func serveChecksums() {
	crcs := map[int]uint32{}
	var buf []byte
	post := func(m map[string]any) {
		if v, err := safejs.ValueOf(m); err == nil {
			jsutil.Call("post", v)
		}
	}
	handler, err := safejs.FuncOf(func(this safejs.Value, args []safejs.Value) any {
		if len(args) == 0 {
			return nil
		}
		msg := args[0]
		id, _ := jsutil.Int(msg, "job")
		job := int(id)
		if chunk, err := msg.Get("chunk"); err == nil && !chunk.IsUndefined() {
			n, _ := chunk.Length()
			if cap(buf) < n {
				buf = make([]byte, n)
			}
			got, err := safejs.CopyBytesToGo(buf[:n], chunk)
			if err != nil {
				return nil
			}
			crcs[job] = checksum.Update(crcs[job], buf[:got])
			post(map[string]any{"job": job, "ack": got})
			return nil
		}
		switch {
		case has(msg, "begin"):
			crcs[job] = 0
		case has(msg, "end"):
			post(map[string]any{"job": job, "crc": float64(crcs[job])})
			delete(crcs, job)
		case has(msg, "cancel"):
			delete(crcs, job)
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

func has(v safejs.Value, prop string) bool {
	b, _ := jsutil.Bool(v, prop)
	return b
}

// CopyTo implements manager.StreamCopier: the file's stream goes straight
// into the OPFS file (no copy through Go memory) and to the checksum worker,
// so the CRC runs in parallel with the copy.
func (f *fileInput) CopyTo(ctx context.Context, dst manager.File, progress func(done int64)) (uint32, error) {
	of, ok := dst.(*opfs.File)
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
