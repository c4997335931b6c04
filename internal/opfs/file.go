//go:build js && wasm

// Package opfs binds the browser's Origin Private File System to Go: files
// as storage.Storage over FileSystemSyncAccessHandle (reads and writes go
// straight between wasm memory and the handle, no copies), the aero/disks
// directory, and a manager.Backend over them. Only a dedicated worker has
// sync access handles. There is no disk logic here.
package opfs

import (
	"fmt"
	"io"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
)

// File is an open sync access handle.
type File struct {
	name     string
	h        jsutil.Handle
	writable bool
	closed   bool
}

// ioChunk bounds one read or write call; large requests are split so one
// call never needs a huge view.
const ioChunk = 16 << 20

func (f *File) ReadAt(p []byte, off int64) (int, error) {
	n, short, err := f.transfer("read", p, off)
	if err == nil && short {
		err = io.EOF
	}
	return n, err
}

func (f *File) WriteAt(p []byte, off int64) (int, error) {
	n, short, err := f.transfer("write", p, off)
	if err == nil && short {
		// Chromium reports a full disk or quota as a short write.
		err = diskerr.New("", manager.ErrQuota, "%s: wrote %d of %d bytes", f.name, n, len(p))
	}
	return n, err
}

// transfer runs the handle's read or write over p from off, in calls of at
// most ioChunk bytes, each on a view of p made in JS; short reports that a
// call moved fewer bytes than asked (end of file, or no space).
func (f *File) transfer(op string, p []byte, off int64) (done int, short bool, err error) {
	jsutil.MaybeYield()
	for done < len(p) {
		q := p[done:min(len(p), done+ioChunk)]
		io := jsutil.HandleRead
		if op == "write" {
			io = jsutil.HandleWrite
		}
		n, err := io(f.h, q, off+int64(done))
		if err != nil {
			return done, false, f.err(op, err)
		}
		done += n
		if n < len(q) {
			return done, true, nil
		}
	}
	return done, false, nil
}

func (f *File) Truncate(size int64) error {
	return f.err("truncate", jsutil.HandleTruncate(f.h, size))
}

func (f *File) Size() (int64, error) {
	n, err := jsutil.HandleSize(f.h)
	return n, f.err("getSize", err)
}

func (f *File) Flush() error {
	return f.err("flush", jsutil.HandleFlush(f.h))
}

func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	return f.err("close", jsutil.HandleClose(f.h))
}

// err maps DOMExceptions to the manager's errors.
func (f *File) err(op string, err error) error {
	if err == nil {
		return nil
	}
	if jsutil.IsDOM(err, "QuotaExceededError") {
		return diskerr.New("", manager.ErrQuota, "%s %s: %v", op, f.name, err)
	}
	return fmt.Errorf("%s %s: %w", op, f.name, err)
}
