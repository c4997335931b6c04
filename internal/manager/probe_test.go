package manager_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aerodisk/internal/manager"
	"aerodisk/internal/testutil"
)

// TestProbe: what a page learns of a file before importing it — the format
// from the content (never the name), the default kind, keep or convert, and
// the refusals Import would give — matches what Import then does.
func TestProbe(t *testing.T) {
	dir := t.TempDir()
	m, _ := newManager(t, t.TempDir())
	fx := map[string]testutil.Fixture{}
	for _, f := range testutil.Fixtures(t, dir) {
		fx[f.Name] = f
	}
	renamed := testutil.WriteFile(t, dir, "looks-like.iso", must(readFile(fx["v3-512.qcow2"].Path)))
	for _, tc := range []struct {
		path, format, kind string
		convert, keep      bool
	}{
		{fx["base.img"].Path, "raw", "hdd", false, true},
		{fx["v3-512.qcow2"].Path, "qcow2", "hdd", true, true},
		{renamed, "qcow2", "hdd", true, true}, // the name says ISO; the content says qcow2
		{fx["dynamic.vhd"].Path, "vhd", "hdd", true, true},
		{fx["disc.iso"].Path, "iso", "cd", false, true},
		{fx["floppy.dc42"].Path, "dc42", "floppy", true, true},
	} {
		p, err := m.Probe(input(t, tc.path))
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if p.Format != tc.format || p.Kind != tc.kind || p.Convert != tc.convert || p.KeepAsIs != tc.keep || p.Convertible == (tc.format == "iso") {
			t.Errorf("%s: %+v", filepath.Base(tc.path), p)
		}
		d := must(m.Import(t.Context(), input(t, tc.path), manager.ImportOptions{Convert: p.Convert}))
		if d.Kind != p.Kind || d.SizeBytes != p.SizeBytes || d.SourceFormat != p.Format {
			t.Errorf("%s: imported %+v, probed %+v", filepath.Base(tc.path), d, p)
		}
	}
	// An overlay without its backing disk is refused as Import refuses it.
	if _, err := m.Probe(input(t, fx["chain2.qcow2"].Path)); manager.KindOf(err) != manager.KindNotFound {
		t.Errorf("overlay without its backing disk: %v", err)
	}
	odd := testutil.WriteFile(t, dir, "odd.img", make([]byte, 1000))
	if _, err := m.Probe(input(t, odd)); manager.KindOf(err) != manager.KindInvalid {
		t.Errorf("a 1000-byte raw file: %v", err)
	}
}

func TestParseDiskSize(t *testing.T) {
	for in, want := range map[string][2]int64{
		"60 GB": {60e9, 60e9}, "60G": {60 << 30, 60 << 30}, "1.5GB": {1.5e9, 1500000256}, "512 MiB": {512 << 20, 512 << 20},
		"1000": {1000, 1024}, "2 TiB": {2 << 40, 2 << 40},
	} {
		req, got, err := manager.ParseDiskSize(in)
		if err != nil || req != want[0] || got != want[1] {
			t.Errorf("ParseDiskSize(%q) = %d, %d, %v; want %v", in, req, got, err, want)
		}
	}
	for in, msg := range map[string]string{"lots": "is not a size", "0 MB": "above zero", "3 TB": "too big", "2.1 TiB": "too big"} {
		if _, _, err := manager.ParseDiskSize(in); manager.KindOf(err) != manager.KindInvalid || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseDiskSize(%q): %v, want an invalid argument saying %q", in, err, msg)
		}
	}
	l := (&manager.Manager{}).Limits()
	if l.MaxDiskBytes != manager.MaxDiskSize || l.SectorBytes != 512 || len(l.FloppySizes) == 0 || l.SizeUnits["GB"] != 1e9 || l.SizeUnits["G"] != 1<<30 {
		t.Errorf("limits %+v", l)
	}
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
