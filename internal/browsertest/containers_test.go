package browsertest

// Containers people bring that are not plain disks: DiskCopy images made by
// old tools (read, with what was odd recorded and shown), and containers
// this manager does not read yet (refused by name, never taken for raw).

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aerodisk/internal/testutil"
)

// oldDiskCopy writes a DiskCopy 4.2 image as old tools left them: a data
// checksum that disagrees with the bytes and 44 zero bytes after the tags.
// It returns the file name and the CRC32 of its data.
func oldDiskCopy(t *testing.T, fs *fixtureSet) (string, string) {
	t.Helper()
	data := testutil.MixedData(819200, 41)
	file := append(testutil.DC42("GS/OS System", data, nil), make([]byte, 44)...)
	binary.BigEndian.PutUint32(file[0x48:], 0xdeadbeef)
	fs.Add(t, "gsos.dc42", file)
	return "gsos.dc42", crcBytes(data)
}

// TestOldDiskCopy imports an old tool's DiskCopy image as is and
// converted: both read its data, and record the checksum disagreement and
// the ignored bytes as warnings; a damaged header is still refused.
func TestOldDiskCopy(t *testing.T) { eachBackend(t, testOldDiskCopy) }

func testOldDiskCopy(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs := newFixtures(t)
	name, want := oldDiskCopy(t, fs)
	for _, convert := range []bool{false, true} {
		d := importFixture(t, p, fs, name, "gsos", convert)
		var warnings []string
		mustEval(t, p, `return (await dm.getDisk(args[0])).warnings || [];`, &warnings, d.ID)
		if len(warnings) != 2 || !strings.Contains(warnings[0], "checksum") || !strings.Contains(warnings[1], "44 bytes") {
			t.Errorf("convert=%v: warnings %q", convert, warnings)
		}
		if d.Kind != "floppy" || d.Checksum == nil || d.Checksum.Value != want || exportSum(t, p, d.ID, false).CRC32 != want {
			t.Errorf("convert=%v: %+v, want the data's checksum %s", convert, d, want)
		}
	}
	bad := testutil.DC42("x", make([]byte, 409600), nil)
	binary.BigEndian.PutUint32(bad[0x44:], 7) // 7 tag bytes: a damaged header
	fs.Add(t, "damaged.dc42", bad)
	wantErrName(t, p, "CorruptImageError", `return dm.importDisk(await H.fixture(args[0]));`, fs.URLPath("damaged.dc42"))
}

// TestPageShowsWarnings: the page marks a disk that has warnings, and says
// them.
func TestPageShowsWarnings(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	fs := newFixtures(t)
	name, _ := oldDiskCopy(t, fs)
	chooseFile(t, p, filepath.Join(fs.Dir, name))
	must(t, p.Click("#import-button"))
	waitRow(t, p, "gsos", time.Minute)
	var badge struct {
		Text, Title string
	}
	mustEval(t, p, `const b = document.querySelector('#disks tr[data-name="gsos"] .disk-warnings');
		return b ? { Text: b.textContent, Title: b.title } : {};`, &badge)
	if badge.Text != "2 notes" || !strings.Contains(badge.Title, "checksum") || !strings.Contains(badge.Title, "44 bytes") {
		t.Errorf("warnings badge %+v", badge)
	}
}

// TestForeignContainersRefused: containers qemu-img makes that this manager
// does not read yet (VMDK, VHDX, VDI, QED) are refused by name on import,
// as is and converted, and nothing is stored.
func TestForeignContainersRefused(t *testing.T) { eachBackend(t, testForeignContainersRefused) }

func testForeignContainersRefused(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs := newFixtures(t)
	base := testutil.BaseDisk(t, fs.Dir, "base.img", 2<<20, 8)
	before := storedNames(t, p)
	for _, c := range []struct{ file, fmt, opts, word string }{
		{"disk.vmdk", "vmdk", "subformat=monolithicSparse", "VMDK"},
		{"stream.vmdk", "vmdk", "subformat=streamOptimized", "VMDK"},
		{"disk.vhdx", "vhdx", "subformat=dynamic", "VHDX"},
		{"disk.vdi", "vdi", "static=off", "VDI"},
		{"disk.qed", "qed", "cluster_size=65536", "QED"},
	} {
		testutil.QemuImg(t, "convert", "-f", "raw", "-O", c.fmt, "-o", c.opts, base, filepath.Join(fs.Dir, c.file))
		for _, method := range []string{"importDisk", "importDiskConverted"} {
			e := wantErrName(t, p, "UnsupportedFormatError", `return dm[args[1]](await H.fixture(args[0]));`, fs.URLPath(c.file), method)
			if !strings.Contains(e.Message, c.word) {
				t.Errorf("%s %s: %q does not name %s", c.file, method, e.Message, c.word)
			}
		}
	}
	if l := listDisks(t, p); len(l) != 0 {
		t.Errorf("refused containers listed: %+v", l)
	}
	if now := storedNames(t, p); strings.Join(now, ",") != strings.Join(before, ",") {
		t.Errorf("store after refusals %q, was %q", now, before)
	}
}
