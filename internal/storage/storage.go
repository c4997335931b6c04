// Package storage defines the small random-access byte store that writable
// disk formats sit on. Files implement it natively, tests use Mem, and the
// browser plugs in OPFS sync access handles or IndexedDB chunks.
package storage

import (
	"io"
	"os"
	"sync"
)

// Storage is a resizable random-access byte store.
type Storage interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Size() (int64, error)
	Flush() error
}

// File adapts an *os.File.
type File struct{ *os.File }

func (f File) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (f File) Flush() error { return f.Sync() }

// Mem is an in-memory Storage for tests and small images.
type Mem struct {
	mu  sync.Mutex
	buf []byte
}

// NewMem returns a Mem holding a copy of b.
func NewMem(b []byte) *Mem { return &Mem{buf: append([]byte(nil), b...)} }

// Bytes returns the current contents (not a copy).
func (m *Mem) Bytes() []byte { m.mu.Lock(); defer m.mu.Unlock(); return m.buf }

func (m *Mem) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 {
		return 0, os.ErrInvalid
	}
	if off >= int64(len(m.buf)) {
		return 0, io.EOF
	}
	n := copy(p, m.buf[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *Mem) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 {
		return 0, os.ErrInvalid
	}
	if end := off + int64(len(p)); end > int64(len(m.buf)) {
		m.grow(end)
	}
	return copy(m.buf[off:], p), nil
}

func (m *Mem) grow(n int64) {
	if n <= int64(cap(m.buf)) {
		m.buf = m.buf[:n]
		return
	}
	nb := make([]byte, n, max(n, 2*int64(cap(m.buf))))
	copy(nb, m.buf)
	m.buf = nb
}

func (m *Mem) Truncate(size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size < 0 {
		return os.ErrInvalid
	}
	if size <= int64(len(m.buf)) {
		clear(m.buf[size:])
		m.buf = m.buf[:size]
		return nil
	}
	m.grow(size)
	return nil
}

func (m *Mem) Size() (int64, error) { m.mu.Lock(); defer m.mu.Unlock(); return int64(len(m.buf)), nil }
func (m *Mem) Flush() error         { return nil }
