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
package formats

import (
	"errors"
	"fmt"
	"io"

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

// Image is an opened disk image: its logical content and allocation map.
type Image interface {
	// ReadAt reads logical content. Like io.SectionReader it returns io.EOF
	// when the read reaches past Size(); a structural problem found while
	// reading is a diskerr error instead.
	io.ReaderAt
	// Size is the logical (virtual) size in bytes.
	Size() int64
	// Extent describes the longest run starting at off, at most n bytes long,
	// that has a single Kind. off must be in [0, Size()) and n > 0; the
	// returned Len is then ≥ 1 and ≤ min(n, Size()-off).
	Extent(off, n int64) (Extent, error)
	// Info describes the container (for `aerodisk info`).
	Info() Info
	// Close releases backing images opened through the Resolver.
	Close() error
}

// Info describes an opened container.
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

// backingRead fills p (logical offset off) from the backing image, zeros past its end.
func backingRead(b Image, p []byte, off int64) error {
	if b == nil || off >= b.Size() {
		clear(p)
		return nil
	}
	n := min(int64(len(p)), b.Size()-off)
	if got, err := b.ReadAt(p[:n], off); int64(got) < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	clear(p[n:])
	return nil
}

// readFull reads exactly len(p) bytes at off from a container file; a short
// file is ErrTruncated (with what was being read, for the message).
func readFull(r io.ReaderAt, p []byte, off int64, format Format, what string) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return diskerr.New(string(format), ErrTruncated, "%s at offset %d (%d bytes) lies past the end of the file", what, off, len(p))
	}
	return err
}

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
