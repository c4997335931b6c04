package formats

import (
	"io"

	"aerodisk/internal/diskerr"
)

// driver is one format's content probe and opener.
type driver struct {
	format Format
	probe  func(r io.ReaderAt, size int64) bool // nil for raw: what Detect answers when no probe matches
	open   func(o *opener, src Source) (Image, error)
}

// drivers in probe order: the formats aerodisk reads that have a magic at
// offset 0 or a trailer, then the foreign formats (foreign.go: recognised by
// qemu's signatures, opened only to be refused with ErrUnsupported), then
// ISO (a signature at 0x8001, after a system area that may hold anything)
// and raw last (it has no probe: it is anything else). Filled by init
// because openers reach lookup again through backing files.
var drivers []driver

func init() {
	drivers = []driver{
		{Qcow2, probeQcow2, openQcow2},
		{AeroSpar, probeAeroSpar, openAeroSpar},
		{AeroLayr, probeAeroLayr, openAeroLayr},
		{VHD, probeVHD, openVHD},
		{DC42, probeDC42, openDC42},
	}
	for _, f := range foreignFormats {
		drivers = append(drivers, f.driver())
	}
	drivers = append(drivers,
		driver{ISO, probeISO, openISO},
		driver{Raw, nil, openRaw},
	)
}

func lookup(f Format) (driver, bool) {
	for _, d := range drivers {
		if d.format == f {
			return d, true
		}
	}
	return driver{}, false
}

// Detect sniffs the format from content alone (never from a file name).
// A foreign format (VMDK, VHDX, VDI, QED, Parallels, Bochs, LUKS, cloop,
// DMG) is returned by name, and Open refuses it with an ErrUnsupported
// error naming it. Anything that matches no container signature is raw
// (whose reader then checks the size); an empty file is ErrBadSize.
func Detect(r io.ReaderAt, size int64) (Format, error) {
	if size <= 0 {
		return "", diskerr.New("", ErrBadSize, "empty file")
	}
	for _, d := range drivers {
		if d.probe != nil && d.probe(r, size) {
			return d.format, nil
		}
	}
	return Raw, nil
}

// ParseFormat maps a user-given format name (qemu-img spellings too) to a
// Format. The name of a foreign format gets the error Open gives its images.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "raw", "img":
		return Raw, nil
	case "iso":
		return ISO, nil
	case "qcow2":
		return Qcow2, nil
	case "vhd", "vpc":
		return VHD, nil
	case "dc42", "diskcopy", "dc":
		return DC42, nil
	case "aerospar":
		return AeroSpar, nil
	case "aerolayr":
		return AeroLayr, nil
	}
	if f, ok := lookupForeign(Format(s)); ok {
		return "", f.err()
	}
	return "", diskerr.New("", ErrUnsupported, "unknown format name %q (want raw, iso, qcow2, vhd/vpc, dc42, aerospar)", s)
}

// readMagic reads n bytes at off, or returns nil if the file is too short.
func readMagic(r io.ReaderAt, off int64, n int, size int64) []byte {
	if off < 0 || off+int64(n) > size {
		return nil
	}
	b := make([]byte, n)
	if _, err := ReadFull(r, b, off); err != nil {
		return nil
	}
	return b
}
