//go:build js && wasm

package main

import (
	"io"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/jsutil"
)

// fileInput is a browser File: random access through FileReaderSync (cheap,
// synchronous in a worker) and a sequential stream for whole-file copies.
type fileInput struct {
	file safejs.Value
	size int64
	name string
}

func newFileInput(file safejs.Value) (*fileInput, error) {
	size, err := jsutil.Int(file, "size")
	if err != nil {
		return nil, err
	}
	name, _ := jsutil.Str(file, "name")
	return &fileInput{file: file, size: size, name: name}, nil
}

func (f *fileInput) Size() int64  { return f.size }
func (f *fileInput) Name() string { return f.name }

func (f *fileInput) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	jsutil.MaybeYield() // FileReaderSync blocks: let an abort through
	want := min(int64(len(p)), f.size-off)
	v, err := jsutil.Call("readFileAt", f.file, off, want, jsutil.Addr(p))
	if err != nil {
		return 0, err
	}
	n, err := v.Int()
	if err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *fileInput) Stream() (io.ReadCloser, error) {
	s, err := jsutil.Call("openStream", f.file)
	if err != nil {
		return nil, err
	}
	return &streamReader{s: s}, nil
}

// streamReader reads file.stream(), filling each Read as far as it can so
// one awaited promise moves megabytes.
type streamReader struct {
	s    safejs.Value
	done bool
}

func (r *streamReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	v, err := jsutil.CallAwait("streamRead", r.s, jsutil.Addr(p), len(p))
	if err != nil {
		return 0, err
	}
	n, err := v.Int()
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
	_, err := jsutil.Call("closeStream", r.s)
	return err
}
