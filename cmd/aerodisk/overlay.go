package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"aerodisk/internal/convert"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/formats"
	"aerodisk/internal/layer"
	"aerodisk/internal/overlay"
	"aerodisk/internal/sizefmt"
	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
)

// createOverlay makes OUT an AEROLAYR layer over base (docs/overlays.md):
// every block reads through to base until it is written. Like qemu-img
// create -b, base is stored as given and found relative to OUT's
// directory; its size is the overlay's (--size, if given, must agree).
func createOverlay(f *flags, base, out string) error {
	switch f.values["-O"] {
	case "", "aerospar", "aerolayr":
	default:
		return usageError(fmt.Sprintf("an overlay (-b) is an AEROLAYR layer; -O %s cannot have a base", f.values["-O"]))
	}
	bs, err := blockSizeOption(f)
	if err != nil {
		return err
	}
	// The base as the overlay will find it: through the same resolver.
	src, err := formats.FileResolver(out, base)
	if err != nil {
		return err
	}
	img, err := formats.Open(src, formats.Options{Resolve: formats.FileResolver})
	if err != nil {
		src.Close()
		return err
	}
	size := img.Size()
	img.Close()
	src.Close()
	if s, ok := f.values["--size"]; ok {
		n, err := sizefmt.Parse(s)
		if err != nil {
			return err
		}
		if n != size {
			return diskerr.New("", diskerr.ErrBadSize, "--size %s is not the base's %d bytes (an overlay has its base's size)", s, size)
		}
	}
	if size%512 != 0 {
		return diskerr.New("", diskerr.ErrBadSize, "the base's size %d is not a multiple of 512 bytes", size)
	}
	dst, err := createOutput(out)
	if err != nil {
		return err
	}
	defer dst.Discard()
	l, err := layer.Create(dst.Storage(), size, layer.Options{BlockSize: bs, ParentName: base, BaseSize: size})
	if err != nil {
		return err
	}
	if err := l.Close(); err != nil {
		return err
	}
	return dst.Commit()
}

// runCommit copies an overlay's blocks into its base (raw or AEROSPAR,
// written in place) and then empties the overlay, as qemu-img commit does.
// A commit stopped half-way leaves the overlay whole and the base holding
// some of its blocks: the chain reads the same, and running commit again
// finishes it.
func runCommit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, nil, []string{"-p"})
	if err != nil {
		return err
	}
	path, err := oneArg(f, "OVERLAY")
	if err != nil {
		return err
	}
	of, err := os.Open(path)
	if err != nil {
		return err
	}
	defer of.Close()
	fi, err := of.Stat()
	if err != nil {
		return err
	}
	top, err := layer.OpenReader(of, fi.Size())
	if err != nil {
		if errors.Is(err, diskerr.ErrCorrupt) && !isLayer(of, fi.Size()) {
			return diskerr.New("", diskerr.ErrUnsupported, "%s is not an AEROLAYR overlay (aerodisk create -b makes one)", path)
		}
		return err
	}
	h := top.Header()
	if h.ParentName == "" || h.Flags&layer.FlagDelta != 0 {
		return diskerr.New("aerolayr", diskerr.ErrUnsupported, "%s names no base to commit into", path)
	}
	basePath := h.ParentName
	if !filepath.IsAbs(basePath) {
		basePath = filepath.Join(filepath.Dir(path), basePath)
	}
	bf, err := os.OpenFile(basePath, os.O_RDWR, 0)
	if err != nil {
		return diskerr.New("", diskerr.ErrBackingNotFound, "the base %q of %s: %v", h.ParentName, path, err)
	}
	defer bf.Close()
	bst := storage.File{File: bf}
	bsize, _ := bst.Size()
	format, err := formats.Detect(bf, bsize)
	if err != nil {
		return err
	}
	var dst overlay.Target
	var below io.ReaderAt
	switch format {
	case formats.Raw:
		if bsize != top.Size() {
			return diskerr.New("", diskerr.ErrBadSize, "the base is %d bytes, the overlay %d", bsize, top.Size())
		}
		dst, below = &overlay.RawTarget{W: bst}, bf
	case formats.AeroSpar:
		d, err := sparse.Open(bst, true)
		if err != nil {
			return err
		}
		defer d.Close()
		if d.Size() != top.Size() {
			return diskerr.New("", diskerr.ErrBadSize, "the base is %d bytes, the overlay %d", d.Size(), top.Size())
		}
		dst, below = d, d
	case formats.AeroLayr:
		// An overlay of an overlay: whole blocks go into the lower layer,
		// which needs nothing below it for that.
		l, err := layer.Open(bst, true)
		if err != nil {
			return err
		}
		defer l.Close()
		if l.Size() != top.Size() || l.BlockSize() != top.BlockSize() {
			return diskerr.New("aerolayr", diskerr.ErrUnsupported, "the base layer's size or block size differs from the overlay's")
		}
		dst, below = l, l
	default:
		return diskerr.New(string(format), diskerr.ErrUnsupported, "commit writes into a raw, AEROSPAR or AEROLAYR base; %s is %s (convert it first)", h.ParentName, format)
	}
	top.SetBelow(below)
	p := &overlay.Pacer{Ctx: ctx}
	if f.bools["-p"] {
		pr := progressPrinter(stderr)
		p.Progress = func(done, total int64) { pr(convert.Progress{Done: done, Total: total}) }
	}
	if err := overlay.CommitDown(top, dst, p); err != nil {
		return err
	}
	if f.bools["-p"] {
		fmt.Fprintln(stderr)
	}
	// Empty the overlay: a fresh layer over the same base, renamed over it.
	out, err := createOutput(path)
	if err != nil {
		return err
	}
	defer out.Discard()
	fresh, err := layer.Create(out.Storage(), top.Size(), layer.Options{BlockSize: uint32(top.BlockSize()), ParentName: h.ParentName, BaseSize: top.Size()})
	if err != nil {
		return err
	}
	if err := fresh.Close(); err != nil {
		return err
	}
	if err := out.Commit(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Image committed.\n")
	return nil
}

func isLayer(r io.ReaderAt, size int64) bool {
	b := make([]byte, 8)
	n, _ := r.ReadAt(b, 0)
	return n == 8 && layer.Probe(b)
}
