// Package formats reads disk-image containers (raw, ISO 9660, qcow2, VHD,
// DiskCopy 4.2, AEROSPAR) through one interface, Image, over io.ReaderAt.
//
// Readers follow archive/zip and debug/elf: every structure is validated
// against the file size before anything is allocated for it, failures are
// sentinel errors (ErrCorrupt, ErrTruncated, ErrUnsupported, ...), and no
// input makes a reader panic.
//
// Extent is the allocation query (after lima-vm's go-qcow2reader): callers
// copy only Data extents and account for Zero/Unallocated ones without
// reading them, which is what makes sparse conversion and checksums cheap.
// Extents walks a range of the disk with it.
//
// Every reader keeps one contract, stated in full on Image and Info:
// ReadAt returns the bytes it filled along with the error (io.ReaderAt's
// rule, also when a corrupt table or a failed container read stops it);
// Extent reports an error only for the first byte of a run, a problem
// further on ending the run early so that the next query, starting there,
// reports it; Info.Details keys are kebab-case, as in qemu-img's JSON.
package formats

import (
	"errors"
	"fmt"
	"io"
	"iter"

	"aerodisk/internal/diskerr"
)

// Sentinel errors, re-exported from diskerr so callers need only this package.
var (
	ErrCorrupt         = diskerr.ErrCorrupt
	ErrTruncated       = diskerr.ErrTruncated
	ErrChecksum        = diskerr.ErrChecksum
	ErrBackingCycle    = diskerr.ErrBackingCycle
	ErrUnsupported     = diskerr.ErrUnsupported
	ErrUnknownFormat   = diskerr.ErrUnknownFormat
	ErrBadSize         = diskerr.ErrBadSize
	ErrBackingNotFound = diskerr.ErrBackingNotFound
)

// Format names a container format.
type Format string

const (
	Raw      Format = "raw"
	ISO      Format = "iso"
	Qcow2    Format = "qcow2"
	VHD      Format = "vhd"
	DC42     Format = "dc42"
	AeroSpar Format = "aerospar"
	AeroLayr Format = "aerolayr"
)

// Kind says what an extent of the logical disk holds.
type Kind uint8

const (
	// Data: bytes stored in the image (or a backing file); read them.
	// They may still happen to be zeros.
	Data Kind = iota + 1
	// Zero: explicitly recorded as zeros (qcow2 zero cluster); reads as zeros.
	Zero
	// Unallocated: nothing stored in the image nor any backing file; reads as zeros.
	Unallocated
)

func (k Kind) String() string {
	switch k {
	case Data:
		return "data"
	case Zero:
		return "zero"
	case Unallocated:
		return "unallocated"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Extent is a run of the logical disk with a single Kind.
type Extent struct {
	Off, Len int64
	Kind     Kind
}

// End is the offset just past the extent.
func (e Extent) End() int64 { return e.Off + e.Len }

// Extents walks img's allocation map over [off, end), with 0 ≤ off ≤ end ≤
// img.Size(): it yields the extents that tile the range, in order, the
// first starting at off and each next one where the previous one ended,
// the last one ending at end. Each is the longest single-kind run
// Image.Extent reports there, cut at end. (A range reaching past the disk
// ends with Extent's ErrBadSize for the first offset outside it.)
//
// An error ends the walk: it is yielded once, with a zero Extent, at the
// offset where it lies (Image.Extent's contract: every good extent before a
// bad spot is yielded first). So is an Extent answer that breaks the
// interface's contract (a run that does not start at the offset asked for
// or does not fit in the range), which would otherwise stall or skip
// ahead. A walk that stops early leaves nothing to clean up, and the
// sequence may be walked again.
//
//	for e, err := range formats.Extents(img, 0, img.Size()) {
//		if err != nil {
//			return err
//		}
//		...
//	}
func Extents(img Image, off, end int64) iter.Seq2[Extent, error] {
	return func(yield func(Extent, error) bool) {
		for at := off; at < end; {
			e, err := img.Extent(at, end-at)
			if err == nil && (e.Off != at || e.Len <= 0 || e.Len > end-at) {
				err = fmt.Errorf("formats: %s reader answered the extent query [%d,+%d) with %+v", img.Info().Format, at, end-at, e)
			}
			if err != nil {
				yield(Extent{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
			at = e.End()
		}
	}
}

// Image is an opened disk image: its logical content and allocation map.
type Image interface {
	// ReadAt reads logical content and returns how many bytes of p it
	// filled, as io.ReaderAt does. Like io.SectionReader it returns io.EOF
	// when the read reaches past Size() (having filled the bytes up to
	// Size()), and a negative off is ErrBadSize. A structural problem or a
	// failed read of the container found while reading is a diskerr error
	// (or the container's own error) instead, returned with n < len(p): p[:n]
	// holds the disk's content from off, every byte filled before the
	// problem, and the bytes of p past n are unspecified.
	io.ReaderAt
	// Size is the logical (virtual) size in bytes.
	Size() int64
	// Extent describes the longest run starting at off, at most n bytes long,
	// that has a single Kind. off must be in [0, Size()) and n > 0; the
	// returned Len is then ≥ 1 and ≤ min(n, Size()-off).
	//
	// It returns an error only when the run's first byte cannot be
	// described (the table that maps off is corrupt or unreadable, or so is
	// the backing image's). A problem found while extending the run past
	// its first byte ends the run early, before the bad spot, and is not
	// returned: the next query, which starts there, reports it.
	Extent(off, n int64) (Extent, error)
	// Info describes the container (for `aerodisk info`).
	Info() Info
	// Close releases backing images opened through the Resolver.
	Close() error
}

// Info describes an opened container. Details are the format's own facts;
// their keys, and those of maps inside them, are kebab-case
// ("allocated-blocks"), as qemu-img's JSON names its format-specific ones.
type Info struct {
	Format      Format         `json:"format"`
	VirtualSize int64          `json:"virtual-size"`
	FileSize    int64          `json:"actual-size"`
	ClusterSize int64          `json:"cluster-size,omitempty"`
	BackingFile string         `json:"backing-filename,omitempty"`
	Backing     *Info          `json:"backing,omitempty"`
	Details     map[string]any `json:"format-specific,omitempty"`
	// Warnings are facts about an image that was read anyway but that a
	// person should know (a DiskCopy data checksum that disagrees with the
	// bytes, trailing bytes after the data): sentences, without a final
	// period. The browser records them in DiskMeta.warnings.
	Warnings []string `json:"warnings,omitempty"`
}

// Source is a file to open: its bytes, size and a name that identifies it
// (a path for the CLI, a disk id in the browser). Names detect backing cycles.
type Source struct {
	Name  string
	R     io.ReaderAt
	Size  int64
	Close func() error // optional; called by Image.Close for backing files
	// Image, when a Resolver sets it, is the backing file already opened
	// as a disk (a stored disk read through its own format): it is used as
	// the backing image as it is, whatever format the parent declares, and
	// R and Size are ignored. Its container bytes are never read as disk
	// bytes.
	Image Image
}

// Resolver opens the backing file that the image named parent refers to as
// backing. It returns an error wrapping ErrBackingNotFound when there is none.
type Resolver func(parent, backing string) (Source, error)

// DefaultMaxChain bounds backing chains; deeper chains are ErrUnsupported.
const DefaultMaxChain = 32

// Options controls Open.
type Options struct {
	// Format forces a format instead of detecting it ("" = detect).
	Format Format
	// Resolve opens backing files; nil makes any backing file ErrBackingNotFound.
	Resolve Resolver
	// AcceptBadChecksum opens DiskCopy images whose data checksum is wrong.
	AcceptBadChecksum bool
	// MaxChain bounds the backing chain length (0 = DefaultMaxChain).
	MaxChain int
}

// opener carries state while a backing chain is opened.
type opener struct {
	opts  Options
	chain []string // names from the top image down to the one being opened
}

// Open detects (or takes from opts) the format of src and opens it.
func Open(src Source, opts Options) (Image, error) {
	if opts.MaxChain <= 0 {
		opts.MaxChain = DefaultMaxChain
	}
	o := &opener{opts: opts}
	return o.open(src, opts.Format)
}

func (o *opener) open(src Source, f Format) (Image, error) {
	if src.Size < 0 {
		return nil, diskerr.New("", ErrBadSize, "negative file size")
	}
	if f == "" {
		var err error
		if f, err = Detect(src.R, src.Size); err != nil {
			return nil, err
		}
	}
	d, ok := lookup(f)
	if !ok {
		return nil, diskerr.New(string(f), ErrUnsupported, "no reader for format %q", f)
	}
	o.chain = append(o.chain, src.Name)
	defer func() { o.chain = o.chain[:len(o.chain)-1] }()
	return d.open(o, src)
}

// openBacking opens the backing file `name` of the image `parent`.
// format may be "" to detect it.
func (o *opener) openBacking(parent Source, name string, f Format) (Image, error) {
	if len(o.chain) >= o.opts.MaxChain {
		return nil, diskerr.New("", ErrUnsupported, "backing chain longer than %d images", o.opts.MaxChain)
	}
	if o.opts.Resolve == nil {
		return nil, diskerr.New("", ErrBackingNotFound, "%q needs backing file %q and no resolver is set", parent.Name, name)
	}
	src, err := o.opts.Resolve(parent.Name, name)
	if err != nil {
		if errors.Is(err, ErrBackingNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q (backing of %q): %v", ErrBackingNotFound, name, parent.Name, err)
	}
	for _, n := range o.chain {
		if n == src.Name {
			if src.Image != nil {
				src.Image.Close()
			}
			if src.Close != nil {
				src.Close()
			}
			return nil, diskerr.New("", ErrBackingCycle, "%q appears twice in its own backing chain", src.Name)
		}
	}
	if src.Image != nil {
		return &ownedImage{Image: src.Image, closeSrc: src.Close}, nil
	}
	img, err := o.open(src, f)
	if err != nil {
		if src.Close != nil {
			src.Close()
		}
		return nil, err
	}
	return &ownedImage{Image: img, closeSrc: src.Close}, nil
}

// ownedImage closes the Source it was opened from along with the image.
type ownedImage struct {
	Image
	closeSrc func() error
}

func (i *ownedImage) Close() error {
	err := i.Image.Close()
	if i.closeSrc != nil {
		if e := i.closeSrc(); err == nil {
			err = e
		}
	}
	return err
}

// backingExtent answers Extent for a range that the top layer does not
// allocate: the backing image decides, and past its end the disk is unallocated.
func backingExtent(b Image, off, n int64) (Extent, error) {
	if b == nil || off >= b.Size() {
		return Extent{Off: off, Len: n, Kind: Unallocated}, nil
	}
	e, err := b.Extent(off, min(n, b.Size()-off))
	if err != nil {
		return Extent{}, err
	}
	return e, nil
}

// backingRead fills p (logical offset off) from the backing image, zeros past
// its end. Like ReadAt it returns how many bytes of p it filled.
func backingRead(b Image, p []byte, off int64) (int, error) {
	if b == nil || off >= b.Size() {
		clear(p)
		return len(p), nil
	}
	n := min(int64(len(p)), b.Size()-off)
	if got, err := ReadFull(b, p[:n], off); err != nil {
		return got, err
	}
	clear(p[n:])
	return len(p), nil
}

// ReadFull reads exactly len(p) bytes at off from r and returns how many of
// them it filled. A full read is never an error, even when r reports io.EOF
// along with the last byte; a short one always is: r's error, or
// io.ErrUnexpectedEOF when r gave none or only io.EOF.
func ReadFull(r io.ReaderAt, p []byte, off int64) (int, error) {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// readFull is ReadFull on a container file: a short file is ErrTruncated,
// naming what was being read. It returns how many bytes of p it filled.
func readFull(r io.ReaderAt, p []byte, off int64, format Format, what string) (int, error) {
	n, err := ReadFull(r, p, off)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = diskerr.New(string(format), ErrTruncated, "%s at offset %d (%d bytes) lies past the end of the file", what, off, len(p))
	}
	return n, err
}

// span is a named byte range [off, end) of a container file: a metadata
// table or a data block, which must not overlap another.
type span struct {
	off, end int64
	what     string
}

func (a span) overlaps(b span) bool { return a.off < b.end && b.off < a.end }

// clampRead validates a ReadAt request against the logical size: it returns
// the part of p inside the disk and whether the read is cut short (io.EOF).
func clampRead(p []byte, off, size int64) ([]byte, error) {
	if off < 0 {
		return nil, diskerr.New("", ErrBadSize, "negative offset %d", off)
	}
	if off >= size {
		if len(p) == 0 {
			return p, nil
		}
		return nil, io.EOF
	}
	if rem := size - off; int64(len(p)) > rem {
		return p[:rem], io.EOF
	}
	return p, nil
}

// checkExtentArgs validates Extent's arguments and clamps n to the disk.
func checkExtentArgs(off, n, size int64) (int64, error) {
	if off < 0 || off >= size || n <= 0 {
		return 0, diskerr.New("", ErrBadSize, "extent query [%d,+%d) outside disk of %d bytes", off, n, size)
	}
	return min(n, size-off), nil
}
