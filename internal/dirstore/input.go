//go:build !js

package dirstore

import (
	"io"
	"os"
	"path/filepath"

	"aerodisk/internal/manager"
)

// OpenInput opens a host file as a manager.Input (what a browser File is in
// the worker).
func OpenInput(path string) (*Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Input{f: f, size: fi.Size(), name: filepath.Base(path)}, nil
}

// Input is a host file offered for import.
type Input struct {
	f    *os.File
	size int64
	name string
}

var _ manager.Input = (*Input)(nil)

func (in *Input) ReadAt(p []byte, off int64) (int, error) { return in.f.ReadAt(p, off) }
func (in *Input) Size() int64                             { return in.size }
func (in *Input) Name() string                            { return in.name }
func (in *Input) Close() error                            { return in.f.Close() }

// Stream reads the file from the start, independently of other readers.
func (in *Input) Stream() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(in.f, 0, in.size)), nil
}
