package formats

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"aerodisk/internal/diskerr"
)

// Foreign containers: formats qemu-img reads and aerodisk does not (yet).
// They are recognised by the signatures qemu's own probes look for, at the
// offsets those probes look at, so that such a file is refused with an
// ErrUnsupported error naming its format instead of being taken for a raw
// disk whose content is the container's bytes. Nothing here reads them.
//
// qemu probes the first 2048 bytes of a file, zero-padded past its end
// (block.c, find_image_format, BLOCK_PROBE_BUF_SIZE). The probes here look
// at the same bytes, except that a signature must lie wholly inside the file
// (qemu would take a 3-byte file "QED" for QED, its fourth byte, NUL, being
// padding). The signatures and their sources are listed in docs/formats.md.

// The foreign formats, named as qemu-img names them (its -f argument).
const (
	VMDK      Format = "vmdk"
	VHDX      Format = "vhdx"
	VDI       Format = "vdi"
	QED       Format = "qed"
	Parallels Format = "parallels"
	Bochs     Format = "bochs"
	LUKS      Format = "luks"
	Cloop     Format = "cloop"
	DMG       Format = "dmg"
	// Qcow1 is qcow version 1. It shares qcow2's magic, so Detect reports it
	// as Qcow2 and the qcow2 reader refuses version 1; the entry exists so
	// that "-f qcow" is refused by name too.
	Qcow1 Format = "qcow"
)

// foreign is a format that is recognised and refused.
type foreign struct {
	format Format
	name   string // for people: "VMDK"
	probe  func(r io.ReaderAt, size int64) bool
	hint   string // what to do instead; "" = convert with qemu-img to qcow2
}

// foreignFormats in probe order. Each probe is an exact signature, so the
// order among them does not matter; they run after the readers' own probes
// (qcow2, AEROSPAR, VHD, DiskCopy) and before ISO and raw.
var foreignFormats = []foreign{
	{format: VMDK, name: "VMDK", probe: probeVMDK},
	{format: VHDX, name: "VHDX", probe: probeVHDX},
	{format: VDI, name: "VDI", probe: probeVDI},
	{format: QED, name: "QED", probe: probeQED},
	{format: Parallels, name: "Parallels", probe: probeParallels},
	{format: Bochs, name: "Bochs", probe: probeBochs},
	{format: LUKS, name: "LUKS encrypted", probe: probeLUKS,
		hint: "decrypt with qemu-img convert --object secret,id=sec0,file=PASSPHRASE-FILE --image-opts driver=luks,key-secret=sec0,file.filename=IMAGE -O qcow2 OUT"},
	{format: Cloop, name: "cloop", probe: probeCloop},
	{format: DMG, name: "DMG (UDIF)", probe: probeDMG},
	{format: Qcow1, name: "qcow version 1", probe: func(io.ReaderAt, int64) bool { return false }},
}

// err is the error every use of the format gets: detected, forced with
// Options.Format, or named to ParseFormat.
func (f foreign) err() error {
	hint := f.hint
	if hint == "" {
		hint = fmt.Sprintf("convert with qemu-img convert -f %s -O qcow2", f.format)
	}
	return diskerr.New(string(f.format), ErrUnsupported, "%s images are not supported yet; %s", f.name, hint)
}

// driver is the format's entry in the probe list: its open refuses.
func (f foreign) driver() driver {
	return driver{f.format, f.probe, func(*opener, Source) (Image, error) { return nil, f.err() }}
}

func lookupForeign(f Format) (foreign, bool) {
	for _, ff := range foreignFormats {
		if ff.format == f {
			return ff, true
		}
	}
	return foreign{}, false
}

// probeBufSize is how much of a file qemu's probes see.
const probeBufSize = 2048

// probeHead returns the first probeBufSize bytes of the file as qemu's
// probes see them: zero-padded past the end of the file, and zeros where a
// read fails. (Only the VMDK descriptor scan needs it; fixed signatures are
// read with readMagic, which requires them inside the file.)
func probeHead(r io.ReaderAt, size int64) []byte {
	b := make([]byte, probeBufSize)
	if m := min(int64(len(b)), size); m > 0 {
		got, _ := r.ReadAt(b[:m], 0)
		clear(b[got:])
	}
	return b
}

// VMDK (block/vmdk.c, vmdk_probe): a sparse extent starts with "KDMV"
// (VMDK 4, hosted sparse and streamOptimized) or "COWD" (VMDK 3, ESX); a
// descriptor file is text whose first line that is neither a comment ('#')
// nor blank (spaces only) is "version=1", "version=2" or "version=3".
func probeVMDK(r io.ReaderAt, size int64) bool {
	if m := string(readMagic(r, 0, 4, size)); m == "KDMV" || m == "COWD" {
		return true
	}
	return isVMDKDescriptor(probeHead(r, size))
}

// isVMDKDescriptor is vmdk_probe's text scan, step for step.
func isVMDKDescriptor(b []byte) bool {
	p, end := 0, len(b)
	for p < end {
		switch b[p] {
		case '#': // a comment line
			for p < end && b[p] != '\n' {
				p++
			}
			p++
			continue
		case ' ': // only blank lines may come before version=
			for p < end && b[p] == ' ' {
				p++
			}
			if p < end && b[p] == '\r' {
				p++
			}
			if p == end || b[p] != '\n' {
				return false
			}
			p++
			continue
		}
		for _, v := range []string{"version=1\n", "version=2\n", "version=3\n", "version=1\r\n", "version=2\r\n", "version=3\r\n"} {
			if bytes.HasPrefix(b[p:], []byte(v)) {
				return true
			}
		}
		return false
	}
	return false
}

// VHDX (block/vhdx.c, vhdx_probe): the file type identifier "vhdxfile" at 0.
func probeVHDX(r io.ReaderAt, size int64) bool {
	return string(readMagic(r, 0, 8, size)) == "vhdxfile"
}

// VDI (block/vdi.c, vdi_probe): the little-endian signature 0xbeda107f at
// 0x40, after the 64-byte text ("<<< ... Disk Image >>>") that tools vary.
func probeVDI(r io.ReaderAt, size int64) bool {
	b := readMagic(r, 0x40, 4, size)
	return b != nil && binary.LittleEndian.Uint32(b) == 0xbeda107f
}

// QED (block/qed.c, bdrv_qed_probe): the little-endian magic "QED\0" at 0.
func probeQED(r io.ReaderAt, size int64) bool {
	return string(readMagic(r, 0, 4, size)) == "QED\x00"
}

// Parallels (block/parallels.c, parallels_probe): "WithoutFreeSpace" or
// "WithouFreSpacExt" at 0 and the little-endian version 2 at 16.
func probeParallels(r io.ReaderAt, size int64) bool {
	b := readMagic(r, 0, 20, size)
	if b == nil {
		return false
	}
	m := string(b[:16])
	return (m == "WithoutFreeSpace" || m == "WithouFreSpacExt") && binary.LittleEndian.Uint32(b[16:]) == 2
}

// Bochs (block/bochs.c, bochs_probe): the NUL-terminated strings "Bochs
// Virtual HD Image" at 0, "Redolog" at 32 and "Growing" at 48, and the
// little-endian version 0x00020000 or 0x00010000 at 64. (qemu reads only
// growing images; undoable and volatile redologs are raw to it too.)
func probeBochs(r io.ReaderAt, size int64) bool {
	b := readMagic(r, 0, 68, size)
	if b == nil {
		return false
	}
	cstr := func(field []byte) string {
		if i := bytes.IndexByte(field, 0); i >= 0 {
			return string(field[:i])
		}
		return "" // unterminated: no string qemu compares equal
	}
	v := binary.LittleEndian.Uint32(b[64:])
	return cstr(b[0:32]) == "Bochs Virtual HD Image" && cstr(b[32:48]) == "Redolog" &&
		cstr(b[48:64]) == "Growing" && (v == 0x00020000 || v == 0x00010000)
}

// LUKS (crypto/block-luks.c, qcrypto_block_luks_has_format, probed by
// block/crypto.c): "LUKS\xba\xbe" at 0 and the big-endian version 1 at 6.
// (qemu reads only LUKS version 1; a LUKS2 volume is raw to it.)
func probeLUKS(r io.ReaderAt, size int64) bool {
	b := readMagic(r, 0, 8, size)
	return b != nil && string(b[:6]) == "LUKS\xba\xbe" && binary.BigEndian.Uint16(b[6:]) == 1
}

// cloopMagic is the shell-script header of a cloop V2.0 image, at 0.
const cloopMagic = "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"

// cloop (block/cloop.c, cloop_probe): the script header above at 0, whole.
func probeCloop(r io.ReaderAt, size int64) bool {
	return string(readMagic(r, 0, len(cloopMagic), size)) == cloopMagic
}

// DMG (block/dmg.c): qemu's dmg_probe goes by the name (".dmg"), which
// aerodisk never does; its dmg_open reads the UDIF trailer, the last 512
// bytes of the file. aerodisk requires that trailer exactly: "koly" at
// size-512, then the big-endian version 4 and header size 512 that every
// UDIF trailer carries.
func probeDMG(r io.ReaderAt, size int64) bool {
	t := readMagic(r, size-512, 12, size)
	return t != nil && string(t[:4]) == "koly" &&
		binary.BigEndian.Uint32(t[4:]) == 4 && binary.BigEndian.Uint32(t[8:]) == 512
}
