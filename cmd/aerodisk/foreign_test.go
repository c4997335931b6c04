package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aerodisk/internal/testutil"
)

// TestForeignFormatsExitUnsupported: a container aerodisk does not read
// (made by qemu-img) is refused by name with exit status 3 by every command
// that opens it, is never read as a raw disk, and convert writes nothing.
func TestForeignFormatsExitUnsupported(t *testing.T) {
	dir := t.TempDir()
	base := testutil.BaseDisk(t, dir, "base.img", 1<<20, 5)
	for _, c := range []struct {
		file, qfmt, opts, msg string
	}{
		{"disk.vmdk", "vmdk", "subformat=monolithicSparse", "VMDK images are not supported yet; convert with qemu-img convert -f vmdk -O qcow2"},
		{"stream.vmdk", "vmdk", "subformat=streamOptimized", "VMDK images are not supported yet"},
		{"disk.vhdx", "vhdx", "subformat=dynamic", "VHDX images are not supported yet; convert with qemu-img convert -f vhdx -O qcow2"},
	} {
		t.Run(c.file, func(t *testing.T) {
			in := filepath.Join(dir, c.file)
			testutil.QemuImg(t, "convert", "-f", "raw", "-O", c.qfmt, "-o", c.opts, base, in)
			outDir := t.TempDir()
			out := filepath.Join(outDir, "out.img")
			for _, args := range [][]string{
				{"info", in},
				{"info", "--json", in},
				{"convert", "-O", "raw", in, out},
				{"convert", "-O", "aerospar", in, out},
				{"convert", "-f", c.qfmt, "-O", "raw", in, out},
				{"check", in},
				{"checksum", in},
			} {
				stdout, stderr, code := aerodisk(t, args...)
				if code != exitUnsupported || !strings.Contains(stderr, c.msg) || stdout != "" {
					t.Errorf("aerodisk %q: exit %d, stdout %q, stderr %q; want exit %d and %q",
						args, code, stdout, stderr, exitUnsupported, c.msg)
				}
				if strings.Contains(stdout+stderr, "No errors were found") || strings.Contains(stdout+stderr, "format: raw") {
					t.Errorf("aerodisk %q took it for a raw disk: %s%s", args, stdout, stderr)
				}
			}
			if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
				t.Fatalf("convert left files: %v", ents)
			}
		})
	}
}
