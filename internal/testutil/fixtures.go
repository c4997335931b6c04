package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Fixture is a reference image made by the real tools, plus how qemu-img
// reads it ("" when qemu-img cannot, then Want holds the expected raw path).
type Fixture struct {
	Name    string
	Path    string
	QemuFmt string // format to pass to qemu-img -f, or ""
	Want    string // path of the expected raw content when QemuFmt == ""
}

// BaseDisk writes a raw disk of size bytes with mixed data, small zero runs
// and large holes (a whole unallocated MiB every 4 MiB), and returns its path.
func BaseDisk(t testing.TB, dir, name string, size int, seed uint64) string {
	t.Helper()
	b := MixedData(size, seed)
	for off := 1 << 20; off < size; off += 4 << 20 {
		clear(b[off:min(off+1<<20, size)])
	}
	return WriteFile(t, dir, name, b)
}

// Fixtures builds the reference set used by the end-to-end tests: every
// container variant the conversion engine promises, made by qemu-img/qemu-io,
// xorriso, and the DiskCopy 4.2 layout.
func Fixtures(t testing.TB, dir string) []Fixture {
	t.Helper()
	const size = 9<<20 + 512*7 // odd: not a multiple of any cluster size
	base := BaseDisk(t, dir, "base.img", size, 42)
	var fx []Fixture
	add := func(name, qfmt string) string {
		p := filepath.Join(dir, name)
		fx = append(fx, Fixture{Name: name, Path: p, QemuFmt: qfmt})
		return p
	}
	conv := func(name string, opts ...string) {
		p := add(name, "qcow2")
		QemuImg(t, append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, opts...), base, p)...)
	}
	fx = append(fx, Fixture{Name: "base.img", Path: base, QemuFmt: "raw"})
	conv("v2-64k.qcow2", "-o", "compat=0.10,cluster_size=65536")
	conv("v3-512.qcow2", "-o", "compat=1.1,cluster_size=512")
	conv("v3-2m.qcow2", "-o", "compat=1.1,cluster_size=2M")
	conv("zlib.qcow2", "-c", "-o", "compat=1.1")
	conv("zstd.qcow2", "-c", "-o", "compat=1.1,compression_type=zstd")

	// Zero clusters over data and over nothing.
	zero := add("zero-clusters.qcow2", "qcow2")
	QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-o", "compat=1.1", base, zero)
	QemuIO(t, "qcow2", zero, "write -z 0 256k", "write -z 4M 1M", "write -z 8M 64k")

	// A backing chain of 3: base (qcow2) ← mid ← top, each layer writing some data.
	chain0 := filepath.Join(dir, "chain0.qcow2")
	QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", base, chain0)
	chain1 := filepath.Join(dir, "chain1.qcow2")
	QemuImg(t, "create", "-q", "-f", "qcow2", "-b", "chain0.qcow2", "-F", "qcow2", chain1)
	QemuIO(t, "qcow2", chain1, "write -P 0x11 64k 128k", "write -z 2M 64k", "write -P 0x22 8M 4k")
	top := add("chain2.qcow2", "qcow2")
	QemuImg(t, "create", "-q", "-f", "qcow2", "-b", "chain1.qcow2", "-F", "qcow2", top, fmt.Sprint(size+1<<20))
	QemuIO(t, "qcow2", top, "write -P 0x33 100k 8k", "write -P 0x44 9M 1M")

	for _, v := range []struct{ name, opts string }{
		{"fixed.vhd", "subformat=fixed"},
		{"dynamic.vhd", "subformat=dynamic"},
		{"dynamic-forcesize.vhd", "subformat=dynamic,force_size=on"},
	} {
		p := add(v.name, "vpc")
		QemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", v.opts, base, p)
	}

	// A real ISO 9660 image.
	content := filepath.Join(dir, "iso-content")
	os.MkdirAll(content, 0o755)
	WriteFile(t, content, "HELLO.TXT", []byte("aerodisk test disc\n"))
	WriteFile(t, content, "DATA.BIN", MixedData(700<<10, 7))
	iso := add("disc.iso", "raw")
	Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-V", "AERODISK", "-o", iso, content)

	// DiskCopy 4.2 (qemu-img has no reader): expected content is the data.
	data := MixedData(819200, 8)
	dc := WriteFile(t, dir, "floppy.dc42", DC42("Aero Floppy", data, MixedData(19200, 9)))
	fx = append(fx, Fixture{Name: "floppy.dc42", Path: dc, Want: WriteFile(t, dir, "floppy.want", data)})
	return fx
}
