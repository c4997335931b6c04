package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aerodisk/internal/checksum"
	"aerodisk/internal/testutil"
)

func aerodisk(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

func mustAerodisk(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := aerodisk(t, args...)
	if code != 0 {
		t.Fatalf("aerodisk %q exited %d: %s", args, code, errOut)
	}
	return out
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConvertMatchesQemuImg is the core promise: for every reference image,
// `aerodisk convert -O raw` equals `qemu-img convert -O raw` byte for byte,
// AEROSPAR round-trips, and checksum/info/check agree.
func TestConvertMatchesQemuImg(t *testing.T) {
	dir := t.TempDir()
	for _, fx := range testutil.Fixtures(t, dir) {
		t.Run(fx.Name, func(t *testing.T) {
			want := fx.Want
			if fx.QemuFmt != "" {
				want = testutil.QemuRaw(t, fx.QemuFmt, fx.Path)
			}
			wantBytes := readFile(t, want)

			raw := filepath.Join(t.TempDir(), "out.raw")
			mustAerodisk(t, "convert", "-O", "raw", fx.Path, raw)
			if got := readFile(t, raw); !bytes.Equal(got, wantBytes) {
				t.Fatalf("convert -O raw differs from the reference (%d vs %d bytes)", len(got), len(wantBytes))
			}

			spar := filepath.Join(t.TempDir(), "out.aerospar")
			mustAerodisk(t, "convert", "-p", "-O", "aerospar", fx.Path, spar)
			back := filepath.Join(t.TempDir(), "back.raw")
			mustAerodisk(t, "convert", "-f", "aerospar", "-O", "raw", spar, back)
			if !bytes.Equal(readFile(t, back), wantBytes) {
				t.Fatal("aerospar round trip differs")
			}

			wantSum := checksum.Hex(crc32.ChecksumIEEE(wantBytes))
			for _, p := range []string{fx.Path, spar} {
				if out := mustAerodisk(t, "checksum", p); !strings.HasPrefix(out, wantSum+"  ") {
					t.Fatalf("checksum %s = %q, want %s", p, out, wantSum)
				}
				if out := mustAerodisk(t, "check", p); !strings.Contains(out, "No errors") || !strings.Contains(out, wantSum) {
					t.Fatalf("check %s: %q", p, out)
				}
			}

			var info struct {
				VirtualSize int64  `json:"virtual-size"`
				Format      string `json:"format"`
				Allocated   int64  `json:"allocated-bytes"`
			}
			if err := json.Unmarshal([]byte(mustAerodisk(t, "info", "--json", fx.Path)), &info); err != nil {
				t.Fatal(err)
			}
			if info.VirtualSize != int64(len(wantBytes)) || info.Allocated > info.VirtualSize {
				t.Fatalf("info: %+v, reference has %d bytes", info, len(wantBytes))
			}
			if fx.QemuFmt != "" {
				var q struct {
					VirtualSize int64 `json:"virtual-size"`
				}
				json.Unmarshal(testutil.QemuImg(t, "info", "--output=json", "-f", fx.QemuFmt, fx.Path), &q)
				if q.VirtualSize != info.VirtualSize {
					t.Fatalf("virtual size %d, qemu-img says %d", info.VirtualSize, q.VirtualSize)
				}
			}
			if human := mustAerodisk(t, "info", fx.Path); !strings.Contains(human, "file format: ") {
				t.Fatalf("info output: %s", human)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "blank60.aerospar")
	mustAerodisk(t, "create", "-O", "aerospar", "--size", "60G", big)
	fi, err := os.Stat(big)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 1<<20 {
		t.Fatalf("blank 60G AEROSPAR occupies %d bytes; want header+table only", fi.Size())
	}
	want := checksum.Hex(checksum.ExtendZeros(0, 60<<30))
	if out := mustAerodisk(t, "checksum", big); !strings.HasPrefix(out, want) {
		t.Fatalf("checksum of blank 60G = %q, want %s", out, want)
	}
	if out := mustAerodisk(t, "info", big); !strings.Contains(out, "virtual size: 64.4 GB (64424509440 bytes)") || !strings.Contains(out, "allocated: 0 B") {
		t.Fatalf("info: %s", out)
	}
	for size, bytes := range map[string]int64{"400K": 409600, "800K": 819200, "720K": 737280, "1440K": 1474560} {
		p := filepath.Join(dir, size+".img")
		mustAerodisk(t, "create", "-O", "raw", "--size", size, p)
		if fi, err := os.Stat(p); err != nil || fi.Size() != bytes {
			t.Fatalf("raw %s: %v %v", size, fi, err)
		}
		q := testutil.QemuImg(t, "info", "--output=json", "-f", "raw", p)
		if !strings.Contains(string(q), fmt.Sprintf(`"virtual-size": %d`, bytes)) {
			t.Fatalf("qemu-img info %s: %s", p, q)
		}
	}
	if _, errOut, code := aerodisk(t, "create", "-O", "aerospar", "--size", "1000", filepath.Join(dir, "odd")); code == 0 || !strings.Contains(errOut, "512") {
		t.Fatalf("odd size accepted: %d %s", code, errOut)
	}
}

// TestErrorsLeaveNothing: failures exit non-zero with a reason and never
// leave OUT or a temporary file behind.
func TestErrorsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	good := testutil.BaseDisk(t, dir, "good.img", 1<<20, 1)
	q := filepath.Join(dir, "good.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", good, q)
	cut := testutil.WriteFile(t, dir, "cut.qcow2", readFile(t, q)[:70000])
	odd := testutil.WriteFile(t, dir, "odd.img", make([]byte, 1000))
	missingBacking := filepath.Join(dir, "orphan.qcow2")
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", missingBacking, "1M")

	outDir := t.TempDir()
	out := filepath.Join(outDir, "out.raw")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"convert", "-O", "raw", filepath.Join(dir, "nope"), out}, exitError, "no such file"},
		{[]string{"convert", "-O", "raw", cut, out}, exitCorrupt, "truncated"},
		{[]string{"convert", "-O", "aerospar", odd, out}, exitError, "multiple of 512"},
		{[]string{"convert", "-O", "raw", missingBacking, out}, exitError, "backing file not found"},
		{[]string{"convert", "-O", "vmdk", good, out}, exitError, "cannot write format"},
		{[]string{"convert", "-f", "vmdk", "-O", "raw", good, out}, exitUnsupported, "VMDK images are not supported yet"},
		{[]string{"convert", "-f", "frob", "-O", "raw", good, out}, exitUnsupported, "unknown format name"},
		{[]string{"check", cut}, exitCorrupt, "truncated"},
		{[]string{"frobnicate"}, exitError, "unknown command"},
		{[]string{"info"}, exitError, "usage"},
	} {
		_, errOut, code := aerodisk(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("aerodisk %q: exit %d %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Fatalf("failed commands left files: %v", ents)
	}
}

func TestConvertCancelLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	src := testutil.BaseDisk(t, dir, "src.img", 8<<20, 3)
	outDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var o, e bytes.Buffer
	if code := run(ctx, []string{"convert", "-O", "aerospar", src, filepath.Join(outDir, "x")}, &o, &e); code == 0 || !strings.Contains(e.String(), "canceled") {
		t.Fatalf("cancelled convert: %d %s", code, e.String())
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Fatalf("cancelled convert left files: %v", ents)
	}
}

// TestCreateAeroSparReachesDataOffset: a blank AEROSPAR disk is the header,
// the zero table and zeros up to data_offset (Aero's readers refuse a file
// that ends before it): 1 MiB for 60 GiB at 1 MiB blocks; check passes.
func TestCreateAeroSparReachesDataOffset(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		size, blockSize string
		want            int64
	}{{"60G", "", 1 << 20}, {"1440K", "", 1 << 20}, {"20G", "4K", 64 + 8*(20<<30)/4096 + 4096 - (64+8*(20<<30)/4096)%4096}} {
		p := filepath.Join(dir, "blank-"+c.size+c.blockSize+".aerospar")
		args := []string{"create", "-O", "aerospar", "--size", c.size, p}
		if c.blockSize != "" {
			args = append(args, "--block-size", c.blockSize)
		}
		mustAerodisk(t, args...)
		b := readFile(t, p)
		dataOff := int64(binary.LittleEndian.Uint64(b[0x30:]))
		if int64(len(b)) != dataOff || dataOff != c.want {
			t.Fatalf("%s: file is %d bytes, data_offset %d, want %d", c.size, len(b), dataOff, c.want)
		}
		if out := mustAerodisk(t, "check", p); !strings.Contains(out, "No errors") {
			t.Fatalf("check: %s", out)
		}
	}
}

// TestCreateRefusesTableAeroCannotRead: 8 GiB at 512-byte blocks needs
// 16 Mi table entries; Aero's TS reader loads at most 8 Mi (a 64 MiB table).
// create and convert exit 1 with a reason and write nothing.
func TestCreateRefusesTableAeroCannotRead(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "big.img")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(8 << 30)
	f.Close()
	outDir := t.TempDir()
	out := filepath.Join(outDir, "out.aerospar")
	for _, args := range [][]string{
		{"create", "-O", "aerospar", "--block-size", "512", "--size", "8G", out},
		{"convert", "-O", "aerospar", "--block-size", "512", in, out},
	} {
		_, errOut, code := aerodisk(t, args...)
		if code != exitError || !strings.Contains(errOut, "block size") || !strings.Contains(errOut, "at least 1024") {
			t.Errorf("aerodisk %q: exit %d %q; want exit 1 naming the smallest block size", args, code, errOut)
		}
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Fatalf("refused commands left files: %v", ents)
	}
	// without --block-size a fitting one is chosen
	mustAerodisk(t, "create", "-O", "aerospar", "--size", "8G", out)
	mustAerodisk(t, "check", out)
}

// TestCheckAcceptsRustFreedSlot: after Aero's Rust discard_range a file has
// allocated_blocks 48 and 47 mapped entries; check accepts it and it
// converts to the right content.
func TestCheckAcceptsRustFreedSlot(t *testing.T) {
	dir := t.TempDir()
	const bs = 4096
	raw := make([]byte, 64*bs)
	for b := range 48 {
		for i := range bs {
			raw[b*bs+i] = byte(b + 1)
		}
	}
	rawPath := testutil.WriteFile(t, dir, "in.img", raw)
	spar := filepath.Join(dir, "in.aerospar")
	mustAerodisk(t, "convert", "-O", "aerospar", "--block-size", "4K", rawPath, spar)
	img := readFile(t, spar)
	if binary.LittleEndian.Uint64(img[0x38:]) != 48 {
		t.Fatal("want 48 blocks")
	}
	binary.LittleEndian.PutUint64(img[64+8*20:], 0) // what discard_range does to block 20
	clear(raw[20*bs : 21*bs])
	freed := testutil.WriteFile(t, dir, "freed.aerospar", img)
	want := checksum.Hex(crc32.ChecksumIEEE(raw))
	if out := mustAerodisk(t, "check", freed); !strings.Contains(out, "No errors") || !strings.Contains(out, want) {
		t.Fatalf("check: %s", out)
	}
	back := filepath.Join(dir, "back.img")
	mustAerodisk(t, "convert", "-O", "raw", freed, back)
	if !bytes.Equal(readFile(t, back), raw) {
		t.Fatal("content differs")
	}
	// a duplicate entry is still corrupt
	binary.LittleEndian.PutUint64(img[64+8*20:], binary.LittleEndian.Uint64(img[64+8*21:]))
	dup := testutil.WriteFile(t, dir, "dup.aerospar", img)
	if _, errOut, code := aerodisk(t, "check", dup); code != exitCorrupt || !strings.Contains(errOut, "duplicate") {
		t.Fatalf("duplicate: exit %d %s", code, errOut)
	}
}
