package main

import (
	"os"
	"path/filepath"

	"aerodisk/internal/formats"
	"aerodisk/internal/storage"
)

// openImage opens path read-only; backing files are found relative to the
// image that names them, as qemu-img does.
func openImage(path string, opts formats.Options) (formats.Image, error) {
	return formats.OpenFile(path, opts)
}

// atomicOutput is an output file written under a temporary name in OUT's
// directory and renamed over OUT only by Commit; Discard removes it.
type atomicOutput struct {
	f    *os.File
	path string
	done bool
}

func createOutput(path string) (*atomicOutput, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &atomicOutput{f: f, path: path}, nil
}

// Storage is the output as a storage.Storage. Like qemu-img and cp, the CLI
// leaves write-back to the kernel: Flush does not fsync. The rename in Commit
// still guarantees that OUT is never a partial conversion.
func (o *atomicOutput) Storage() storage.Storage { return writeBackFile{storage.File{File: o.f}} }

type writeBackFile struct{ storage.File }

func (writeBackFile) Flush() error { return nil }

func (o *atomicOutput) Commit() error {
	if err := o.f.Close(); err != nil {
		o.Discard()
		return err
	}
	if err := os.Chmod(o.f.Name(), 0o644); err != nil {
		o.Discard()
		return err
	}
	if err := os.Rename(o.f.Name(), o.path); err != nil {
		o.Discard()
		return err
	}
	o.done = true
	return nil
}

// Discard removes the temporary file unless Commit succeeded; safe to defer.
func (o *atomicOutput) Discard() {
	if o.done {
		return
	}
	o.done = true
	o.f.Close()
	os.Remove(o.f.Name())
}
