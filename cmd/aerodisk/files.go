package main

import (
	"fmt"
	"os"
	"path/filepath"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/formats"
	"aerodisk/internal/storage"
)

// openImage opens path read-only; backing files named by the image are
// resolved relative to the directory of the image that names them, as
// qemu-img does.
func openImage(path string, opts formats.Options) (formats.Image, error) {
	src, err := openSource(path)
	if err != nil {
		return nil, err
	}
	opts.Resolve = resolveBacking
	img, err := formats.Open(src, opts)
	if err != nil {
		src.Close()
		return nil, err
	}
	return &closingImage{Image: img, close: src.Close}, nil
}

func openSource(path string) (formats.Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return formats.Source{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return formats.Source{}, err
	}
	if fi.IsDir() {
		f.Close()
		return formats.Source{}, fmt.Errorf("%s is a directory", path)
	}
	name := path
	if abs, err := filepath.Abs(path); err == nil {
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			name = real
		} else {
			name = abs
		}
	}
	return formats.Source{Name: name, R: f, Size: fi.Size(), Close: f.Close}, nil
}

func resolveBacking(parent, backing string) (formats.Source, error) {
	p := backing
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(parent), backing)
	}
	src, err := openSource(p)
	if err != nil {
		return src, diskerr.New("", diskerr.ErrBackingNotFound, "%q (backing file of %s): %v", backing, parent, err)
	}
	return src, nil
}

// closingImage closes the top file along with the image.
type closingImage struct {
	formats.Image
	close func() error
}

func (c *closingImage) Close() error {
	err := c.Image.Close()
	if e := c.close(); err == nil {
		err = e
	}
	return err
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

func (o *atomicOutput) Storage() storage.Storage { return storage.File{File: o.f} }

func (o *atomicOutput) Commit() error {
	if err := o.f.Sync(); err != nil {
		o.Discard()
		return err
	}
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
