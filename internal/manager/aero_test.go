package manager_test

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

	"aerodisk/internal/catalog"
	"aerodisk/internal/checksum"
	"aerodisk/internal/dirstore"
	"aerodisk/internal/manager"
	"aerodisk/internal/sparse"
	"aerodisk/internal/testutil"
)

// aeroBlocksCRC is Aero's converter's checksum (web/src/storage/
// import_convert.ts, convertRawToSparse), written from its source: for each
// block of blockSize bytes that is not all zeros (the last one zero-padded),
// in order, CRC32 over u64le(block index) ‖ block.
func aeroBlocksCRC(data []byte, blockSize int) string {
	h := crc32.NewIEEE()
	buf := make([]byte, blockSize)
	var idx [8]byte
	for i := 0; i*blockSize < len(data); i++ {
		clear(buf)
		copy(buf, data[i*blockSize:])
		if bytes.Equal(buf, make([]byte, blockSize)) {
			continue
		}
		binary.LittleEndian.PutUint64(idx[:], uint64(i))
		h.Write(idx[:])
		h.Write(buf)
	}
	return checksum.Hex(h.Sum32())
}

// TestAeroRecords shares a store with Aero's records: a remote disk (a
// record without fileName, its cache, overlay and manifest files beside
// ours), a local disk without a checksum or lastUsedAtMs, a v1 record
// without source, and a disk Aero converted, whose checksum follows Aero's
// per-block definition. Nothing of Aero's is deleted or rewritten, the
// remote disk is listed as remote and refused by name where it cannot
// work, and every intact Aero disk verifies.
func TestAeroRecords(t *testing.T) {
	lib := newLibrary(t)
	dir := lib.dir
	ctx := context.Background()
	// The converted disk's file comes from our converter (Aero's converter
	// writes the same layout, docs/aerospar.md); its record carries
	// Aero's checksum of it.
	data := testutil.BaseDisk(t, t.TempDir(), "aero-data.img", 5<<20+4096, 77)
	raw, _ := os.ReadFile(data)
	scratch, _ := newManager(t, t.TempDir())
	conv := must(scratch.Import(ctx, input(t, data), manager.ImportOptions{Convert: true}))
	convFile, _ := os.ReadFile(filepath.Join(scratch.Backend().(*dirstore.Store).Dir(), conv.FileName))
	testutil.WriteFile(t, dir, "aero-conv.aerospar", convFile)
	testutil.WriteFile(t, dir, "aero-blank.img", make([]byte, 1<<20))
	testutil.WriteFile(t, dir, "aero-v1.img", raw[:1<<20])
	aeroFiles := map[string][]byte{
		"remote1.cache.aerospar":   []byte("Aero's cache"),
		"remote1.overlay.aerospar": []byte("Aero's overlay"),
		"remote1.manifest.json":    []byte(`{"manifestVersion":1}`),
	}
	for name, b := range aeroFiles {
		testutil.WriteFile(t, dir, name, b)
	}
	records := map[string]string{
		"remote1":    `{"source":"remote","id":"remote1","name":"Remote Win98","kind":"hdd","format":"raw","sizeBytes":1073741824,"createdAtMs":1,"remote":{"imageId":"win98","version":"1","delivery":"range","urls":{"url":"https://example.invalid/win98.img"}},"cache":{"chunkSizeBytes":1048576,"backend":"opfs","fileName":"remote1.cache.aerospar","overlayFileName":"remote1.overlay.aerospar","overlayBlockSizeBytes":1048576,"cacheLimitBytes":536870912}}`,
		"aero-blank": `{"source":"local","id":"aero-blank","name":"Aero blank","backend":"opfs","kind":"hdd","format":"raw","fileName":"aero-blank.img","sizeBytes":1048576,"createdAtMs":5}`,
		"aero-v1":    `{"id":"aero-v1","name":"Old Aero disk","backend":"opfs","kind":"hdd","format":"raw","fileName":"aero-v1.img","sizeBytes":1048576,"createdAtMs":6,"lastUsedAtMs":7,"checksum":{"algorithm":"crc32","value":"` + crcHex(raw[:1<<20]) + `"}}`,
		"aero-conv": fmt.Sprintf(`{"source":"local","id":"aero-conv","name":"Aero converted","backend":"opfs","kind":"hdd","format":"aerospar","fileName":"aero-conv.aerospar","sizeBytes":%d,"createdAtMs":8,"checksum":{"algorithm":"crc32","value":%q}}`,
			len(raw), aeroBlocksCRC(raw, sparse.DefaultBlockSize)),
	}
	good, _ := os.ReadFile(filepath.Join(dir, "metadata.json"))
	var extra []string
	for id, rec := range records {
		extra = append(extra, fmt.Sprintf("%q:%s", id, rec))
	}
	ours := lib.disks[0].ID
	tampered := strings.Replace(string(good), `"disks":{`, `"mounts":{"hddId":`+fmt.Sprintf("%q", ours)+`},"disks":{`+strings.Join(extra, ",")+",", 1)
	testutil.WriteFile(t, dir, "metadata.json", []byte(tampered))

	m, err := manager.New(must(dirstore.New(dir)))
	if err != nil {
		t.Fatal(err)
	}
	recordsNow := func() map[string]json.RawMessage {
		b, _ := os.ReadFile(filepath.Join(dir, "metadata.json"))
		var c struct {
			Disks  map[string]json.RawMessage
			Mounts map[string]json.RawMessage
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		c.Disks["mounts"], _ = json.Marshal(c.Mounts)
		return c.Disks
	}
	checkAero := func(when string, changed ...string) {
		t.Helper()
		now := recordsNow()
		for id, rec := range records {
			if !strings.Contains(strings.Join(changed, ","), id) && string(now[id]) != rec {
				t.Errorf("%s: Aero's record %s was rewritten:\n%s\nwas\n%s", when, id, now[id], rec)
			}
		}
		for name, b := range aeroFiles {
			if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, b) {
				t.Errorf("%s: Aero's file %s was touched: %v", when, name, err)
			}
		}
	}
	checkAero("open")
	lib.checkFilesKept(t, dir)

	// The remote disk is listed as remote, and refused by name.
	r := must(m.Get("remote1"))
	if r.Source != "remote" || r.Name != "Remote Win98" {
		t.Errorf("remote record %+v", r)
	}
	for what, err := range map[string]error{
		"export": m.Export(ctx, "remote1", manager.ExportOptions{}, &bytes.Buffer{}),
		"verify": func() error { _, err := m.Verify(ctx, "remote1", nil); return err }(),
		"mount":  func() error { _, err := m.SetMounts(manager.MountChange{SetHdd: true, HddID: &r.ID}); return err }(),
	} {
		if manager.KindOf(err) != manager.KindUnsupported || !strings.Contains(err.Error(), "remote disk") {
			t.Errorf("%s of a remote disk: %v (%s)", what, err, manager.KindOf(err))
		}
	}
	if d := must(m.Get("aero-v1")); d.Source != "" || d.FileName != "aero-v1.img" {
		t.Errorf("v1 record %+v", d)
	}

	// Changing our disks leaves Aero's records as they were, and mounts
	// keep their absent cdId absent.
	if _, err := m.Rename(ours, "renamed"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetMounts(manager.MountChange{SetHdd: true, HddID: &lib.disks[2].ID}); err != nil {
		t.Fatal(err)
	}
	checkAero("after a rename and a mount")
	if mounts := string(recordsNow()["mounts"]); strings.Contains(mounts, "cdId") {
		t.Errorf("mounts %s: an absent cdId was written", mounts)
	}

	// Intact Aero disks verify: by Aero's per-block checksum, by the
	// logical one, and a record without a checksum gets one recorded.
	if v := must(m.Verify(ctx, "aero-conv", nil)); !v.OK || v.Definition != manager.DefinitionAeroBlocks {
		t.Errorf("verify of an Aero-converted disk: %+v", v)
	}
	if v := must(m.Verify(ctx, "aero-v1", nil)); !v.OK || v.Definition != manager.DefinitionLogical {
		t.Errorf("verify of a v1 disk: %+v", v)
	}
	v := must(m.Verify(ctx, "aero-blank", nil))
	if !v.OK || !v.Recorded {
		t.Errorf("verify of a disk without a checksum: %+v", v)
	}
	checkAero("after verifies", "aero-blank")
	var blank map[string]any
	json.Unmarshal(recordsNow()["aero-blank"], &blank)
	var was map[string]any
	json.Unmarshal([]byte(records["aero-blank"]), &was)
	if len(blank) != len(was)+1 || blank["checksum"] == nil || blank["lastUsedAtMs"] != nil {
		t.Errorf("the record without a checksum gained more than its checksum: %v", blank)
	}
	// A changed Aero disk fails by either definition.
	f := filepath.Join(dir, "aero-conv.aerospar")
	b, _ := os.ReadFile(f)
	b[len(b)-5] ^= 0x55
	os.WriteFile(f, b, 0o644)
	if v := must(m.Verify(ctx, "aero-conv", nil)); v.OK {
		t.Errorf("a changed Aero disk verified: %+v", v)
	}

	// Deleting the remote record removes the record alone.
	if err := m.Delete("remote1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get("remote1"); manager.KindOf(err) != manager.KindNotFound {
		t.Errorf("the remote record is still there: %v", err)
	}
	delete(records, "remote1")
	checkAero("after deleting the remote record", "aero-blank")
	_ = catalog.SourceRemote
}
