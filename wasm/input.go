//go:build js && wasm

package main

import (
	"context"
	"io"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
)

// fileInput is a browser File: random access through FileReaderSync (cheap,
// synchronous in a worker) and a sequential stream for whole-file copies.
type fileInput struct {
	file jsutil.Blob
	size int64
	name string
}

func newFileInput(file safejs.Value) (*fileInput, error) {
	size, err := jsutil.Int(file, "size")
	if err != nil {
		return nil, err
	}
	name, _ := jsutil.Str(file, "name")
	return &fileInput{file: jsutil.NewBlob(file), size: size, name: name}, nil
}

func (f *fileInput) Size() int64  { return f.size }
func (f *fileInput) Name() string { return f.name }

func (f *fileInput) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	jsutil.MaybeYield() // FileReaderSync blocks: let an abort through
	want := min(int64(len(p)), f.size-off)
	n, err := jsutil.BlobReadAt(f.file, p[:want], off)
	if err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *fileInput) Stream() (io.ReadCloser, error) {
	s, err := jsutil.OpenStream(f.file)
	if err != nil {
		return nil, err
	}
	return &streamReader{s: s}, nil
}

// The checksum job's buffers: crcBuffers of crcBufferBytes, lent to the
// worker's JS for the whole import and given back by the checksum worker,
// which bounds the bytes in flight (64 MiB) and allocates them once. A
// chunk backend (IndexedDB) reads whole chunks into them, so they are its
// chunk size.
const (
	crcBufferBytes = 4 << 20
	crcBuffers     = 16
)

// CopyTo implements manager.StreamCopier: a backend file that can take a
// stream straight from JS (jsutil.StreamSink, both backends' files) gets the
// File's stream, and the checksum worker computes the CRC32 of every byte
// on another thread as it goes.
func (f *fileInput) CopyTo(ctx context.Context, dst manager.File, progress func(done int64)) (uint32, error) {
	sink, ok := dst.(jsutil.StreamSink)
	if !ok {
		return 0, manager.ErrNoFastCopy
	}
	job, err := jsutil.CRCBegin(crcBufferBytes, crcBuffers)
	if err != nil {
		return 0, err
	}
	s, err := jsutil.OpenStream(f.file)
	if err != nil {
		jsutil.CRCCancel(job)
		return 0, err
	}
	defer jsutil.CloseStream(s)
	if err := sink.TakeStream(ctx, s, f.size, job, progress); err != nil {
		jsutil.CRCCancel(job)
		return 0, err
	}
	return jsutil.CRCEnd(job)
}

// streamReader reads file.stream(), filling each Read as far as it can so
// one awaited promise moves megabytes.
type streamReader struct {
	s    jsutil.Stream
	done bool
}

func (r *streamReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	n, err := jsutil.StreamRead(r.s, p)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		r.done = true
		return 0, io.EOF
	}
	return n, nil
}

func (r *streamReader) Close() error {
	jsutil.CloseStream(r.s)
	return nil
}
