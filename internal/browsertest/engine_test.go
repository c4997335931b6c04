package browsertest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"aerodisk/internal/checksum"
	"aerodisk/internal/testutil"
)

// The DiskManager API as the tests see it (web/disk_manager.d.ts).
type sum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

type diskMeta struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Backend        string `json:"backend"`
	Kind           string `json:"kind"`
	Format         string `json:"format"`
	FileName       string `json:"fileName"`
	SizeBytes      int64  `json:"sizeBytes"`
	CreatedAtMs    int64  `json:"createdAtMs"`
	LastUsedAtMs   int64  `json:"lastUsedAtMs"`
	Checksum       *sum   `json:"checksum"`
	SourceFileName string `json:"sourceFileName"`
	SourceFormat   string `json:"sourceFormat"`
	SourceChecksum *sum   `json:"sourceChecksum"`
}

type mounts struct {
	HddID *string `json:"hddId"`
	CdID  *string `json:"cdId"`
}

type streamSum struct {
	CRC32  string `json:"crc32"`
	Bytes  int64  `json:"bytes"`
	Chunks int    `json:"chunks"`
}

type opfsEntry struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Size int64  `json:"size"`
}

func crcHex(v uint32) string { return fmt.Sprintf("%08x", v) }

// checkMeta checks the fields every DiskMeta must have.
func checkMeta(t *testing.T, be string, d diskMeta, name, kind, format string, size int64, crc string) {
	t.Helper()
	if d.ID == "" || d.Name != name || d.Backend != be || d.Kind != kind || d.Format != format || d.SizeBytes != size {
		t.Errorf("meta %+v, want name %q kind %s format %s size %d", d, name, kind, format, size)
	}
	if d.Checksum == nil || d.Checksum.Algorithm != "crc32" || d.Checksum.Value != crc {
		t.Errorf("%s: checksum %+v, want crc32 %s", name, d.Checksum, crc)
	}
	if d.FileName == "" || strings.ContainsAny(d.FileName, "/\\") {
		t.Errorf("%s: fileName %q", name, d.FileName)
	}
	now := time.Now().UnixMilli()
	if d.CreatedAtMs < now-10*60*1000 || d.CreatedAtMs > now+1000 || d.LastUsedAtMs < d.CreatedAtMs {
		t.Errorf("%s: createdAtMs %d lastUsedAtMs %d (now %d)", name, d.CreatedAtMs, d.LastUsedAtMs, now)
	}
}

// deleteWhenReleasedJS defines deleteWhenReleased(dm, id): deleteDisk,
// retried while the disk is in use (a stream just cancelled releases it a
// moment later, when its cancel reaches the worker), for up to 30 s.
const deleteWhenReleasedJS = `const deleteWhenReleased = async (dm, id) => {
		const deadline = Date.now() + 30000;
		for (;;) {
			try { return await dm.deleteDisk(id); }
			catch (e) { if (e.name !== "InUseError" || Date.now() > deadline) throw e; }
			await H.sleep(10);
		}
	};
	`

func listDisks(t *testing.T, p *Page) []diskMeta {
	t.Helper()
	var l []diskMeta
	mustEval(t, p, `return dm.listDisks();`, &l)
	return l
}

// storedFiles lists what the page's backend stores per disk: the files in
// aero/disks (OPFS), or the chunk ids with their bytes (IndexedDB).
func storedFiles(t *testing.T, p *Page) []opfsEntry {
	t.Helper()
	var l []opfsEntry
	mustEval(t, p, `return H.storedFiles();`, &l)
	return l
}

// diskFiles are the stems (disk ids) of the stored files.
func diskFiles(t *testing.T, p *Page) []string {
	t.Helper()
	var names []string
	for _, e := range storedFiles(t, p) {
		names = append(names, stem(e.Name))
	}
	return names
}

// stem is a file name up to its first dot: the disk id.
func stem(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

// sparseFormat is the format that blank and converted disks get: AEROSPAR
// on OPFS, raw on IndexedDB, whose chunks are sparse already.
func sparseFormat(be, format string) string {
	if format == "aerospar" && be == "idb" {
		return "raw"
	}
	return format
}

// checkChunks checks every IndexedDB chunk record: a Uint8Array of at most
// 4 MiB that owns its buffer (a view over the wasm memory would have stored
// the whole memory), holding a non-zero byte.
func checkChunks(t *testing.T, p *Page) {
	t.Helper()
	var chunks []struct {
		ID          string `json:"id"`
		Index       int64  `json:"index"`
		Bytes       int64  `json:"bytes"`
		IsView      bool   `json:"isView"`
		BufferBytes int64  `json:"bufferBytes"`
		Zero        bool   `json:"zero"`
	}
	mustEval(t, p, `return H.idbChunks();`, &chunks)
	if len(chunks) == 0 {
		t.Error("no chunks stored")
	}
	for _, c := range chunks {
		if !c.IsView || c.Bytes <= 0 || c.Bytes > 4<<20 || c.BufferBytes != c.Bytes || c.Zero {
			t.Errorf("chunk %+v", c)
		}
	}
}

// storedChunkBytes is what IndexedDB stores for a file kept as is: its
// 4 MiB chunks that hold a non-zero byte.
func storedChunkBytes(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for off := 0; off < len(b); off += 4 << 20 {
		c := b[off:min(off+4<<20, len(b))]
		if !bytes.Equal(c, make([]byte, len(c))) {
			n += int64(len(c))
		}
	}
	return n
}

// importFixture imports a fixture through fetch → File.
func importFixture(t *testing.T, p *Page, fs *fixtureSet, file, name string, convert bool) diskMeta {
	t.Helper()
	method := "importDisk"
	if convert {
		method = "importDiskConverted"
	}
	var d diskMeta
	mustEval(t, p, fmt.Sprintf(`const f = await H.fixture(args[0]);
		return dm.%s(f, { name: args[1] });`, method), &d, fs.URLPath(file), name)
	return d
}

// exportSum exports a disk in the page and hashes the stream there.
func exportSum(t *testing.T, p *Page, id string, gzip bool) streamSum {
	t.Helper()
	var s streamSum
	mustEval(t, p, `const s = await dm.exportDisk(args[0], { gzip: args[1] });
		return H.crc32Stream(args[1] ? H.gunzip(s) : s);`, &s, id, gzip)
	return s
}

// expectRaw returns the expected logical content of a reference fixture
// (referenceFixtures): qemu-img's raw conversion, or the fixture's Want file.
func expectRaw(t *testing.T, f testutil.Fixture) string {
	t.Helper()
	if f.QemuFmt == "" {
		return f.Want
	}
	if f.QemuFmt == "raw" {
		return f.Path
	}
	return referenceRaw(t, f)
}

func TestOpen(t *testing.T) { eachBackend(t, testOpen) }

func testOpen(t *testing.T, be string) {
	requireWasm(t)
	s := sharedSession(t)
	s.Backend = be
	p := newPage(t, s, "page")
	var r struct {
		Backend string     `json:"backend"`
		Disks   []diskMeta `json:"disks"`
		Mounts  mounts     `json:"mounts"`
		Info    struct {
			Usage     float64 `json:"usage"`
			Quota     float64 `json:"quota"`
			Persisted *bool   `json:"persisted"`
		} `json:"info"`
		Stats map[string]float64 `json:"stats"`
		Bad   *JSError           `json:"bad"`
	}
	// "auto" takes OPFS where sync access handles exist and IndexedDB where
	// they do not (simulated by hiding them in the worker).
	mustEval(t, p, `const dm = await H.open({ backend: "auto", _simulateNoSyncAccessHandles: args[0] === "idb" });
		return { backend: dm.backend, disks: await dm.listDisks(), mounts: await dm.getMounts(),
			info: await dm.storageInfo(), stats: await dm._debugStats(),
			bad: await H.errorOf(() => H.open({ backend: "floppy" })) };`, &r, be)
	if r.Backend != be || len(r.Disks) != 0 || r.Mounts.HddID != nil || r.Mounts.CdID != nil {
		t.Errorf("open: %+v", r)
	}
	if r.Info.Quota <= 0 || r.Info.Persisted == nil {
		t.Errorf("storageInfo: %+v", r.Info)
	}
	if r.Bad == nil || r.Bad.Name != "InvalidArgumentError" {
		t.Errorf("open({backend: 'floppy'}) rejected with %+v, want InvalidArgumentError", r.Bad)
	}
	t.Logf("debug stats after open: %v", r.Stats)
	if r.Stats["wasmMemoryBytes"] <= 0 || r.Stats["peakWasmMemoryBytes"] < r.Stats["wasmMemoryBytes"] {
		t.Errorf("_debugStats: %v", r.Stats)
	}
}

func TestBlankCreate(t *testing.T) { eachBackend(t, testBlankCreate) }

func testBlankCreate(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	for _, c := range []struct {
		name string
		size int64
		kind string // "" = default
	}{
		{"blank 64M", 64 << 20, ""},
		{"floppy", 1474560, "floppy"},
		{"big 60G", 60_000_000_000, "hdd"},
	} {
		var d diskMeta
		mustEval(t, p, `return dm.createBlankDisk(args[0].kind ? { name: args[0].name, sizeBytes: args[0].size, kind: args[0].kind } : { name: args[0].name, sizeBytes: args[0].size });`,
			&d, map[string]any{"name": c.name, "size": c.size, "kind": c.kind})
		kind := c.kind
		if kind == "" {
			kind = "hdd"
		}
		want := crcHex(checksum.ExtendZeros(0, c.size))
		checkMeta(t, be, d, c.name, kind, sparseFormat(be, "aerospar"), c.size, want)
		var v struct {
			OK       bool   `json:"ok"`
			Checksum string `json:"checksum"`
		}
		mustEval(t, p, `return dm.verifyDisk(args[0]);`, &v, d.ID)
		if !v.OK || v.Checksum != want {
			t.Errorf("%s: verifyDisk %+v, want ok %s", c.name, v, want)
		}
		if c.size <= 64<<20 {
			if s := exportSum(t, p, d.ID, false); s.Bytes != c.size || s.CRC32 != want {
				t.Errorf("%s: raw export %+v, want %d bytes crc %s", c.name, s, c.size, want)
			}
		}
		// A blank disk stores its header and table only, whatever its size
		// (on IndexedDB, nothing).
		for _, e := range storedFiles(t, p) {
			if stem(e.Name) == d.ID && (e.Size > 1<<20 || be == "idb") {
				t.Errorf("%s: a blank disk of %d bytes stores %d bytes", c.name, c.size, e.Size)
			}
		}
	}
	if l := listDisks(t, p); len(l) != 3 {
		t.Errorf("listDisks: %d disks", len(l))
	}
	for _, bad := range []map[string]any{
		{"name": "zero", "sizeBytes": 0},
		{"name": "odd", "sizeBytes": 1000},
		{"name": "negative", "sizeBytes": -512},
		{"name": "fraction", "sizeBytes": 512.5},
		{"name": "", "sizeBytes": 512},
		{"name": "tape", "sizeBytes": 512, "kind": "tape"},
	} {
		t.Run(fmt.Sprint(bad["name"], bad["sizeBytes"]), func(t *testing.T) {
			wantErrName(t, p, "InvalidArgumentError", `return dm.createBlankDisk(args[0]);`, bad)
		})
	}
	if l := listDisks(t, p); len(l) != 3 {
		t.Errorf("listDisks after refused creates: %d disks", len(l))
	}
}

func TestImportAsIs(t *testing.T) { eachBackend(t, testImportAsIs) }

func testImportAsIs(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs := referenceFixtures(t)
	for _, c := range []struct{ file, kind, format string }{
		{"base.img", "hdd", "raw"},
		{"disc.iso", "cd", "iso"},
		{"zlib.qcow2", "hdd", "qcow2"}, // a container kept as is: checksum from a pass over the stored copy
		{"dynamic.vhd", "hdd", "vhd"},
	} {
		t.Run(c.file, func(t *testing.T) {
			f := fs.All[c.file]
			want := expectRaw(t, f)
			d := importFixture(t, p, fs, c.file, "as-is "+c.file, false)
			checkMeta(t, be, d, "as-is "+c.file, c.kind, c.format, fileSize(t, want), crcFile(t, want))
			if d.SourceChecksum == nil || d.SourceChecksum.Value != crcFile(t, f.Path) || d.SourceFileName != c.file {
				t.Errorf("source: %q %+v, want %s", d.SourceFileName, d.SourceChecksum, crcFile(t, f.Path))
			}
			// Stored as is: the OPFS file is the upload, byte for byte in
			// size; IndexedDB holds the upload's chunks that are not all zeros.
			wantStored := fileSize(t, f.Path)
			if be == "idb" {
				wantStored = storedChunkBytes(t, f.Path)
			}
			found := false
			for _, e := range storedFiles(t, p) {
				if stem(e.Name) == d.ID {
					found = true
					if e.Size != wantStored {
						t.Errorf("stored %d bytes, want %d (uploaded %d)", e.Size, wantStored, fileSize(t, f.Path))
					}
				}
			}
			if !found {
				t.Errorf("%s is not stored", d.FileName)
			}
			if be == "idb" {
				checkChunks(t, p)
			}
			if s := exportSum(t, p, d.ID, false); s.CRC32 != d.Checksum.Value || s.Bytes != d.SizeBytes {
				t.Errorf("raw export %+v, want crc %s %d bytes", s, d.Checksum.Value, d.SizeBytes)
			}
		})
	}
}

func TestImportConverted(t *testing.T) { eachBackend(t, testImportConverted) }

func testImportConverted(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs := referenceFixtures(t)
	for _, c := range []struct{ file, kind, format, sourceFormat string }{
		{"zlib.qcow2", "hdd", "aerospar", "qcow2"}, // compressed clusters
		{"zstd.qcow2", "hdd", "aerospar", "qcow2"},
		{"v3-512.qcow2", "hdd", "aerospar", "qcow2"},
		{"zero-clusters.qcow2", "hdd", "aerospar", "qcow2"},
		{"dynamic.vhd", "hdd", "aerospar", "vhd"},
		{"fixed.vhd", "hdd", "aerospar", "vhd"},
		{"floppy.dc42", "floppy", "aerospar", "dc42"},
		{"base.img", "hdd", "aerospar", "raw"},
		{"disc.iso", "cd", "iso", "iso"}, // ISO stays ISO
	} {
		t.Run(c.file, func(t *testing.T) {
			f := fs.All[c.file]
			want := expectRaw(t, f)
			var r struct {
				Disk  diskMeta `json:"disk"`
				Calls []struct {
					Phase     string  `json:"phase"`
					Processed float64 `json:"processedBytes"`
					Total     float64 `json:"totalBytes"`
				} `json:"calls"`
			}
			mustEval(t, p, `const f = await H.fixture(args[0]); const pr = H.progress();
				const disk = await dm.importDiskConverted(f, { name: args[1], onProgress: pr.onProgress });
				return { disk, calls: pr.calls };`, &r, fs.URLPath(c.file), "conv "+c.file)
			d := r.Disk
			checkMeta(t, be, d, "conv "+c.file, c.kind, sparseFormat(be, c.format), fileSize(t, want), crcFile(t, want))
			if d.SourceChecksum == nil || d.SourceChecksum.Value != crcFile(t, f.Path) || d.SourceFormat != c.sourceFormat || d.SourceFileName != c.file {
				t.Errorf("source: %q %q %+v, want %s %s", d.SourceFileName, d.SourceFormat, d.SourceChecksum, c.sourceFormat, crcFile(t, f.Path))
			}
			if len(r.Calls) == 0 {
				t.Errorf("no progress")
			}
			for _, pc := range r.Calls {
				if !slices.Contains([]string{"import", "convert", "checksum"}, pc.Phase) || pc.Processed > pc.Total {
					t.Errorf("progress %+v", pc)
				}
			}
			if s := exportSum(t, p, d.ID, false); s.CRC32 != d.Checksum.Value || s.Bytes != d.SizeBytes {
				t.Errorf("raw export %+v, want crc %s %d bytes", s, d.Checksum.Value, d.SizeBytes)
			}
		})
	}
}

func TestExportRoundTrip(t *testing.T) { eachBackend(t, testExportRoundTrip) }

func testExportRoundTrip(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs := referenceFixtures(t)
	base := fs.All["base.img"].Path
	want, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	asIs := importFixture(t, p, fs, "base.img", "raw", false)
	conv := importFixture(t, p, fs, "base.img", "sparse", true)
	for _, d := range []diskMeta{asIs, conv} {
		t.Run(d.Format, func(t *testing.T) {
			// Raw: the bytes themselves, back in Go.
			var raw string
			mustEval(t, p, `return H.base64(await H.streamBytes(await dm.exportDisk(args[0])));`, &raw, d.ID)
			got, _ := base64.StdEncoding.DecodeString(raw)
			if !bytes.Equal(got, want) {
				t.Errorf("raw export: %d bytes, crc %s; want %d bytes crc %s", len(got), crcBytes(got), len(want), crcBytes(want))
			}
			// Gzip: the browser's DecompressionStream and Go's gzip both read it.
			var gz struct {
				Gunzipped streamSum `json:"gunzipped"`
				GZ        string    `json:"gz"`
				Calls     int       `json:"calls"`
			}
			mustEval(t, p, `const pr = H.progress();
				const gz = await H.streamBytes(await dm.exportDisk(args[0], { gzip: true, onProgress: pr.onProgress }));
				return { gz: H.base64(gz), gunzipped: await H.crc32Stream(H.gunzip(new Blob([gz]).stream())), calls: pr.calls.length };`, &gz, d.ID)
			if gz.Gunzipped.CRC32 != crcBytes(want) || gz.Gunzipped.Bytes != int64(len(want)) {
				t.Errorf("gzip export through DecompressionStream: %+v, want crc %s %d bytes", gz.Gunzipped, crcBytes(want), len(want))
			}
			zb, _ := base64.StdEncoding.DecodeString(gz.GZ)
			zr, err := gzip.NewReader(bytes.NewReader(zb))
			if err != nil {
				t.Fatalf("gzip export is not gzip: %v", err)
			}
			if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, want) {
				t.Errorf("gzip export through Go: %v, %d bytes", err, len(got))
			}
			if len(zb) >= len(want) {
				t.Errorf("gzip export of mixed data: %d bytes for %d", len(zb), len(want))
			}
			t.Logf("%s: gzip %d → %d bytes, %d progress calls", d.Format, len(want), len(zb), gz.Calls)
		})
	}
	wantErrName(t, p, "NotFoundError", `return dm.exportDisk("no-such-disk");`)

	// A stream cancelled after one chunk releases the disk: it can be
	// deleted (the release reaches the worker after cancel() returns: the
	// delete is retried while the disk is still in use, for up to 30 s).
	mustEval(t, p, deleteWhenReleasedJS+`const s = await dm.exportDisk(args[0]); const r = s.getReader();
		await r.read(); await r.cancel();
		await deleteWhenReleased(dm, args[0]);`, nil, conv.ID)
	if l := listDisks(t, p); len(l) != 1 || l[0].ID != asIs.ID {
		t.Errorf("after deleting the cancelled export's disk: %+v", l)
	}
}

// TestExportDiskToFile downloads: it has a browser of its own (the download
// directory is the browser's).
func TestExportDiskToFile(t *testing.T) { eachBackend(t, testExportDiskToFile) }

func testExportDiskToFile(t *testing.T, be string) {
	s := ownSession(t)
	p := openDMIn(t, s, be, nil)
	fs := referenceFixtures(t)
	base := fs.All["base.img"].Path
	want, _ := os.ReadFile(base)
	d := importFixture(t, p, fs, "base.img", "to file", true)

	// Where showSaveFilePicker exists (headless chromium 156 has it) the export
	// streams into the handle the user picks: stand in for the user with an
	// OPFS file handle.
	var picked streamSum
	mustEval(t, p, `const dir = await H.opfsDir("picked", true);
		const saved = showSaveFilePicker;
		self.showSaveFilePicker = async (o) => dir.getFileHandle(o.suggestedName, { create: true });
		try { await dm.exportDiskToFile(args[0], { fileName: "picked.img" }); } finally { self.showSaveFilePicker = saved; }
		return H.crc32Stream((await (await dir.getFileHandle("picked.img")).getFile()).stream());`, &picked, d.ID)
	if picked.CRC32 != crcBytes(want) || picked.Bytes != int64(len(want)) {
		t.Errorf("export to a picked file: %+v, want crc %s %d bytes", picked, crcBytes(want), len(want))
	}

	// Without it: a download of a temporary OPFS file through an object URL.
	var gone bool
	mustEval(t, p, `delete self.showSaveFilePicker; if (typeof showSaveFilePicker === "function") self.showSaveFilePicker = undefined;
		return typeof self.showSaveFilePicker !== "function";`, &gone)
	if !gone {
		t.Fatal("could not hide showSaveFilePicker")
	}
	for _, gz := range []bool{false, true} {
		name := "disk.img"
		if gz {
			name += ".gz"
		}
		mustEval(t, p, `await dm.exportDiskToFile(args[0], { gzip: args[1], fileName: args[2] });`, nil, d.ID, gz, name)
		path := s.waitDownload(t, name, time.Minute)
		got, _ := os.ReadFile(path)
		if gz {
			zr, err := gzip.NewReader(bytes.NewReader(got))
			if err != nil {
				t.Fatalf("%s is not gzip: %v", name, err)
			}
			got, _ = io.ReadAll(zr)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes crc %s, want %d bytes crc %s", name, len(got), crcBytes(got), len(want), crcBytes(want))
		}
	}
	// The temporary files go away: at the latest when a manager opens again.
	p.Close()
	p2 := newPage(t, s, "page2")
	mustEval(t, p2, `await H.open();`, nil)
	var tree []string
	mustEval(t, p2, `return H.opfsTree();`, &tree)
	for _, f := range tree {
		if strings.HasPrefix(f, "aero/") && !strings.HasPrefix(f, "aero/disks/") {
			t.Errorf("left behind: %s (OPFS: %q)", f, tree)
		}
	}
	wantErrName(t, p2, "NotFoundError", `return dm.exportDiskToFile("no-such-disk", { fileName: "x.img" });`)
}

func TestMounts(t *testing.T) { eachBackend(t, testMounts) }

func testMounts(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs := referenceFixtures(t)
	var blank diskMeta
	mustEval(t, p, `return dm.createBlankDisk({ name: "hdd", sizeBytes: 16 << 20 });`, &blank)
	raw := importFixture(t, p, fs, "base.img", "raw hdd", false)
	iso := importFixture(t, p, fs, "disc.iso", "cd", false)
	qcow := importFixture(t, p, fs, "zlib.qcow2", "qcow2 as is", false)
	floppy := importFixture(t, p, fs, "floppy.dc42", "floppy", true)
	if floppy.Kind != "floppy" || iso.Kind != "cd" || qcow.Format != "qcow2" {
		t.Fatalf("kinds: floppy %s, iso %s, qcow2 format %s", floppy.Kind, iso.Kind, qcow.Format)
	}
	getMounts := func() mounts {
		var m mounts
		mustEval(t, p, `return dm.getMounts();`, &m)
		return m
	}
	eq := func(s *string, want string) bool { return (s == nil && want == "") || (s != nil && *s == want) }

	before := time.Now().UnixMilli()
	var m mounts
	mustEval(t, p, `return dm.setMounts({ hddId: args[0], cdId: args[1] });`, &m, blank.ID, iso.ID)
	if !eq(m.HddID, blank.ID) || !eq(m.CdID, iso.ID) {
		t.Errorf("setMounts returned %+v", m)
	}
	if g := getMounts(); !eq(g.HddID, blank.ID) || !eq(g.CdID, iso.ID) {
		t.Errorf("getMounts %+v", g)
	}
	// Mounting is using: both move to the front of the list.
	l := listDisks(t, p)
	if len(l) != 5 {
		t.Fatalf("%d disks", len(l))
	}
	front := []string{l[0].ID, l[1].ID}
	if !slices.Contains(front, blank.ID) || !slices.Contains(front, iso.ID) || l[0].LastUsedAtMs < before || l[1].LastUsedAtMs < before {
		t.Errorf("after mounting, the list starts with %q %q (lastUsed %d %d, mounted at ≥ %d)", l[0].Name, l[1].Name, l[0].LastUsedAtMs, l[1].LastUsedAtMs, before)
	}
	for i := 1; i < len(l); i++ {
		if l[i-1].LastUsedAtMs < l[i].LastUsedAtMs {
			t.Errorf("list not newest first: %d before %d", l[i-1].LastUsedAtMs, l[i].LastUsedAtMs)
		}
	}

	// A raw disk is writable too; null unmounts.
	mustEval(t, p, `return dm.setMounts({ hddId: args[0], cdId: null });`, &m, raw.ID)
	if g := getMounts(); !eq(g.HddID, raw.ID) || g.CdID != nil {
		t.Errorf("getMounts %+v", g)
	}
	// The rules.
	for _, c := range []struct {
		what, name string
		m          map[string]any
	}{
		{"an ISO as the HDD", "InvalidArgumentError", map[string]any{"hddId": iso.ID}},
		{"a floppy as the HDD", "InvalidArgumentError", map[string]any{"hddId": floppy.ID}},
		{"a qcow2 kept as is as the HDD", "InvalidArgumentError", map[string]any{"hddId": qcow.ID}},
		{"a hard disk as the CD", "InvalidArgumentError", map[string]any{"cdId": blank.ID}},
		{"a missing disk", "NotFoundError", map[string]any{"hddId": "no-such-disk"}},
		{"a missing CD", "NotFoundError", map[string]any{"hddId": raw.ID, "cdId": "no-such-disk"}},
	} {
		t.Run(c.what, func(t *testing.T) {
			wantErrName(t, p, c.name, `return dm.setMounts(args[0]);`, c.m)
			if g := getMounts(); !eq(g.HddID, raw.ID) || g.CdID != nil {
				t.Errorf("a refused setMounts changed the mounts: %+v", g)
			}
		})
	}
	// Deleting a mounted disk unmounts it.
	mustEval(t, p, `await dm.setMounts({ hddId: args[0], cdId: args[1] }); await dm.deleteDisk(args[1]);`, nil, raw.ID, iso.ID)
	if g := getMounts(); !eq(g.HddID, raw.ID) || g.CdID != nil {
		t.Errorf("after deleting the CD: %+v", g)
	}
	// The stored catalog has the shape of the existing Aero disk manager.
	var text string
	mustEval(t, p, `return H.catalogText();`, &text)
	if be == "idb" {
		var db struct {
			Disks  []map[string]any `json:"disks"`
			Mounts []struct {
				Key   string             `json:"key"`
				Value map[string]*string `json:"value"`
			} `json:"mounts"`
		}
		if err := json.Unmarshal([]byte(text), &db); err != nil {
			t.Fatalf("IndexedDB stores: %v\n%s", err, text)
		}
		if len(db.Disks) != 4 || len(db.Mounts) != 1 || db.Mounts[0].Key != "mounts" || !eq(db.Mounts[0].Value["hddId"], raw.ID) {
			t.Errorf("IndexedDB stores: %s", text)
		}
		return
	}
	var meta struct {
		Version int                        `json:"version"`
		Disks   map[string]json.RawMessage `json:"disks"`
		Mounts  map[string]*string         `json:"mounts"`
	}
	if err := json.Unmarshal([]byte(text), &meta); err != nil {
		t.Fatalf("metadata.json: %v\n%s", err, text)
	}
	if _, ok := meta.Mounts["hddId"]; meta.Version != 2 || len(meta.Disks) != 4 || !ok || !eq(meta.Mounts["hddId"], raw.ID) {
		t.Errorf("metadata.json: version %d, %d disks, mounts %v", meta.Version, len(meta.Disks), meta.Mounts)
	}
}

func TestRenameDelete(t *testing.T) { eachBackend(t, testRenameDelete) }

func testRenameDelete(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	var a, b diskMeta
	mustEval(t, p, `return dm.createBlankDisk({ name: "a", sizeBytes: 1 << 20 });`, &a)
	// b holds data, so deleting it must remove stored bytes on every backend.
	mustEval(t, p, `const u = new Uint8Array(9 << 20);
		for (let i = 0; i < u.length; i += 4096) u[i] = (i >> 12) % 251 + 1;
		return dm.importDisk(new File([u], "b.img"), { name: "b" });`, &b)
	if !slices.Contains(diskFiles(t, p), b.ID) {
		t.Fatalf("b is not stored: %q", diskFiles(t, p))
	}
	const newName = "Système ünïcode 💾 disk"
	var r diskMeta
	mustEval(t, p, `return dm.renameDisk(args[0], args[1]);`, &r, a.ID, newName)
	if r.ID != a.ID || r.Name != newName || r.Checksum == nil || r.Checksum.Value != a.Checksum.Value {
		t.Errorf("renameDisk returned %+v", r)
	}
	mustEval(t, p, `return dm.getDisk(args[0]);`, &r, a.ID)
	if r.Name != newName {
		t.Errorf("getDisk after rename: %q", r.Name)
	}
	wantErrName(t, p, "InvalidArgumentError", `return dm.renameDisk(args[0], "");`, a.ID)
	wantErrName(t, p, "InvalidArgumentError", `return dm.renameDisk(args[0], "x".repeat(300));`, a.ID)
	wantErrName(t, p, "NotFoundError", `return dm.renameDisk("no-such-disk", "x");`)
	mustEval(t, p, `return dm.getDisk(args[0]);`, &r, a.ID)
	if r.Name != newName {
		t.Errorf("a refused rename changed the name to %q", r.Name)
	}

	mustEval(t, p, `await dm.deleteDisk(args[0]);`, nil, b.ID)
	wantErrName(t, p, "NotFoundError", `return dm.getDisk(args[0]);`, b.ID)
	wantErrName(t, p, "NotFoundError", `return dm.deleteDisk(args[0]);`, b.ID)
	if l := listDisks(t, p); len(l) != 1 || l[0].ID != a.ID {
		t.Errorf("after delete: %+v", l)
	}
	want := []string{a.ID} // a blank disk is a file on OPFS, nothing on IndexedDB
	if be == "idb" {
		want = nil
	}
	if files := diskFiles(t, p); !slices.Equal(files, want) {
		t.Errorf("stored after delete: %q, want %q", files, want)
	}
}

func TestAbortImport(t *testing.T) { eachBackend(t, testAbortImport) }

func testAbortImport(t *testing.T, be string) {
	s, p := openDMOn(t, be)
	var keep diskMeta
	mustEval(t, p, `return dm.createBlankDisk({ name: "keep", sizeBytes: 1 << 20 });`, &keep)
	big := filepath.Join(t.TempDir(), "big.img")
	writeSparse(t, big, 2<<30, map[int64][]byte{0: testutil.MixedData(1<<20, 1), 1 << 30: testutil.MixedData(1<<20, 2)})
	if err := p.SetFiles("#file", big); err != nil {
		t.Fatal(err)
	}
	before := diskFiles(t, p)
	var tree0 []string
	mustEval(t, p, `return H.storeTree();`, &tree0)
	for _, method := range []string{"importDisk", "importDiskConverted"} {
		t.Run(method, func(t *testing.T) {
			var r struct {
				Err       *JSError `json:"err"`
				Processed float64  `json:"processed"`
				Ms        float64  `json:"ms"`
			}
			// Abort once some data has gone through (or after 300 ms).
			mustEval(t, p, `const ac = new AbortController(); let processed = 0;
				const t0 = performance.now();
				setTimeout(() => ac.abort(), 300);
				const err = await H.errorOf(() => dm[args[0]](H.inputFile(), { name: "aborted", signal: ac.signal,
					onProgress: (pr) => { processed = pr.processedBytes; if (pr.processedBytes > 0) ac.abort(); } }));
				return { err, processed, ms: performance.now() - t0 };`, &r, method)
			if r.Err == nil || r.Err.Name != "AbortError" {
				t.Fatalf("aborted %s: %+v (processed %v bytes in %.0f ms)", method, r.Err, r.Processed, r.Ms)
			}
			t.Logf("aborted after %.0f bytes, %.0f ms", r.Processed, r.Ms)
			if l := listDisks(t, p); len(l) != 1 || l[0].ID != keep.ID {
				t.Errorf("listDisks after abort: %+v", l)
			}
			if after := diskFiles(t, p); !slices.Equal(after, before) {
				t.Errorf("aero/disks after abort: %q, before %q", after, before)
			}
			var tree []string
			mustEval(t, p, `return H.storeTree();`, &tree)
			if !slices.Equal(tree, tree0) {
				t.Errorf("storage after abort: %q, before %q", tree, tree0)
			}
		})
	}
	// An already aborted signal rejects at once.
	wantErrName(t, p, "AbortError", `const ac = new AbortController(); ac.abort();
		return dm.importDisk(H.inputFile(), { name: "x", signal: ac.signal });`)
	// A new tab sees the same clean state.
	p2 := newPage(t, s, "page2")
	mustEval(t, p2, `await H.open();`, nil)
	if l := listDisks(t, p2); len(l) != 1 {
		t.Errorf("second tab lists %d disks", len(l))
	}
}

// corruptQcow2 writes qcow2 images that must be refused: truncated, and with
// an L1 table past the end of the file.
func corruptQcow2(t *testing.T, fs *fixtureSet) []string {
	t.Helper()
	src, err := os.ReadFile(fs.All["zlib.qcow2"].Path)
	if err != nil {
		t.Fatal(err)
	}
	fs.Add(t, "truncated.qcow2", src[:len(src)/2])
	l1 := bytes.Clone(src)
	binary.BigEndian.PutUint64(l1[40:], 1<<40) // l1_table_offset
	fs.Add(t, "l1-past-end.qcow2", l1)
	return []string{"truncated.qcow2", "l1-past-end.qcow2"}
}

func TestCorruptImage(t *testing.T) { eachBackend(t, testCorruptImage) }

func testCorruptImage(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs := referenceFixtures(t)
	keep := importFixture(t, p, fs, "base.img", "keep", true)
	var meta0 string
	mustEval(t, p, `return H.catalogText();`, &meta0)
	files0 := diskFiles(t, p)
	for _, name := range corruptQcow2(t, fs) {
		for _, method := range []string{"importDiskConverted", "importDisk"} {
			t.Run(name+"/"+method, func(t *testing.T) {
				e := wantErrName(t, p, "CorruptImageError", fmt.Sprintf(`return dm.%s(await H.fixture(args[0]), { name: "bad" });`, method), fs.URLPath(name))
				t.Logf("%s: %s", e.Name, e.Message)
				if l := listDisks(t, p); len(l) != 1 || l[0].ID != keep.ID {
					t.Errorf("catalog after a refused import: %+v", l)
				}
				if f := diskFiles(t, p); !slices.Equal(f, files0) {
					t.Errorf("aero/disks after a refused import: %q, before %q", f, files0)
				}
				var meta string
				mustEval(t, p, `return H.catalogText();`, &meta)
				if meta != meta0 {
					t.Errorf("the stored catalog changed:\n%s\nwas\n%s", meta, meta0)
				}
			})
		}
	}
	// An unknown incompatible feature is unsupported, not corrupt.
	src, _ := os.ReadFile(fs.All["zlib.qcow2"].Path)
	feat := bytes.Clone(src)
	binary.BigEndian.PutUint64(feat[72:], 1<<63)
	fs.Add(t, "feature.qcow2", feat)
	wantErrName(t, p, "UnsupportedFormatError", `return dm.importDiskConverted(await H.fixture(args[0]), { name: "feat" });`, fs.URLPath("feature.qcow2"))
	// A backing chain cannot be imported as one file.
	e := evalErr(t, p, `return dm.importDiskConverted(await H.fixture(args[0]), { name: "chain" });`, fs.URLPath("chain2.qcow2"))
	t.Logf("backing chain import: %s: %s", e.Name, e.Message)
	if l := listDisks(t, p); len(l) != 1 {
		t.Errorf("catalog after refused imports: %d disks", len(l))
	}
}

func TestTwoPagesUpdateAtOnce(t *testing.T) { eachBackend(t, testTwoPagesUpdateAtOnce) }

func testTwoPagesUpdateAtOnce(t *testing.T, be string) {
	s, p1 := openDMOn(t, be)
	p2 := newPage(t, s, "page2")
	mustEval(t, p2, `await H.open();`, nil)
	var a, c diskMeta
	mustEval(t, p1, `return dm.createBlankDisk({ name: "a", sizeBytes: 1 << 20 });`, &a)
	mustEval(t, p2, `return dm.createBlankDisk({ name: "c", sizeBytes: 1 << 20 });`, &c)

	const rounds = 8
	start := time.Now().Add(500 * time.Millisecond).UnixMilli()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, pc := range []struct {
		p  *Page
		id string
		n  string
	}{{p1, a.ID, "a"}, {p2, c.ID, "c"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Both tabs start at the same wall-clock moment, then each
			// renames its disk and creates disks as fast as it can.
			errs[i] = pc.p.Eval(`while (Date.now() < args[0]) await H.sleep(1);
				const ops = [];
				for (let i = 0; i < args[3]; i++) {
					ops.push(dm.renameDisk(args[1], args[2] + "-" + i));
					ops.push(dm.createBlankDisk({ name: args[2] + "-new-" + i, sizeBytes: 1 << 20 }));
				}
				await Promise.all(ops);
				await dm.renameDisk(args[1], args[2] + "-final");`, nil, start, pc.id, pc.n, rounds)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*Page{p1, p2} {
		l := listDisks(t, p)
		names := map[string]bool{}
		for _, d := range l {
			names[d.Name] = true
		}
		if len(l) != 2+2*rounds || !names["a-final"] || !names["c-final"] {
			var got []string
			for _, d := range l {
				got = append(got, d.Name)
			}
			t.Errorf("lost updates: %d disks %q", len(l), got)
		}
		for i := 0; i < rounds; i++ {
			if !names[fmt.Sprintf("a-new-%d", i)] || !names[fmt.Sprintf("c-new-%d", i)] {
				t.Errorf("missing a created disk of round %d", i)
			}
		}
	}
	want := 2 + 2*rounds // blank disks: files on OPFS, nothing on IndexedDB
	if be == "idb" {
		want = 0
	}
	if f := diskFiles(t, p1); len(f) != want {
		t.Errorf("%d disks stored, want %d", len(f), want)
	}
	// Both tabs set mounts at once: the result is one of the two, whole.
	var blanks []diskMeta
	mustEval(t, p1, `return (await dm.listDisks()).filter((d) => d.name.includes("-new-"));`, &blanks)
	var wg2 sync.WaitGroup
	start = time.Now().Add(300 * time.Millisecond).UnixMilli()
	for i, p := range []*Page{p1, p2} {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			errs[i] = p.Eval(`while (Date.now() < args[0]) await H.sleep(1); await dm.setMounts({ hddId: args[1] });`, nil, start, blanks[i].ID)
		}()
	}
	wg2.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var m mounts
	mustEval(t, p2, `return dm.getMounts();`, &m)
	if m.HddID == nil || (*m.HddID != blanks[0].ID && *m.HddID != blanks[1].ID) {
		t.Errorf("mounts after concurrent setMounts: %+v", m)
	}
}

func TestErrorNames(t *testing.T) { eachBackend(t, testErrorNames) }

func testErrorNames(t *testing.T, be string) {
	s, p := openDMOn(t, be)
	wantErrName(t, p, "NotFoundError", `return dm.getDisk("no-such-disk");`)
	wantErrName(t, p, "NotFoundError", `return dm.verifyDisk("no-such-disk");`)
	wantErrName(t, p, "InvalidArgumentError", `return dm.importDisk("not a file", { name: "x" });`)
	e := evalErr(t, p, `return dm.importDisk(new File([new Uint8Array(0)], "empty.img"), { name: "empty" });`)
	t.Logf("an empty file: %s: %s", e.Name, e.Message)
	if l := listDisks(t, p); len(l) != 0 {
		t.Errorf("refused calls left %d disks", len(l))
	}
	// A disk being exported in another tab is in use there.
	var d diskMeta
	mustEval(t, p, `return dm.createBlankDisk({ name: "busy", sizeBytes: 64 << 20 });`, &d)
	mustEval(t, p, `globalThis.reader = (await dm.exportDisk(args[0])).getReader(); await reader.read();`, nil, d.ID)
	p2 := newPage(t, s, "page2")
	mustEval(t, p2, `await H.open();`, nil)
	wantErrName(t, p2, "InUseError", `return dm.deleteDisk(args[0]);`, d.ID)
	mustEval(t, p, `await reader.cancel();`, nil)
	mustEval(t, p2, deleteWhenReleasedJS+`await deleteWhenReleased(dm, args[0]);`, nil, d.ID)
}

// TestQuotaMidImport runs out of quota in the middle of an import: the
// import fails with QuotaExceededError, and what it had stored is removed.
// It runs on OPFS only: Chromium 156 does not apply an overridden quota to
// IndexedDB writes (160 MiB of puts succeed under a 32 MiB override), so
// there is no real way to fill IndexedDB here; its quota errors take the
// same path as any failed chunk transaction (TestAbortImport, TestCorruptImage).
// It has a browser of its own: the quota override is the browser's.
func TestQuotaMidImport(t *testing.T) {
	parallel(t)
	testQuotaMidImport(t, "opfs")
}

func testQuotaMidImport(t *testing.T, be string) {
	s := ownSession(t)
	p := openDMIn(t, s, be, nil)
	var keep diskMeta
	mustEval(t, p, `return dm.createBlankDisk({ name: "keep", sizeBytes: 1 << 20 });`, &keep)
	big := writeNonZero(t, filepath.Join(t.TempDir(), "full.img"), 1024, 9)
	if err := p.SetFiles("#file", big); err != nil {
		t.Fatal(err)
	}
	var tree0 []string
	mustEval(t, p, `return H.storeTree();`, &tree0)
	var usage int64
	mustEval(t, p, `return (await navigator.storage.estimate()).usage;`, &usage)
	// The quota is ample when the import starts (it checks free space
	// first) and runs out once data is flowing.
	mustEval(t, p, `globalThis.started = new Promise((ok) => {
			globalThis.result = H.errorOf(() => dm.importDisk(H.inputFile(), { name: "too big",
				onProgress: (pr) => pr.processedBytes >= (64 << 20) && ok() }));
			globalThis.result.then(ok, ok);
		});
		await started;`, nil)
	if err := p.OverrideQuota(s.URL, usage+96<<20); err != nil {
		t.Fatal(err)
	}
	defer p.OverrideQuota(s.URL, 0)
	var e *JSError
	mustEval(t, p, `return result;`, &e)
	if e == nil || e.Name != "QuotaExceededError" {
		t.Fatalf("an import that runs out of quota: %+v, want QuotaExceededError", e)
	}
	if strings.Contains(e.Message, "Failed to execute") || strings.Contains(e.Message, "Exceeded") {
		t.Errorf("the message is not for people: %q", e.Message)
	}
	t.Logf("%s: %s", e.Name, e.Message)
	if l := listDisks(t, p); len(l) != 1 || l[0].ID != keep.ID {
		t.Errorf("listDisks after the quota error: %+v", l)
	}
	var tree []string
	mustEval(t, p, `return H.storeTree();`, &tree)
	if !slices.Equal(tree, tree0) {
		t.Errorf("storage after the quota error: %q, before %q", tree, tree0)
	}
}

// TestHelperCrashMidImport kills the helper worker (which checksums an
// import's bytes) in the middle of an import: the import fails with a
// message instead of hanging or recording a wrong checksum, leaves nothing
// behind, and the next import works with a new helper.
func TestHelperCrashMidImport(t *testing.T) { eachBackend(t, testHelperCrashMidImport) }

func testHelperCrashMidImport(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	dir := t.TempDir()
	big := writeNonZero(t, filepath.Join(dir, "big.img"), 1024, 11)
	small := testutil.BaseDisk(t, dir, "small.img", 6<<20, 12)
	if err := p.SetFiles("#file", big); err != nil {
		t.Fatal(err)
	}
	if err := p.SetFiles("#file2", small); err != nil {
		t.Fatal(err)
	}
	var tree0 []string
	mustEval(t, p, `return H.storeTree();`, &tree0)
	var r struct {
		Err   *JSError `json:"err"`
		Disks int      `json:"disks"`
	}
	mustEval(t, p, `let crashed = false;
		const err = await H.errorOf(() => dm.importDisk(H.inputFile(), { name: "crash",
			onProgress: (pr) => { if (!crashed && pr.processedBytes >= (32 << 20)) { crashed = true; dm._debugCrashHelper(); } } }));
		return { err, disks: (await dm.listDisks()).length };`, &r)
	if r.Err == nil {
		t.Fatal("the import succeeded although its checksum worker died")
	}
	t.Logf("%s: %s", r.Err.Name, r.Err.Message)
	if !strings.Contains(r.Err.Message, "helper") {
		t.Errorf("message %q does not say what failed", r.Err.Message)
	}
	if r.Disks != 0 {
		t.Errorf("%d disks listed after the failed import", r.Disks)
	}
	var tree []string
	mustEval(t, p, `return H.storeTree();`, &tree)
	if !slices.Equal(tree, tree0) {
		t.Errorf("storage after the failed import: %q, before %q", tree, tree0)
	}
	d := func() diskMeta {
		var d diskMeta
		mustEval(t, p, `return dm.importDisk(H.inputFile("#file2"), { name: "after" });`, &d)
		return d
	}()
	checkMeta(t, be, d, "after", "hdd", "raw", 6<<20, crcFile(t, small))
}

// TestNoSyncAccessHandles runs where OPFS sync access handles are missing
// (hidden in the worker): "auto" chooses IndexedDB, and exportDiskToFile,
// without showSaveFilePicker, downloads a Blob of the export instead of a
// temporary OPFS file. It has a browser of its own (the download directory
// is the browser's).
func TestNoSyncAccessHandles(t *testing.T) {
	parallel(t)
	requireWasm(t)
	s := ownSession(t)
	s.Backend = "idb"
	p := newPage(t, s, "page")
	fs := referenceFixtures(t)
	base := fs.All["base.img"].Path
	want, _ := os.ReadFile(base)
	var backend string
	mustEval(t, p, `return (await H.open({ backend: "auto", _simulateNoSyncAccessHandles: true })).backend;`, &backend)
	if backend != "idb" {
		t.Fatalf("auto without sync access handles chose %q", backend)
	}
	d := importFixture(t, p, fs, "base.img", "no handles", true)
	checkMeta(t, "idb", d, "no handles", "hdd", "raw", int64(len(want)), crcBytes(want))
	mustEval(t, p, `delete self.showSaveFilePicker; if (typeof showSaveFilePicker === "function") self.showSaveFilePicker = undefined;`, nil)
	mustEval(t, p, `await dm.exportDiskToFile(args[0], { gzip: true, fileName: "blob.img.gz" });`, nil, d.ID)
	path := s.waitDownload(t, "blob.img.gz", time.Minute)
	gz, _ := os.ReadFile(path)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("the download is not gzip: %v", err)
	}
	got, _ := io.ReadAll(zr)
	if !bytes.Equal(got, want) {
		t.Errorf("download: %d bytes crc %s, want %d bytes crc %s", len(got), crcBytes(got), len(want), crcBytes(want))
	}
	var tree []string
	mustEval(t, p, `return H.opfsTree();`, &tree)
	for _, f := range tree {
		if strings.HasPrefix(f, "aero/exports/") {
			t.Errorf("a temporary OPFS export was written: %s", f)
		}
	}
}

// TestNoByteStreams imports where File streams refuse BYOB readers (the
// worker reads them with a default reader and copies the chunks into its
// buffers): a file as is — chunks of every size, zero stretches, a ragged
// length — and a converted qcow2, whose source checksum reads the stream
// through Go, give the same checksums as with BYOB. The stream counters
// show which reader ran, and that the normal path is BYOB.
func TestNoByteStreams(t *testing.T) { eachBackend(t, testNoByteStreams) }

func testNoByteStreams(t *testing.T, be string) {
	s, p := openDMWith(t, be, map[string]any{"_simulateNoByteStreams": true})
	fs := referenceFixtures(t)
	big := filepath.Join(t.TempDir(), "odd.img")
	writeSparse(t, big, 41<<20+3584, map[int64][]byte{
		0:        testutil.MixedData(5<<20+3, 1),
		24 << 20: testutil.MixedData(3<<20+777, 2), // after 14 MiB of zeros
		41 << 20: testutil.MixedData(3584, 3),
	})
	if err := p.SetFiles("#file", big); err != nil {
		t.Fatal(err)
	}
	var d diskMeta
	mustEval(t, p, `return dm.importDisk(H.inputFile(), { name: "plain" });`, &d)
	checkMeta(t, be, d, "plain", "hdd", "raw", 41<<20+3584, crcFile(t, big))
	if s := exportSum(t, p, d.ID, false); s.CRC32 != d.Checksum.Value || s.Bytes != d.SizeBytes {
		t.Errorf("raw export %+v, want crc %s %d bytes", s, d.Checksum.Value, d.SizeBytes)
	}
	q := fs.All["zlib.qcow2"]
	c := importFixture(t, p, fs, "zlib.qcow2", "plain qcow2", true)
	checkMeta(t, be, c, "plain qcow2", "hdd", sparseFormat(be, "aerospar"), fileSize(t, expectRaw(t, q)), crcFile(t, expectRaw(t, q)))
	if c.SourceChecksum == nil || c.SourceChecksum.Value != crcFile(t, q.Path) {
		t.Errorf("source checksum %+v, want %s", c.SourceChecksum, crcFile(t, q.Path))
	}
	var stats struct{ ByobStreams, PlainStreams int }
	mustEval(t, p, `return dm._debugStats();`, &stats)
	if stats.ByobStreams != 0 || stats.PlainStreams < 2 {
		t.Errorf("without byte streams: %d BYOB and %d default readers, want 0 and ≥ 2", stats.ByobStreams, stats.PlainStreams)
	}

	// The same imports with byte streams read them with BYOB readers.
	p2 := newPage(t, s, "page2")
	mustEval(t, p2, `await H.open({ backend: args[0] });`, nil, be)
	if err := p2.SetFiles("#file", big); err != nil {
		t.Fatal(err)
	}
	mustEval(t, p2, `return dm.importDisk(H.inputFile(), { name: "byob" });`, &d)
	checkMeta(t, be, d, "byob", "hdd", "raw", 41<<20+3584, crcFile(t, big))
	mustEval(t, p2, `return dm._debugStats();`, &stats)
	if stats.ByobStreams != 1 || stats.PlainStreams != 0 {
		t.Errorf("with byte streams: %d BYOB and %d default readers, want 1 and 0", stats.ByobStreams, stats.PlainStreams)
	}
}

// TestStreamSurvivesGC imports, exports and verifies while the disk worker
// runs a full garbage collection every 2 ms. Chromium 156 never settles some
// promises once the object they were asked of is collected: a BYOB read
// whose File, stream and reader are referenced only from the reading loop
// (a plain-JS loop stalled within the first few MiB), and
// createSyncAccessHandle() on a FileSystemFileHandle held only by a local
// variable (without the worker's hold, the OPFS import stalls before its
// first byte). Everything must finish, with the right checksums. Its
// browser is its own, started with GCFlags (the worker calls gc()).
func TestStreamSurvivesGC(t *testing.T) { eachBackend(t, testStreamSurvivesGC) }

func testStreamSurvivesGC(t *testing.T, be string) {
	p := openDMIn(t, ownSession(t, GCFlags...), be, map[string]any{"_debugCollectGarbageOften": true})
	big := writeNonZero(t, filepath.Join(t.TempDir(), "gc.img"), 96, 5)
	if err := p.SetFiles("#file", big); err != nil {
		t.Fatal(err)
	}
	p.Timeout = 90 * time.Second // a stalled read never settles
	var d diskMeta
	mustEval(t, p, `return dm.importDisk(H.inputFile(), { name: "gc" });`, &d)
	checkMeta(t, be, d, "gc", "hdd", "raw", 96<<20, crcFile(t, big))
	var stats struct{ ByobStreams int }
	mustEval(t, p, `return dm._debugStats();`, &stats)
	if stats.ByobStreams != 1 {
		t.Errorf("%d BYOB readers, want 1", stats.ByobStreams)
	}
	if s := exportSum(t, p, d.ID, true); s.CRC32 != d.Checksum.Value || s.Bytes != d.SizeBytes {
		t.Errorf("gzip export %+v, want crc %s %d bytes", s, d.Checksum.Value, d.SizeBytes)
	}
	var v struct {
		OK bool `json:"ok"`
	}
	mustEval(t, p, `return dm.verifyDisk(args[0]);`, &v, d.ID)
	if !v.OK {
		t.Errorf("verifyDisk: %+v", v)
	}
}

// writeNonZero writes mib MiB with no all-zero chunk (testutil.WriteRepeated)
// and returns path.
func writeNonZero(t *testing.T, path string, mib int, seed uint64) string {
	t.Helper()
	if err := testutil.WriteRepeated(path, int64(mib)<<20, seed); err != nil {
		t.Fatal(err)
	}
	return path
}
