package manager_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"aerodisk/internal/checksum"
	"aerodisk/internal/dirstore"
	"aerodisk/internal/gzipx"
	"aerodisk/internal/manager"
	"aerodisk/internal/testutil"
)

func newManager(t *testing.T, dir string) (*manager.Manager, *dirstore.Store) {
	t.Helper()
	st, err := dirstore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(st)
	if err != nil {
		t.Fatal(err)
	}
	return m, st
}

func input(t *testing.T, path string) *dirstore.Input {
	t.Helper()
	in, err := dirstore.OpenInput(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

func crcHex(b []byte) string { return checksum.Hex(crc32.ChecksumIEEE(b)) }

func exportBytes(t *testing.T, m *manager.Manager, id string, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := m.Export(context.Background(), id, manager.ExportOptions{Gzip: gz}, &buf); err != nil {
		t.Fatalf("export %s: %v", id, err)
	}
	if !gz {
		return buf.Bytes()
	}
	r, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return out
}

// files lists the directory's disk files (what a sweep or a leak would show).
func files(t *testing.T, st *dirstore.Store) []string {
	t.Helper()
	f, err := st.Files()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(f)
	return f
}

func TestCreateBlank(t *testing.T) {
	m, st := newManager(t, t.TempDir())
	d, err := m.CreateBlank(context.Background(), manager.BlankOptions{Name: "Big", SizeBytes: 60 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != "hdd" || d.Format != "aerospar" || d.SizeBytes != 60<<30 || d.Backend != "opfs" || d.FileName != d.ID+".aerospar" {
		t.Fatalf("meta %+v", d)
	}
	if want := checksum.Hex(checksum.ExtendZeros(0, 60<<30)); d.Checksum.Value != want || d.Checksum.Algorithm != "crc32" {
		t.Fatalf("checksum %+v, want %s", d.Checksum, want)
	}
	// The file reaches data_offset (Aero's readers refuse a shorter one):
	// 1 MiB for 60 GiB in 1 MiB blocks, and no more.
	usage, _, _ := st.Estimate()
	var catalogBytes int64
	for _, n := range []string{"metadata.json", "metadata.json.prev"} {
		if fi, err := os.Stat(filepath.Join(st.Dir(), n)); err == nil {
			catalogBytes += fi.Size()
		}
	}
	if d.FileSizeBytes != 1<<20 || d.StoredBytes > 1<<20 || usage-catalogBytes > 1<<20 {
		t.Fatalf("a blank 60 GB disk: file %d bytes, stored %d, usage %d (catalog %d)", d.FileSizeBytes, d.StoredBytes, usage, catalogBytes)
	}
	v, err := m.Verify(context.Background(), d.ID, nil)
	if err != nil || !v.OK || v.Checksum != d.Checksum.Value {
		t.Fatalf("verify %+v %v", v, err)
	}
	small, err := m.CreateBlank(context.Background(), manager.BlankOptions{Name: "Floppy", SizeBytes: 1474560, Kind: "floppy"})
	if err != nil {
		t.Fatal(err)
	}
	if got := exportBytes(t, m, small.ID, false); !bytes.Equal(got, make([]byte, 1474560)) {
		t.Fatal("blank export is not zeros")
	}
	if got := exportBytes(t, m, small.ID, true); len(got) != 1474560 || crcHex(got) != small.Checksum.Value {
		t.Fatal("blank gzip export differs")
	}
	for _, bad := range []manager.BlankOptions{
		{Name: "x", SizeBytes: 1000}, {Name: "x", SizeBytes: 0}, {Name: "x", SizeBytes: 4 << 40},
		{Name: "", SizeBytes: 512}, {Name: "x", SizeBytes: 512, Kind: "tape"},
	} {
		if _, err := m.CreateBlank(context.Background(), bad); manager.KindOf(err) != manager.KindInvalid {
			t.Errorf("%+v: %v (%s)", bad, err, manager.KindOf(err))
		}
	}
}

// TestImportMatchesQemuImg imports every reference image as-is and converted,
// and checks checksums and exports against qemu-img's raw output.
func TestImportMatchesQemuImg(t *testing.T) {
	fxDir := t.TempDir()
	m, st := newManager(t, t.TempDir())
	ctx := context.Background()
	for _, fx := range testutil.Fixtures(t, fxDir) {
		t.Run(fx.Name, func(t *testing.T) {
			want := fx.Want
			if fx.QemuFmt != "" {
				want = testutil.QemuRaw(t, fx.QemuFmt, fx.Path)
			}
			wantBytes, _ := os.ReadFile(want)
			srcBytes, _ := os.ReadFile(fx.Path)
			hasBacking := fx.Name == "chain2.qcow2"

			var phases []string
			progress := func(p manager.Progress) {
				if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
					phases = append(phases, p.Phase)
				}
				if p.ProcessedBytes > p.TotalBytes || p.TotalBytes <= 0 {
					t.Fatalf("progress %+v", p)
				}
			}
			conv, err := m.Import(ctx, input(t, fx.Path), manager.ImportOptions{Convert: true, Progress: progress})
			if hasBacking {
				if manager.KindOf(err) != manager.KindNotFound {
					t.Fatalf("overlay without its backing disk stored: %v", err)
				}
				return // covered by TestImportBackingChain
			}
			if err != nil {
				t.Fatal(err)
			}
			if conv.Checksum.Value != crcHex(wantBytes) || conv.SourceChecksum.Value != crcHex(srcBytes) || conv.SizeBytes != int64(len(wantBytes)) {
				t.Fatalf("converted meta %+v: want checksum %s source %s", conv, crcHex(wantBytes), crcHex(srcBytes))
			}
			if got := exportBytes(t, m, conv.ID, false); !bytes.Equal(got, wantBytes) {
				t.Fatal("raw export of the converted disk differs from qemu-img")
			}
			if got := exportBytes(t, m, conv.ID, true); !bytes.Equal(got, wantBytes) {
				t.Fatal("gzip export of the converted disk differs from qemu-img")
			}
			wantFormat := "aerospar"
			if fx.Name == "disc.iso" {
				wantFormat = "iso" // ISO stays ISO
			}
			if conv.Format != wantFormat || len(phases) == 0 {
				t.Fatalf("format %s phases %v", conv.Format, phases)
			}

			asis, err := m.Import(ctx, input(t, fx.Path), manager.ImportOptions{Name: "as is"})
			if err != nil {
				t.Fatal(err)
			}
			if asis.Checksum.Value != crcHex(wantBytes) || asis.SourceChecksum.Value != crcHex(srcBytes) {
				t.Fatalf("as-is meta %+v", asis)
			}
			f, err := st.Open(asis.FileName, false)
			if err != nil {
				t.Fatal(err)
			}
			stored := make([]byte, len(srcBytes))
			f.ReadAt(stored, 0)
			f.Close()
			if !bytes.Equal(stored, srcBytes) {
				t.Fatal("as-is import did not store the file unchanged")
			}
			if got := exportBytes(t, m, asis.ID, false); !bytes.Equal(got, wantBytes) {
				t.Fatal("raw export of the as-is disk differs from qemu-img")
			}
			v, err := m.Verify(ctx, asis.ID, nil)
			if err != nil || !v.OK {
				t.Fatalf("verify: %+v %v", v, err)
			}
			wantKind := map[string]string{"disc.iso": "cd", "floppy.dc42": "floppy"}[fx.Name]
			if wantKind == "" {
				wantKind = "hdd"
			}
			if asis.Kind != wantKind || conv.Kind != wantKind {
				t.Fatalf("kinds %s/%s, want %s", asis.Kind, conv.Kind, wantKind)
			}
		})
	}
	if leftover := len(files(t, st)); leftover != len(must(m.List())) {
		t.Fatalf("%d files for %d disks", leftover, len(must(m.List())))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestImportBackingChain(t *testing.T) {
	dir := t.TempDir()
	base := testutil.BaseDisk(t, dir, "base.raw", 4<<20, 1)
	bq := filepath.Join(dir, "base.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", base, bq)
	top := filepath.Join(dir, "top.qcow2")
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
	testutil.QemuIO(t, "qcow2", top, "write -P 0x5a 1M 64k")
	want, _ := os.ReadFile(testutil.QemuRaw(t, "qcow2", top))

	m, _ := newManager(t, t.TempDir())
	ctx := context.Background()
	if _, err := m.Import(ctx, input(t, bq), manager.ImportOptions{}); err != nil { // as-is, named "base"
		t.Fatal(err)
	}
	if _, err := m.Import(ctx, input(t, top), manager.ImportOptions{}); manager.KindOf(err) != manager.KindInvalid {
		t.Fatalf("as-is overlay: %v", err)
	}
	d, err := m.Import(ctx, input(t, top), manager.ImportOptions{Convert: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Checksum.Value != crcHex(want) || !bytes.Equal(exportBytes(t, m, d.ID, false), want) {
		t.Fatal("overlay over a stored backing disk converts wrong")
	}
}

// TestImportOldDiskCopy: DiskCopy images made by old tools — a data
// checksum that disagrees with the bytes, bytes after the tags — are
// imported (as is and converted), the oddities recorded as warnings.
func TestImportOldDiskCopy(t *testing.T) {
	dir := t.TempDir()
	data := testutil.MixedData(819200, 31)
	file := append(testutil.DC42("MacWrite 4.5", data, nil), make([]byte, 44)...)
	binary.BigEndian.PutUint32(file[0x48:], 0x12345678)
	p := testutil.WriteFile(t, dir, "macwrite.dc42", file)
	m, _ := newManager(t, t.TempDir())
	for _, convert := range []bool{false, true} {
		d, err := m.Import(context.Background(), input(t, p), manager.ImportOptions{Convert: convert})
		if err != nil {
			t.Fatalf("convert=%v: %v", convert, err)
		}
		if len(d.Warnings) != 2 || !strings.Contains(d.Warnings[0], "checksum") || !strings.Contains(d.Warnings[1], "44 bytes") {
			t.Errorf("convert=%v: warnings %q", convert, d.Warnings)
		}
		if d.Checksum.Value != crcHex(data) || !bytes.Equal(exportBytes(t, m, d.ID, false), data) || d.Kind != "floppy" {
			t.Errorf("convert=%v: %+v does not read back as its data", convert, d)
		}
		if v := must(m.Verify(context.Background(), d.ID, nil)); !v.OK {
			t.Errorf("convert=%v: verify %+v", convert, v)
		}
	}
}

func TestBadInputLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	raw := testutil.BaseDisk(t, dir, "d.raw", 2<<20, 2)
	q := filepath.Join(dir, "d.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", raw, q)
	b, _ := os.ReadFile(q)
	cut := testutil.WriteFile(t, dir, "cut.qcow2", b[:len(b)-70000])
	badDC := testutil.DC42("x", make([]byte, 409600), nil)
	binary.BigEndian.PutUint32(badDC[0x44:], 7) // a damaged header: 7 tag bytes
	dc := testutil.WriteFile(t, dir, "bad.dc42", badDC)
	odd := testutil.WriteFile(t, dir, "odd.img", make([]byte, 1000))

	m, st := newManager(t, t.TempDir())
	keep, _ := m.CreateBlank(context.Background(), manager.BlankOptions{Name: "keep", SizeBytes: 1 << 20})
	for _, tc := range []struct {
		path    string
		convert bool
		name    manager.ErrorKind
	}{
		{cut, true, manager.KindCorrupt}, {cut, false, manager.KindCorrupt},
		{dc, true, manager.KindCorrupt}, {dc, false, manager.KindCorrupt},
		{odd, false, manager.KindInvalid},
	} {
		_, err := m.Import(context.Background(), input(t, tc.path), manager.ImportOptions{Convert: tc.convert})
		if got := manager.KindOf(err); got != tc.name {
			t.Errorf("%s convert=%v: %v (%s), want %s", filepath.Base(tc.path), tc.convert, err, got, tc.name)
		}
	}
	if l := must(m.List()); len(l) != 1 || l[0].ID != keep.ID {
		t.Fatalf("catalog changed: %v", l)
	}
	if f := files(t, st); len(f) != 1 || f[0] != keep.FileName {
		t.Fatalf("files left: %v", f)
	}
}

// cancelAfter cancels ctx once progress passes n bytes.
func TestAbortMidImportLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	raw := testutil.BaseDisk(t, dir, "big.raw", 64<<20, 3)
	m, st := newManager(t, t.TempDir())
	for _, conv := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := m.Import(ctx, input(t, raw), manager.ImportOptions{Convert: conv, Progress: func(p manager.Progress) {
			if p.ProcessedBytes > 8<<20 {
				cancel()
			}
		}})
		cancel()
		if manager.KindOf(err) != manager.KindAbort {
			t.Fatalf("convert=%v: %v", conv, err)
		}
	}
	if len(files(t, st)) != 0 || len(must(m.List())) != 0 {
		t.Fatalf("abort left %v", files(t, st))
	}
}

func TestQuota(t *testing.T) {
	dir := t.TempDir()
	raw := testutil.BaseDisk(t, dir, "d.raw", 8<<20, 4)
	m, st := newManager(t, t.TempDir())
	st.Quota = 4 << 20
	_, err := m.Import(context.Background(), input(t, raw), manager.ImportOptions{})
	if manager.KindOf(err) != manager.KindQuota {
		t.Fatalf("import over quota: %v", err)
	}
	// A quota hit mid-import (the estimate said it fits) removes the partial file.
	st.Quota = 0
	_, err = m.Import(context.Background(), &growingQuota{Input: input(t, raw), st: st}, manager.ImportOptions{})
	if manager.KindOf(err) != manager.KindQuota {
		t.Fatalf("mid-import quota: %v", err)
	}
	if len(files(t, st)) != 0 || len(must(m.List())) != 0 {
		t.Fatalf("quota failure left %v", files(t, st))
	}
}

// growingQuota sets a small quota once the import has started streaming,
// the way another tab's writes can eat the space an estimate promised.
type growingQuota struct {
	*dirstore.Input
	st *dirstore.Store
}

func (g *growingQuota) Stream() (io.ReadCloser, error) {
	g.st.Quota = 2 << 20
	return g.Input.Stream()
}

func TestMountsRenameDelete(t *testing.T) {
	dir := t.TempDir()
	content := filepath.Join(dir, "iso")
	os.Mkdir(content, 0o755)
	testutil.WriteFile(t, content, "A.TXT", []byte("a"))
	iso := filepath.Join(dir, "a.iso")
	testutil.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-o", iso, content)
	raw := testutil.BaseDisk(t, dir, "d.raw", 1<<20, 5)
	q := filepath.Join(dir, "d.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", raw, q)

	m, st := newManager(t, t.TempDir())
	ctx := context.Background()
	hdd := must(m.CreateBlank(ctx, manager.BlankOptions{Name: "hdd", SizeBytes: 1 << 20}))
	cd := must(m.Import(ctx, input(t, iso), manager.ImportOptions{}))
	qc := must(m.Import(ctx, input(t, q), manager.ImportOptions{}))
	s := func(v string) *string { return &v }

	if _, err := m.SetMounts(manager.MountChange{SetHdd: true, HddID: s(qc.ID)}); manager.KindOf(err) != manager.KindInvalid {
		t.Fatalf("qcow2 as HDD: %v", err)
	}
	if _, err := m.SetMounts(manager.MountChange{SetCd: true, CdID: s(hdd.ID)}); manager.KindOf(err) != manager.KindInvalid {
		t.Fatalf("HDD as CD: %v", err)
	}
	if _, err := m.SetMounts(manager.MountChange{SetHdd: true, HddID: s("nope")}); manager.KindOf(err) != manager.KindNotFound {
		t.Fatalf("missing: %v", err)
	}
	got, err := m.SetMounts(manager.MountChange{SetHdd: true, HddID: s(hdd.ID), SetCd: true, CdID: s(cd.ID)})
	if err != nil || *got.HddID != hdd.ID || *got.CdID != cd.ID {
		t.Fatalf("%+v %v", got, err)
	}
	if d := must(m.Get(hdd.ID)); d.LastUsedAtMs < hdd.LastUsedAtMs {
		t.Fatal("lastUsedAtMs not updated")
	}
	if l := must(m.List()); l[0].ID != hdd.ID && l[0].ID != cd.ID {
		t.Fatalf("mounted disks are not listed first: %v", l[0].Name)
	}
	// A second manager on the same directory sees the mounts (a reload).
	m2, _ := newManager(t, st.Dir())
	if mm := must(m2.Mounts()); *mm.HddID != hdd.ID || *mm.CdID != cd.ID {
		t.Fatal("mounts did not persist")
	}

	if d, err := m.Rename(cd.ID, "Install disc"); err != nil || d.Name != "Install disc" || must(m2.Get(cd.ID)).Name != "Install disc" {
		t.Fatalf("rename: %v", err)
	}
	if _, err := m.Rename(cd.ID, " "); manager.KindOf(err) != manager.KindInvalid {
		t.Fatal(err)
	}

	// A disk held open elsewhere (the emulator's tab) cannot be deleted.
	held, err := st.Open(hdd.FileName, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(hdd.ID); manager.KindOf(err) != manager.KindInUse {
		t.Fatalf("delete in use: %v", err)
	}
	held.Close()
	if err := m.Delete(hdd.ID); err != nil {
		t.Fatal(err)
	}
	if mm := must(m.Mounts()); mm.HddID != nil || *mm.CdID != cd.ID {
		t.Fatalf("delete did not clear its mount only: %+v", mm)
	}
	if _, err := m.Get(hdd.ID); manager.KindOf(err) != manager.KindNotFound {
		t.Fatal(err)
	}
	for _, f := range files(t, st) {
		if f == hdd.FileName {
			t.Fatal("deleted disk's file remains")
		}
	}
}

// TestSweepOnlyOwnGarbage: the start-up sweep removes a dead tab's pending
// import and nothing else — not a file no record names (another tool's, or
// one whose record was lost), not a pending import whose tab still lives.
func TestSweepOnlyOwnGarbage(t *testing.T) {
	dir := t.TempDir()
	m, st := newManager(t, dir)
	d := must(m.CreateBlank(context.Background(), manager.BlankOptions{Name: "kept", SizeBytes: 1 << 20}))
	testutil.WriteFile(t, dir, "0000-unnamed.img", make([]byte, 4096))
	testutil.WriteFile(t, dir, d.ID+".cache.aerospar", []byte("another tool's cache"))
	busy, err := st.Create("1111-importing-now.img") // this tab, mid-import
	if err != nil {
		t.Fatal(err)
	}
	dead := must(dirstore.New(dir))
	if _, err := dead.Create("2222-killed-tab.img"); err != nil {
		t.Fatal(err)
	}
	dead.Kill()
	m2, _ := newManager(t, dir) // start-up sweeps
	got := fmt.Sprint(files(t, st))
	want := []string{"0000-unnamed.img", d.ID + ".cache.aerospar", d.FileName}
	sort.Strings(want)
	if got != fmt.Sprint(want) {
		t.Fatalf("after sweep: %s, want %v", got, want)
	}
	if r := m2.Report(); fmt.Sprint(r.Swept) != "[2222-killed-tab.img]" {
		t.Errorf("report %+v", r)
	}
	if p := pendingLeft(t, dir); fmt.Sprint(p) != "[1111-importing-now.img"+dirstore.PendingSuffix+"]" {
		t.Errorf("pending files %v: the live import must stay", p)
	}
	busy.Discard()
}

// TestTwoTabsLoseNothing: two managers on one directory (two tabs) import
// and rename at the same time; every update survives.
func TestTwoTabsLoseNothing(t *testing.T) {
	dir := t.TempDir()
	tabs := []*manager.Manager{}
	for range 2 {
		m, _ := newManager(t, dir)
		tabs = append(tabs, m)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := tabs[i%2].CreateBlank(context.Background(), manager.BlankOptions{Name: fmt.Sprint("disk ", i), SizeBytes: 1 << 20})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(must(tabs[0].List())); n != 10 {
		t.Fatalf("%d disks listed after 10 concurrent creates", n)
	}
}

// TestParallelGzipExport: with a helper compressor (in the browser, the
// helper worker's), gzip exports decode to the same bytes.
func TestParallelGzipExport(t *testing.T) {
	dir := t.TempDir()
	raw := testutil.BaseDisk(t, dir, "d.raw", 13<<20+512, 9)
	want, _ := os.ReadFile(raw)
	m, _ := newManager(t, t.TempDir())
	m.GzipHelpers = make(chan gzipx.Compressor, 2)
	for range 2 {
		helper, err := gzipx.NewSegmentCompressor(gzipx.DefaultLevel)
		if err != nil {
			t.Fatal(err)
		}
		m.GzipHelpers <- helper
	}
	d := must(m.Import(context.Background(), input(t, raw), manager.ImportOptions{Convert: true}))
	for range 2 { // the helper is returned after each export
		if got := exportBytes(t, m, d.ID, true); !bytes.Equal(got, want) {
			t.Fatal("parallel gzip export differs")
		}
		if len(m.GzipHelpers) != 2 {
			t.Fatal("the helper compressor was not returned")
		}
	}
}

// TestSparseBackend runs the paths a sparse backend (IndexedDB) takes over a
// directory whose files keep their holes: a blank disk is a raw file that
// stores nothing, a converted import is raw, and both read back exactly.
func TestSparseBackend(t *testing.T) {
	st, err := dirstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st.SparseFiles = true
	m, err := manager.New(st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d, err := m.CreateBlank(ctx, manager.BlankOptions{Name: "Big", SizeBytes: 60 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != "raw" || d.FileName != d.ID+".img" || d.FileSizeBytes != 60<<30 || d.StoredBytes > 64<<10 {
		t.Fatalf("blank on a sparse backend: %+v", d)
	}
	if v, err := m.Verify(ctx, d.ID, nil); err != nil || !v.OK {
		t.Fatalf("verify %+v %v", v, err)
	}
	dir := t.TempDir()
	base := testutil.BaseDisk(t, dir, "base.img", 8<<20, 7)
	qcow := filepath.Join(dir, "disk.qcow2")
	testutil.QemuImg(t, "convert", "-c", "-O", "qcow2", base, qcow)
	want, _ := os.ReadFile(base)
	conv, err := m.Import(ctx, input(t, qcow), manager.ImportOptions{Convert: true})
	if err != nil {
		t.Fatal(err)
	}
	if conv.Format != "raw" || conv.Checksum.Value != crcHex(want) || conv.StoredBytes > conv.SizeBytes {
		t.Fatalf("converted: %+v, want checksum %s", conv, crcHex(want))
	}
	if got := exportBytes(t, m, conv.ID, false); !bytes.Equal(got, want) {
		t.Fatal("export differs from the source")
	}
}
