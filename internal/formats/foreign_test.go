package formats

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/testutil"
)

// Foreign containers (foreign.go) must be recognised and refused by name,
// and nothing a real disk looks like may be mistaken for one. qemu-img makes
// the images where it can and judges every file: whatever qemu-img calls
// raw must stay raw here, and whatever it calls vmdk, vhdx, ... is refused
// as that format.

// qemuFormat is the format qemu-img's probe gives path.
func qemuFormat(t *testing.T, path string) string {
	t.Helper()
	var info struct {
		Format string `json:"format"`
	}
	out := testutil.QemuImg(t, "info", "--output=json", path)
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("qemu-img info %s: %v\n%s", path, err, out)
	}
	return info.Format
}

// wantRefused checks that path is detected as f and that opening it (by
// detection or forced) fails with f's named ErrUnsupported error, the same
// one ParseFormat gives f's name.
func wantRefused(t *testing.T, path string, f Format) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Detect(bytes.NewReader(b), int64(len(b)))
	if err != nil || got != f {
		t.Fatalf("%s: Detect = %q, %v; want %q", filepath.Base(path), got, err, f)
	}
	_, perr := ParseFormat(string(f))
	checkForeignErr(t, perr, f)
	for _, opts := range []Options{{}, {Format: f}} {
		img, err := OpenFile(path, opts)
		if err == nil {
			img.Close()
			t.Fatalf("%s: opened as %v", filepath.Base(path), img.Info().Format)
		}
		checkForeignErr(t, err, f)
		if err.Error() != perr.Error() {
			t.Errorf("%s: Open says %q, ParseFormat %q", filepath.Base(path), err, perr)
		}
	}
}

func checkForeignErr(t *testing.T, err error, f Format) {
	t.Helper()
	var de *diskerr.Error
	ff, _ := lookupForeign(f)
	if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt) || !errors.As(err, &de) || de.Format != string(f) ||
		!strings.Contains(err.Error(), ff.name+" images are not supported yet") || !strings.Contains(err.Error(), "qemu-img convert") {
		t.Fatalf("%s: error %v; want the named ErrUnsupported", f, err)
	}
}

func TestForeignFromQemuImg(t *testing.T) {
	dir := t.TempDir()
	base := testutil.BaseDisk(t, dir, "base.img", 1<<20, 11)
	for _, c := range []struct {
		name string
		f    Format
		opts string
	}{
		{"sparse.vmdk", VMDK, "subformat=monolithicSparse"},
		{"stream.vmdk", VMDK, "subformat=streamOptimized"},
		{"dynamic.vhdx", VHDX, "subformat=dynamic"},
		{"fixed.vhdx", VHDX, "subformat=fixed"},
		{"dynamic.vdi", VDI, "static=off"},
		{"static.vdi", VDI, "static=on"},
		{"image.qed", QED, "cluster_size=65536"},
		{"image.parallels", Parallels, "cluster_size=1M"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			testutil.QemuImg(t, "convert", "-f", "raw", "-O", string(c.f), "-o", c.opts, base, p)
			if q := qemuFormat(t, p); q != string(c.f) {
				t.Fatalf("qemu-img calls it %q", q)
			}
			wantRefused(t, p, c.f)
		})
	}

	t.Run("descriptor.vmdk", func(t *testing.T) {
		// A descriptor text file (monolithicFlat) and its raw extent, and a
		// descriptor of sparse extents with one of those extents.
		flat := filepath.Join(dir, "flat.vmdk")
		testutil.QemuImg(t, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", flat, "1M")
		if b := readTestFile(t, flat); !bytes.HasPrefix(b, []byte("# Disk DescriptorFile\n")) {
			t.Fatalf("not a descriptor: %q", b[:min(len(b), 40)])
		}
		wantRefused(t, flat, VMDK)
		wantDetected(t, filepath.Join(dir, "flat-flat.vmdk"), Raw) // the flat extent is a raw disk
		split := filepath.Join(dir, "split.vmdk")
		testutil.QemuImg(t, "create", "-q", "-f", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", split, "1M")
		if q := qemuFormat(t, split); q != "vmdk" {
			t.Fatalf("qemu-img calls it %q", q)
		}
		wantRefused(t, split, VMDK)
		wantRefused(t, filepath.Join(dir, "split-s001.vmdk"), VMDK)
	})

	t.Run("WithoutFreeSpace.parallels", func(t *testing.T) {
		// qemu writes the "WithouFreSpacExt" magic; older images have
		// "WithoutFreeSpace".
		p := filepath.Join(dir, "image.parallels")
		b := readTestFile(t, p)
		if string(b[:16]) != "WithouFreSpacExt" {
			t.Fatalf("qemu wrote magic %q", b[:16])
		}
		copy(b, "WithoutFreeSpace")
		old := testutil.WriteFile(t, dir, "old.parallels", b)
		if q := qemuFormat(t, old); q != "parallels" {
			t.Fatalf("qemu-img calls it %q", q)
		}
		wantRefused(t, old, Parallels)
	})

	t.Run("luks", func(t *testing.T) {
		p := filepath.Join(dir, "disk.luks")
		qemuCreateLUKS(t, p)
		if q := qemuFormat(t, p); q != "luks" {
			t.Fatalf("qemu-img calls it %q", q)
		}
		wantRefused(t, p, LUKS)
	})

	t.Run("qcow1", func(t *testing.T) {
		// qcow version 1 shares qcow2's magic: the qcow2 reader refuses it.
		p := filepath.Join(dir, "v1.qcow")
		testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow", base, p)
		if q := qemuFormat(t, p); q != "qcow" {
			t.Fatalf("qemu-img calls it %q", q)
		}
		wantDetected(t, p, Qcow2)
		if _, err := OpenFile(p, Options{}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "version 1") {
			t.Fatalf("qcow v1: %v", err)
		}
		_, err := ParseFormat("qcow")
		checkForeignErr(t, err, Qcow1)
	})
}

// TestForeignHandBuilt: qemu-img cannot write Bochs, cloop or DMG images,
// so they are built from the drivers' structures; qemu-img must then read
// them back to the content they were built with, which proves they are real.
// Each is a whole number of sectors, so only detection can refuse it.
func TestForeignHandBuilt(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		f    Format
		img  []byte
		want []byte
	}{
		bochsCase(),
		cloopCase(),
		dmgCase(),
	} {
		t.Run(c.name, func(t *testing.T) {
			if len(c.img)%512 != 0 {
				t.Fatalf("built %d bytes, not whole sectors", len(c.img))
			}
			p := testutil.WriteFile(t, dir, c.name, c.img)
			if q := qemuFormat(t, p); q != string(c.f) {
				t.Fatalf("qemu-img calls it %q", q)
			}
			if got := readTestFile(t, testutil.QemuRaw(t, string(c.f), p)); !bytes.Equal(got, c.want) {
				t.Fatalf("qemu-img reads %d bytes that differ from the %d built in", len(got), len(c.want))
			}
			wantRefused(t, p, c.f)
		})
	}
	// qemu's DMG probe goes by the name; aerodisk finds the trailer under any name.
	d := dmgCase()
	wantRefused(t, testutil.WriteFile(t, dir, "renamed.img", d.img), DMG)
}

// TestForeignSignatures: the minimal signature of each format is enough,
// and a signature one byte off (or at the wrong offset) is not: those files
// are raw, as they are to qemu-img.
func TestForeignSignatures(t *testing.T) {
	dir := t.TempDir()
	for i, s := range foreignSignatures() {
		p := testutil.WriteFile(t, dir, fmt.Sprintf("sig%d-%s.img", i, s.f), s.b)
		wantRefused(t, p, s.f)
	}
	for _, m := range foreignNearMisses() {
		t.Run(m.name, func(t *testing.T) {
			p := testutil.WriteFile(t, dir, m.name+".img", m.b)
			wantDetected(t, p, Raw)
			if q := qemuFormat(t, p); q != "raw" {
				t.Fatalf("qemu-img calls it %q", q)
			}
		})
	}
}

// TestForeignNoFalsePositives: raw disks, ISOs and every reference fixture
// keep the format they had.
func TestForeignNoFalsePositives(t *testing.T) {
	dir := t.TempDir()
	rnd := rand.New(rand.NewChaCha8([32]byte{9}))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	mbr := random(1 << 20)
	copy(mbr, []byte{0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x7c}) // cli; xor ax,ax; ...
	clear(mbr[446:510])
	copy(mbr[446:], []byte{0x80, 0x20, 0x21, 0x00, 0x83, 0xfe, 0xff, 0xff, 0x00, 0x08, 0, 0, 0x00, 0xf8, 0x0f, 0})
	mbr[510], mbr[511] = 0x55, 0xaa
	script := append([]byte("#!/bin/sh\n# not a cloop image\nexit 0\n"), make([]byte, 4096)...)
	raws := map[string][]byte{
		"zeros.img":  make([]byte, 1<<20),
		"mbr.img":    mbr,
		"script.img": script[:4096],
		"text.img":   append([]byte("# Disk notes\nversion 1 of the notes\n"), make([]byte, 512-36)...),
	}
	for i := range 8 {
		raws[fmt.Sprintf("random%d.img", i)] = random(64 << 10)
	}
	for name, b := range raws {
		p := testutil.WriteFile(t, dir, name, b)
		wantDetected(t, p, Raw)
		if q := qemuFormat(t, p); q != "raw" {
			t.Errorf("%s: qemu-img calls it %q", name, q)
		}
	}
	// A trailer-looking sector that is not the last one is not a DMG.
	koly := make([]byte, 8192)
	copy(koly[4096:], dmgTrailer(0, 0, 0, 0, 0))
	wantDetected(t, testutil.WriteFile(t, dir, "koly-inside.img", koly), Raw)

	content := filepath.Join(dir, "iso")
	os.Mkdir(content, 0o755)
	testutil.WriteFile(t, content, "README.TXT", []byte("# Disk DescriptorFile\nversion=1\n"))
	iso := filepath.Join(dir, "disc.iso")
	testutil.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-o", iso, content)
	wantDetected(t, iso, ISO)

	for _, fx := range testutil.Fixtures(t, t.TempDir()) {
		want := map[string]Format{".img": Raw, ".qcow2": Qcow2, ".vhd": VHD, ".iso": ISO, ".dc42": DC42}[filepath.Ext(fx.Name)]
		if want == "" {
			t.Fatalf("fixture %s: no expected format", fx.Name)
		}
		wantDetected(t, fx.Path, want)
		img, err := OpenFile(fx.Path, Options{})
		if err != nil {
			t.Fatalf("%s: %v", fx.Name, err)
		}
		img.Close()
	}
}

// TestForeignDescriptorScan follows vmdk_probe's text rules case by case.
func TestForeignDescriptorScan(t *testing.T) {
	for text, want := range map[string]bool{
		"# Disk DescriptorFile\nversion=1\nCID=1\n": true,
		"version=3\n":            true,
		"#\n#\n   \nversion=2\n": true,
		"# Disk DescriptorFile\r\n  \r\nversion=1\r\nx\n": true,
		"# Disk DescriptorFile\n\nversion=1\n":            false, // an empty line ends the scan
		"# Disk DescriptorFile\nversion=4\n":              false,
		"# Disk DescriptorFile\nversion=1":                false, // no line end before the padding
		"  x\nversion=1\n":                                false,
		" version=1\n":                                    false,
		"# only comments\n":                               false,
		"":                                                false,
		"#" + strings.Repeat("x", probeBufSize) + "\nversion=1\n": false, // beyond what is probed
	} {
		b := []byte(text)
		if got := probeVMDK(bytes.NewReader(b), int64(len(b))); got != want {
			t.Errorf("%q: probe %v, want %v", text, got, want)
		}
	}
	// A signature must lie wholly inside the file (qemu pads with zeros),
	// and the signature alone is enough.
	sigLen := map[Format]int{VMDK: 4, VHDX: 8, VDI: 0x44, QED: 4, Parallels: 20, Bochs: 68, LUKS: 8, Cloop: len(cloopMagic)}
	for _, s := range foreignSignatures() {
		n, ok := sigLen[s.f]
		if !ok || s.b[0] == '#' && s.f == VMDK {
			continue
		}
		for i := 1; i <= n; i++ {
			if f, _ := Detect(bytes.NewReader(s.b[:i]), int64(i)); (f == s.f) != (i == n) {
				t.Errorf("%s: the first %d bytes are detected as %q", s.f, i, f)
			}
		}
	}
}

// qemuCreateLUKS makes a 1 MiB LUKS image (passphrase "abc"). qemu's PBKDF2
// benchmark sometimes fails on a fast or busy machine with "Unable to get
// accurate CPU usage" (getrusage has not caught up yet; fixed upstream in
// qemu 145f12ea885c, "crypto: fix bogus error benchmarking pbkdf on fast
// machines"): that error alone is retried, a few times.
func qemuCreateLUKS(t *testing.T, path string) {
	t.Helper()
	qemuImg := testutil.Tool(t, "qemu-img")
	var out []byte
	for range 5 {
		var err error
		out, err = exec.Command(qemuImg, "create", "-q", "-f", "luks", "--object", "secret,id=sec0,data=abc",
			"-o", "key-secret=sec0,iter-time=10", path, "1M").CombinedOutput()
		if err == nil {
			return
		}
		if !bytes.Contains(out, []byte("Unable to get accurate CPU usage")) {
			break
		}
	}
	t.Fatalf("qemu-img create -f luks: %s", out)
}

func wantDetected(t *testing.T, path string, f Format) {
	t.Helper()
	b := readTestFile(t, path)
	if got, err := Detect(bytes.NewReader(b), int64(len(b))); err != nil || got != f {
		t.Fatalf("%s: Detect = %q, %v; want %q", filepath.Base(path), got, err, f)
	}
}

func readTestFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type foreignSig struct {
	f Format
	b []byte
}

// sector pads b with zeros to n bytes.
func sector(n int, parts ...[]byte) []byte {
	b := make([]byte, n)
	off := 0
	for _, p := range parts {
		off += copy(b[off:], p)
	}
	return b
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// foreignSignatures are minimal files carrying each signature and nothing
// else (also fuzz seeds).
func foreignSignatures() []foreignSig {
	vdi := sector(4096, []byte("<<< Oracle VM VirtualBox Disk Image >>>\n"))
	copy(vdi[0x40:], le32(0xbeda107f))
	bochs := sector(512, []byte("Bochs Virtual HD Image"))
	copy(bochs[32:], "Redolog")
	copy(bochs[48:], "Growing")
	copy(bochs[64:], le32(0x00010000))
	return []foreignSig{
		{VMDK, sector(4096, []byte("KDMV"), le32(1))},
		{VMDK, sector(4096, []byte("COWD"), le32(1))},
		{VMDK, sector(512, []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\n"))},
		{VHDX, sector(4096, []byte("vhdxfile"))},
		{VDI, vdi},
		{QED, sector(4096, []byte("QED\x00"))},
		{Parallels, sector(4096, []byte("WithoutFreeSpace"), le32(2))},
		{Parallels, sector(4096, []byte("WithouFreSpacExt"), le32(2))},
		{Bochs, bochs},
		{LUKS, sector(4096, []byte("LUKS\xba\xbe\x00\x01"))},
		{Cloop, sector(4096, []byte(cloopMagic))},
		{DMG, append(make([]byte, 4096), dmgTrailer(0, 4096, 0, 0, 8)...)},
	}
}

// nearMiss is a file that differs from a signature in one thing.
type nearMiss struct {
	name string
	b    []byte
}

// foreignNearMisses change one thing in a signature: each is a raw disk.
func foreignNearMisses() []nearMiss {
	var out []nearMiss
	edit := func(name string, f Format, i int, fn func(b []byte)) {
		sig := foreignSignatures()[i]
		if sig.f != f {
			panic("foreignSignatures order changed")
		}
		b := append([]byte(nil), sig.b...)
		fn(b)
		out = append(out, nearMiss{name, b})
	}
	edit("vmdk-KDMW", VMDK, 0, func(b []byte) { b[3] = 'W' })
	edit("vmdk-version4", VMDK, 2, func(b []byte) { copy(b, "# Disk DescriptorFile\nversion=4\n") })
	edit("vmdk-empty-line-first", VMDK, 2, func(b []byte) { copy(b[1:], b); b[0] = '\n' })
	edit("vhdx-vhdxfilE", VHDX, 3, func(b []byte) { b[7] = 'E' })
	edit("vdi-signature-at-0x44", VDI, 4, func(b []byte) { copy(b[0x44:], b[0x40:0x44]); clear(b[0x40:0x44]) })
	edit("qed-QED1", QED, 5, func(b []byte) { b[3] = 1 })
	edit("parallels-version3", Parallels, 6, func(b []byte) { b[16] = 3 })
	// qemu reads growing Bochs images only; its magic is NUL-terminated.
	edit("bochs-undoable", Bochs, 8, func(b []byte) { copy(b[48:], "Undoable") })
	edit("bochs-unterminated", Bochs, 8, func(b []byte) { b[22] = '!' })
	edit("luks2", LUKS, 9, func(b []byte) { b[7] = 2 }) // qemu reads LUKS version 1 only
	edit("cloop-V3.0", Cloop, 10, func(b []byte) { b[12] = '3' })
	edit("dmg-koly-version3", DMG, 11, func(b []byte) { b[len(b)-512+7] = 3 })
	return out
}

// dmgTrailer is a UDIF "koly" trailer (big-endian, 512 bytes).
func dmgTrailer(dataOff, dataLen, xmlOff, xmlLen, sectors uint64) []byte {
	k := make([]byte, 512)
	be := binary.BigEndian
	copy(k, "koly")
	be.PutUint32(k[4:], 4)   // version
	be.PutUint32(k[8:], 512) // header size
	be.PutUint32(k[12:], 1)  // flags: flattened
	be.PutUint64(k[0x18:], dataOff)
	be.PutUint64(k[0x20:], dataLen)
	be.PutUint64(k[0xd8:], xmlOff)
	be.PutUint64(k[0xe0:], xmlLen)
	be.PutUint32(k[0x1e8:], 1) // image variant
	be.PutUint64(k[0x1ec:], sectors)
	return k
}

type handBuilt = struct {
	name string
	f    Format
	img  []byte
	want []byte
}

// dmgCase: a data fork of one uncompressed 4 KiB chunk, an XML property
// list with its "mish" block table, the koly trailer (block/dmg.c, dmg_open
// and dmg_read_mish_block).
func dmgCase() handBuilt {
	be := binary.BigEndian
	data := testutil.MixedData(4096, 21)
	mish := make([]byte, 204+2*40)
	copy(mish, "mish")
	be.PutUint32(mish[4:], 1)
	be.PutUint64(mish[0x10:], 8)         // sector count
	be.PutUint32(mish[200:], 2)          // chunk count
	c := mish[204:]                      // chunk 0: raw copy of 8 sectors
	be.PutUint32(c, 1)                   // type: uncompressed
	be.PutUint64(c[0x10:], 8)            // sectors
	be.PutUint64(c[0x20:], 4096)         // length in the data fork
	be.PutUint32(mish[244:], 0xffffffff) // chunk 1: the terminator
	be.PutUint64(mish[244+8:], 8)
	xml := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>resource-fork</key><dict><key>blkx</key><array><dict>
<key>Data</key><data>%s</data><key>Name</key><string>whole disk</string>
</dict></array></dict></dict></plist>
`, base64.StdEncoding.EncodeToString(mish))
	img := append(append([]byte(nil), data...), xml...)
	img = append(img, make([]byte, (512-len(img)%512)%512)...) // whole sectors
	img = append(img, dmgTrailer(0, 4096, 4096, uint64(len(xml)), 8)...)
	return handBuilt{"disk.dmg", DMG, img, data}
}

// bochsCase: a growing redolog of 64 KiB with 4 KiB extents, extent 0
// allocated (block/bochs.c, struct bochs_header and seek_to_sector).
func bochsCase() handBuilt {
	const disk, extent, catalog = 64 << 10, 4096, 16
	h := sector(512, []byte("Bochs Virtual HD Image"))
	copy(h[32:], "Redolog")
	copy(h[48:], "Growing")
	le := binary.LittleEndian
	le.PutUint32(h[64:], 0x00020000) // version
	le.PutUint32(h[68:], 512)        // header size: the catalog follows
	le.PutUint32(h[72:], catalog)
	le.PutUint32(h[76:], 512) // bitmap size
	le.PutUint32(h[80:], extent)
	le.PutUint64(h[88:], disk)
	img := h
	for i := range catalog {
		e := uint32(0xffffffff)
		if i == 0 {
			e = 0 // extent 0 is the first stored block
		}
		img = le.AppendUint32(img, e)
	}
	bitmap := make([]byte, 512)
	bitmap[0] = 0xff // its 8 sectors hold data
	data := testutil.MixedData(extent, 22)
	img = append(append(img, bitmap...), data...)
	img = append(img, make([]byte, (512-len(img)%512)%512)...)
	want := make([]byte, disk)
	copy(want, data)
	return handBuilt{"disk.bochs", Bochs, img, want}
}

// cloopCase: two 4 KiB blocks, zlib-compressed (block/cloop.c, cloop_open).
func cloopCase() handBuilt {
	const block, n = 4096, 2
	want := testutil.MixedData(block*n, 23)
	be := binary.BigEndian
	img := sector(128, []byte(cloopMagic))
	img = be.AppendUint32(img, block)
	img = be.AppendUint32(img, n)
	var blocks [][]byte
	for i := range n {
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(want[i*block : (i+1)*block])
		w.Close()
		blocks = append(blocks, z.Bytes())
	}
	off := uint64(len(img) + 8*(n+1))
	img = be.AppendUint64(img, off)
	for _, b := range blocks {
		off += uint64(len(b))
		img = be.AppendUint64(img, off)
	}
	for _, b := range blocks {
		img = append(img, b...)
	}
	img = append(img, make([]byte, (512-len(img)%512)%512)...)
	return handBuilt{"disk.cloop", Cloop, img, want}
}
