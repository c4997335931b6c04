package browsertest

// Block devices (dm.openDisk; docs/browser.md, "Block devices") in the real
// browser, on both backends: a raw and an AEROSPAR disk written and read
// back against a model, the refusals (ranges, read-only devices, formats
// direct mode cannot write, CDs, a second writer in another tab, catalog
// operations on a disk open for writing), the stale checksum, and writes a
// flush acknowledged surviving a crashed renderer.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
	"aerodisk/internal/testutil"
)

// devSum is DiskMeta.checksum with its stale flag.
type devSum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
	Stale     bool   `json:"stale"`
}

// devSize is the size of the test disks: not a multiple of 4 MiB (the
// IndexedDB chunk, the worker's piece) nor of 1 MiB.
const devSize = 9<<20 + 3*512

// devFixtures writes the disks every device test imports: raw.img (raw
// content), disk.aerospar (an AEROSPAR image, imported as it is on both
// backends, with data in some blocks), q.qcow2 and disc.iso. It returns
// the CRC32 of raw.img's and disk.aerospar's logical content.
func devFixtures(t *testing.T) (fs *fixtureSet, rawCRC, sparCRC string) {
	t.Helper()
	fs = newFixtures(t)
	raw := testutil.MixedData(devSize, 21)
	rawPath := fs.Add(t, "raw.img", raw)
	logical := make([]byte, devSize)
	copy(logical[1<<20:], testutil.MixedData(3<<20, 22))
	copy(logical[devSize-4096:], testutil.MixedData(4096, 23))
	f, err := os.Create(filepath.Join(fs.Dir, "disk.aerospar"))
	if err != nil {
		t.Fatal(err)
	}
	sd, err := sparse.Create(storage.File{File: f}, devSize, 64<<10)
	if err == nil {
		_, err = sd.WriteAt(logical, 0)
	}
	if err == nil {
		err = sd.Close()
	}
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	testutil.QemuImg(t, "convert", "-q", "-f", "raw", "-O", "qcow2", rawPath, filepath.Join(fs.Dir, "q.qcow2"))
	content := filepath.Join(t.TempDir(), "iso")
	os.MkdirAll(content, 0o755)
	os.WriteFile(filepath.Join(content, "readme.txt"), []byte("a CD"), 0o644)
	testutil.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-o", filepath.Join(fs.Dir, "disc.iso"), content)
	return fs, crcBytes(raw), crcBytes(logical)
}

// devModelJS defines modelRun(dev, model, seed, ops): a random sequence of
// writes, discards, reads (read and readInto, into views at odd places of a
// larger buffer), and flushes, from 1 sector to 2 MiB at aligned offsets,
// checked against model (a Uint8Array of the disk's bytes, kept in step).
// A write's bytes are scribbled over as soon as write() returns: the
// device must have copied them. It returns how many of each it did.
const devModelJS = `const modelRun = async (dev, model, seed, ops) => {
		let x = seed >>> 0 || 1;
		const rnd = (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
		const sectors = dev.sizeBytes / 512;
		const counts = { write: 0, discard: 0, read: 0, readInto: 0, flush: 0 };
		const big = new Uint8Array(4 << 20);
		const same = (a, off) => { for (let i = 0; i < a.length; i++) if (a[i] !== model[off + i]) return false; return true; };
		for (let i = 0; i < ops; i++) {
			let n = 1 + rnd(Math.min(sectors, 4096));
			if (rnd(2) === 0) n = 1 + rnd(16);
			const off = rnd(sectors - n + 1) * 512, len = n * 512;
			switch (rnd(7)) {
			case 0: case 1: case 2: {
				const b = H.randomBytes(len, seed * 1000 + i + 1);
				if (rnd(4) === 0) b.fill(0, 0, len >> 1); // zeros over allocated and unallocated blocks
				model.set(b, off);
				const p = dev.write(off, b);
				b.fill(0xa5);
				await p;
				counts.write++;
				break;
			}
			case 3:
				await dev.discard(off, len);
				model.fill(0, off, off + len);
				counts.discard++;
				break;
			case 4: {
				const got = await dev.read(off, len);
				if (got.length !== len || !same(got, off)) throw new Error("read [" + off + ", +" + len + ") differs from the model at op " + i);
				counts.read++;
				break;
			}
			case 5: {
				const at = rnd(8) * 8;
				const target = big.subarray(at, at + len);
				await dev.readInto(off, target);
				if (!same(target, off)) throw new Error("readInto [" + off + ", +" + len + ") differs from the model at op " + i);
				counts.readInto++;
				break;
			}
			case 6:
				await dev.flush();
				counts.flush++;
				break;
			}
		}
		return counts;
	};
	`

// importDevDisks imports the fixtures into p's dm: {raw, spar, qcow, iso}
// as DiskMeta.
type devDisks struct {
	Raw  diskMeta `json:"raw"`
	Spar diskMeta `json:"spar"`
	Qcow diskMeta `json:"qcow"`
	ISO  diskMeta `json:"iso"`
}

func importDevDisks(t *testing.T, p *Page, fs *fixtureSet) devDisks {
	t.Helper()
	var d devDisks
	mustEval(t, p, `const get = (name) => H.fixture(args[0] + "/" + name);
		return {
			raw: await dm.importDisk(await get("raw.img"), { name: "raw" }),
			spar: await dm.importDisk(await get("disk.aerospar"), { name: "spar" }),
			qcow: await dm.importDisk(await get("q.qcow2"), { name: "qcow" }),
			iso: await dm.importDisk(await get("disc.iso"), { name: "disc" }),
		};`, &d, fs.Rel)
	for _, c := range []struct {
		d            diskMeta
		format, kind string
	}{{d.Raw, "raw", "hdd"}, {d.Spar, "aerospar", "hdd"}, {d.Qcow, "qcow2", "hdd"}, {d.ISO, "iso", "cd"}} {
		if c.d.Format != c.format || c.d.Kind != c.kind {
			t.Fatalf("%s stored as %s %s, want %s %s", c.d.Name, c.d.Kind, c.d.Format, c.kind, c.format)
		}
	}
	return d
}

// modelOps is how many random operations TestDeviceWriteRead runs per disk.
// Fewer on IndexedDB, whose files keep one 4 MiB chunk in memory: an
// operation on another chunk than the last one's costs a transaction and a
// read there (tens of milliseconds), against well under one on OPFS.
var modelOps = map[string]int{"opfs": 250, "idb": 120}

// diskCase is a disk the device tests drive, with its content's CRC32.
type diskCase struct {
	d   diskMeta
	crc string
}

// rawAndSparDisks imports the device fixtures into p's manager: the raw
// and the AEROSPAR disk.
func rawAndSparDisks(t *testing.T, p *Page) []diskCase {
	t.Helper()
	fs, rawCRC, sparCRC := devFixtures(t)
	disks := importDevDisks(t, p, fs)
	return []diskCase{{disks.Raw, rawCRC}, {disks.Spar, sparCRC}}
}

// TestDeviceWriteRead: a raw and an AEROSPAR disk written and read through
// writable devices against a model, byte for byte; the export after closing
// is the model; the checksum is stale after the first write and verifyDisk
// records the model's; a reopened device reads the model.
func TestDeviceWriteRead(t *testing.T) { eachBackend(t, testDeviceWriteRead) }

func testDeviceWriteRead(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	for _, c := range rawAndSparDisks(t, p) {
		t.Run(c.d.Format, func(t *testing.T) {
			var r struct {
				Info struct {
					SizeBytes  int64  `json:"sizeBytes"`
					SectorSize int    `json:"sectorSize"`
					ReadOnly   bool   `json:"readOnly"`
					DiskID     string `json:"diskId"`
				} `json:"info"`
				StartCRC   string         `json:"startCrc"`
				Counts     map[string]int `json:"counts"`
				Stale      *devSum        `json:"stale"`
				ModelCRC   string         `json:"modelCrc"`
				Export     streamSum      `json:"export"`
				Verify     map[string]any `json:"verify"`
				After      *devSum        `json:"after"`
				ReopenSame bool           `json:"reopenSame"`
			}
			mustEval(t, p, devModelJS+`const dev = await dm.openDisk(args[0], { writable: true, mode: "direct" });
				const info = { sizeBytes: dev.sizeBytes, sectorSize: dev.sectorSize, readOnly: dev.readOnly, diskId: dev.diskId };
				const model = await dev.read(0, dev.sizeBytes);
				const startCrc = H.crc32(model);
				const counts = await modelRun(dev, model, args[1], args[2]);
				const stale = (await dm.getDisk(args[0])).checksum;
				await dev.close();
				const modelCrc = H.crc32(model);
				const exp = await H.crc32Stream(await dm.exportDisk(args[0]));
				const verify = await dm.verifyDisk(args[0]);
				const after = (await dm.getDisk(args[0])).checksum;
				const again = await dm.openDisk(args[0]);
				const back = await again.read(0, again.sizeBytes);
				await again.close();
				return { info, startCrc, counts, stale, modelCrc, export: exp, verify, after, reopenSame: H.crc32(back) === modelCrc };`,
				&r, c.d.ID, len(c.d.Format), modelOps[be])
			t.Logf("ops: %v", r.Counts)
			if r.Info.SizeBytes != devSize || r.Info.SectorSize != 512 || r.Info.ReadOnly || r.Info.DiskID != c.d.ID {
				t.Errorf("device: %+v", r.Info)
			}
			if r.StartCRC != c.crc {
				t.Errorf("the device read %s before any write, want %s", r.StartCRC, c.crc)
			}
			for _, op := range []string{"write", "discard", "read", "readInto", "flush"} {
				if r.Counts[op] == 0 {
					t.Errorf("the sequence had no %s", op)
				}
			}
			if r.Stale == nil || !r.Stale.Stale || r.Stale.Value != c.crc {
				t.Errorf("checksum after writes: %+v, want %s marked stale", r.Stale, c.crc)
			}
			if r.Export.CRC32 != r.ModelCRC || r.Export.Bytes != devSize {
				t.Errorf("export after writes: %+v, want the model's %s", r.Export, r.ModelCRC)
			}
			if r.Verify["ok"] != true || r.Verify["recorded"] != true || r.Verify["checksum"] != r.ModelCRC {
				t.Errorf("verifyDisk after writes: %v, want recorded %s", r.Verify, r.ModelCRC)
			}
			if r.After == nil || r.After.Stale || r.After.Value != r.ModelCRC {
				t.Errorf("checksum after verifyDisk: %+v, want %s", r.After, r.ModelCRC)
			}
			if !r.ReopenSame {
				t.Error("a new device does not read what the last one wrote")
			}
		})
	}
	if be == "idb" {
		checkChunks(t, p)
	}
}

// TestDeviceRefusals: ranges that break the sector rule, read-only devices,
// a qcow2 disk's writable direct open, a CD, the overlay mode, argument
// types, closed devices, and what a disk open for writing refuses in the
// same tab.
func TestDeviceRefusals(t *testing.T) { eachBackend(t, testDeviceRefusals) }

func testDeviceRefusals(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs, _, _ := devFixtures(t)
	d := importDevDisks(t, p, fs)
	var cd diskMeta
	mustEval(t, p, `return dm.importDisk(await H.fixture(args[0] + "/raw.img"), { name: "raw cd", kind: "cd" });`, &cd, fs.Rel)

	mustEval(t, p, `globalThis.rw = await dm.openDisk(args[0], { writable: true }); globalThis.ro = await dm.openDisk(args[1]);`, nil, d.Spar.ID, d.Raw.ID)
	for _, r := range []struct{ off, n int64 }{
		{1, 512}, {512, 100}, {0, 0}, {-512, 512}, {devSize, 512}, {devSize - 512, 1024}, {1 << 40, 512},
	} {
		for _, body := range []string{
			`return rw.read(args[0], args[1]);`,
			`return rw.write(args[0], new Uint8Array(args[1] > 0 ? args[1] : 0));`,
			`return rw.discard(args[0], args[1]);`,
			`return rw.readInto(args[0], new Uint8Array(args[1] > 0 ? args[1] : 0));`,
			`return ro.read(args[0], args[1]);`,
		} {
			t.Run(fmt.Sprint(body[7:15], r.off, "+", r.n), func(t *testing.T) {
				wantErrName(t, p, "InvalidArgumentError", body, r.off, r.n)
			})
		}
	}
	for _, body := range []string{
		`return rw.read(0.5, 512);`,
		`return rw.read("0", 512);`,
		`return rw.write(0, [1, 2, 3]);`,
		`return rw.write(0, new ArrayBuffer(512));`,
		`return rw.readInto(0, new ArrayBuffer(512));`,
		`return dm.openDisk(args[0], { writable: "yes" });`,
		`return dm.openDisk(args[0], { mode: 7 });`,
		`return dm.openDisk(args[0], { mode: "cow" });`,
		`return dm.openDisk(args[0], null);`,
		`return dm.openDisk(42);`,
	} {
		wantErrName(t, p, "InvalidArgumentError", body, d.Raw.ID)
	}
	var stale *devSum
	mustEval(t, p, `return (await dm.getDisk(args[0])).checksum;`, &stale, d.Spar.ID)
	if stale == nil || stale.Stale {
		t.Errorf("refused writes made the checksum %+v", stale)
	}

	// Read-only devices: any stored format reads, nothing writes.
	e := wantErrName(t, p, "ReadOnlyError", `return ro.write(0, new Uint8Array(512));`)
	t.Logf("read-only write: %s", e.Message)
	wantErrName(t, p, "ReadOnlyError", `return ro.discard(0, 512);`)
	var q struct {
		ReadOnly bool   `json:"readOnly"`
		Sector   []byte `json:"sector"`
		Same     bool   `json:"same"`
		CDMagic  string `json:"cdMagic"`
	}
	mustEval(t, p, `const q = await dm.openDisk(args[0]);
		const a = await q.read(0, 1 << 20), b = await ro.read(0, 1 << 20);
		const same = H.crc32(a) === H.crc32(b);
		await q.close();
		const c = await dm.openDisk(args[1]);
		const pvd = await c.read(16 * 2048, 2048);
		await c.close();
		return { readOnly: q.readOnly, same, cdMagic: String.fromCharCode(...pvd.subarray(1, 6)) };`, &q, d.Qcow.ID, d.ISO.ID)
	if !q.ReadOnly || !q.Same || q.CDMagic != "CD001" {
		t.Errorf("read-only qcow2 and CD devices: %+v", q)
	}
	e = wantErrName(t, p, "InvalidArgumentError", `return dm.openDisk(args[0], { writable: true });`, d.Qcow.ID)
	t.Logf("writable direct qcow2: %s", e.Message)
	wantErrName(t, p, "InvalidArgumentError", `return dm.openDisk(args[0], { writable: true, mode: "direct" });`, d.Qcow.ID)
	for _, id := range []string{d.ISO.ID, cd.ID} {
		e = wantErrName(t, p, "ReadOnlyError", `return dm.openDisk(args[0], { writable: true });`, id)
		wantErrName(t, p, "ReadOnlyError", `return dm.openDisk(args[0], { writable: true, mode: "overlay" });`, id)
	}
	t.Logf("writable CD: %s", e.Message)
	// Read-only mode "overlay" before any default overlay exists reads the
	// base itself (layers_test.go covers the writable one).
	var roID string
	mustEval(t, p, `const dev = await dm.openDisk(args[0], { mode: "overlay" }); const id = dev.diskId; await dev.close(); return id;`, &roID, d.Raw.ID)
	if roID != d.Raw.ID {
		t.Errorf("read-only overlay mode opened %s, want the base %s", roID, d.Raw.ID)
	}
	wantErrName(t, p, "NotFoundError", `return dm.openDisk("no such disk");`)

	// A disk open for writing in this tab: no second device, no delete,
	// rename, export or verify; a read-only device blocks only a delete.
	for _, body := range []string{
		`return dm.openDisk(args[0], { writable: true });`,
		`return dm.openDisk(args[0]);`,
		`return dm.deleteDisk(args[0]);`,
		`return dm.renameDisk(args[0], "renamed");`,
		`return dm.exportDisk(args[0]);`,
		`return H.drain(await dm.exportDisk(args[0]));`,
		`return dm.verifyDisk(args[0]);`,
	} {
		e = wantErrName(t, p, "InUseError", body, d.Spar.ID)
	}
	t.Logf("open for writing: %s", e.Message)
	wantErrName(t, p, "InUseError", `return dm.deleteDisk(args[0]);`, d.Raw.ID)
	wantErrName(t, p, "InUseError", `return dm.openDisk(args[0], { writable: true });`, d.Raw.ID)
	var ok struct {
		Name  string `json:"name"`
		CRC   string `json:"crc"`
		Other string `json:"other"`
	}
	mustEval(t, p, `const r = await dm.renameDisk(args[0], "raw, renamed");
		const crc = (await H.crc32Stream(await dm.exportDisk(args[0]))).crc32;
		const other = (await dm.renameDisk(args[1], "qcow, renamed")).name;
		return { name: r.name, crc, other };`, &ok, d.Raw.ID, d.Qcow.ID)
	if ok.Name != "raw, renamed" || ok.CRC != d.Raw.Checksum.Value || ok.Other != "qcow, renamed" {
		t.Errorf("beside a read-only device: %+v", ok)
	}

	// Closed devices refuse everything but another close.
	mustEval(t, p, `await rw.close(); await rw.close(); await ro.close();`, nil)
	for _, body := range []string{`return rw.read(0, 512);`, `return rw.write(0, new Uint8Array(512));`, `return rw.flush();`, `return ro.readInto(0, new Uint8Array(512));`} {
		wantErrName(t, p, "InvalidArgumentError", body)
	}
	mustEval(t, p, `await dm.renameDisk(args[0], "spar, renamed"); await dm.deleteDisk(args[0]);`, nil, d.Spar.ID)
}

// TestDeviceManagerClose: closing the DiskManager closes its devices after
// the writes already sent, so they reach storage without a flush; its
// devices refuse calls after; a new manager opens the disk for writing.
func TestDeviceManagerClose(t *testing.T) { eachBackend(t, testDeviceManagerClose) }

func testDeviceManagerClose(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	var r struct {
		After string `json:"after"`
		Want  string `json:"want"`
		Got   string `json:"got"`
	}
	mustEval(t, p, `const d = await dm.createBlankDisk({ name: "blank", sizeBytes: 8 << 20 });
		const dev = await dm.openDisk(d.id, { writable: true });
		const bytes = H.randomBytes(3 << 20, 5);
		dev.write(512, bytes).catch(() => {}); // not awaited: the close comes after it
		await dm.close();
		const after = await H.errorOf(() => dev.read(0, 512));
		const dm2 = await H.open();
		const dev2 = await dm2.openDisk(d.id, { writable: true });
		const got = await dev2.read(512, 3 << 20);
		await dev2.close();
		return { after: after && after.name, want: H.crc32(bytes), got: H.crc32(got) };`, &r)
	if r.Got != r.Want {
		t.Errorf("a write sent before dm.close() is not there: %s, want %s", r.Got, r.Want)
	}
	if r.After != "InvalidArgumentError" {
		t.Errorf("a device of a closed manager: %s", r.After)
	}
}

// TestDeviceTwoTabs: one writer per disk across tabs. While tab A writes,
// tab B can neither open the disk (for writing or reading) nor delete,
// rename, export or verify it; once A closes, both tabs read it at once,
// and neither can write it while the other reads.
func TestDeviceTwoTabs(t *testing.T) { eachBackend(t, testDeviceTwoTabs) }

func testDeviceTwoTabs(t *testing.T, be string) {
	s, pa := openDMOn(t, be)
	fs, _, _ := devFixtures(t)
	d := importDevDisks(t, pa, fs)
	pb := newPage(t, s, "tab-b")
	mustEval(t, pb, `await H.open();`, nil)
	for _, id := range []string{d.Raw.ID, d.Spar.ID} {
		var want string
		mustEval(t, pa, `globalThis.w = await dm.openDisk(args[0], { writable: true });
			const b = H.randomBytes(1 << 20, 9);
			await w.write(2 << 20, b);
			await w.flush();
			return H.crc32(b);`, &want, id)
		for _, body := range []string{
			`return dm.openDisk(args[0], { writable: true });`,
			`return dm.openDisk(args[0]);`,
			`return dm.deleteDisk(args[0]);`,
			`return dm.renameDisk(args[0], "renamed in tab B");`,
			`return H.drain(await dm.exportDisk(args[0]));`,
			`return dm.verifyDisk(args[0]);`,
		} {
			wantErrName(t, pb, "InUseError", body, id)
		}
		mustEval(t, pa, `await w.close();`, nil)
		var got []string
		mustEval(t, pb, `globalThis.r = await dm.openDisk(args[0]); return [H.crc32(await r.read(2 << 20, 1 << 20))];`, &got, id)
		var gotA string
		mustEval(t, pa, `globalThis.r = await dm.openDisk(args[0]); return H.crc32(await r.read(2 << 20, 1 << 20));`, &gotA, id)
		if got[0] != want || gotA != want {
			t.Errorf("readers in two tabs read %s and %s, want %s", got[0], gotA, want)
		}
		// A writer waits for the other tab's reader to go.
		mustEval(t, pa, `await r.close();`, nil)
		wantErrName(t, pa, "InUseError", `return dm.openDisk(args[0], { writable: true });`, id)
		mustEval(t, pb, `await r.close();`, nil)
		mustEval(t, pa, `const w = await dm.openDisk(args[0], { writable: true }); await w.close();`, nil, id)
	}
	if l := listDisks(t, pa); len(l) != 4 {
		t.Errorf("%d disks listed, want 4", len(l))
	}
}

// TestDeviceCrash: writes acknowledged by flush() survive a renderer crash
// (CDP Page.crash, workers killed without cleanup) at random moments of a
// write storm, on a raw and an AEROSPAR disk. After each crash a new tab
// finds the disk listed with a stale checksum, every flushed write there
// (writes after the last flush may or may not be), the disk writable again
// and verifyDisk working. Its tabs crash in a browser of its own
// (TestTabCrashes says why).
func TestDeviceCrash(t *testing.T) { eachBackend(t, testDeviceCrash) }

func testDeviceCrash(t *testing.T, be string) {
	requireWasm(t)
	s := ownSession(t)
	s.Backend = be
	rng := rand.New(rand.NewPCG(uint64(len(be)), 13))
	fs, _, _ := devFixtures(t)
	p := newPage(t, s, "setup")
	mustEval(t, p, `await H.open();`, nil)
	disks := importDevDisks(t, p, fs)
	p.Close()
	for round, d := range []diskMeta{disks.Raw, disks.Spar, disks.Raw, disks.Spar} {
		p := newPage(t, s, fmt.Sprint("writer-", round))
		// The tab writes 64 KiB slots round the disk, each with bytes of a
		// seed of its own, flushing every third write; after each flush it
		// lists the writes that flush acknowledged.
		mustEval(t, p, `await H.open(); globalThis.dev = await dm.openDisk(args[0], { writable: true });
			globalThis.flushed = [];
			globalThis.storm = (async () => {
				let pending = [];
				for (let i = 0; ; i++) {
					const slot = i % args[2], seed = args[1] + i;
					await dev.write(slot * 65536, H.randomBytes(65536, seed));
					pending.push([slot, seed]);
					if (i % 3 === 2) { await dev.flush(); flushed.push(...pending); pending = []; }
				}
			})();`, nil, d.ID, (round+1)*100000, crashSlots)
		// Once it has had some flushes acknowledged (more each round) it
		// writes on for a moment; what it has acknowledged by then is read,
		// and it crashes, mid-storm.
		var acked [][2]int
		mustEval(t, p, `while (flushed.length < 3 * (1 + 4 * args[0])) await H.sleep(5);
			await H.sleep(args[1]);
			return flushed.slice();`, &acked, round, rng.IntN(100))
		p.Crash()
		latest := map[int]int{}
		for _, a := range acked {
			latest[a[0]] = max(latest[a[0]], a[1])
		}
		q := newPage(t, s, fmt.Sprint("after-", round))
		var r struct {
			Listed bool           `json:"listed"`
			Stale  bool           `json:"stale"`
			Bad    []string       `json:"bad"`
			Verify map[string]any `json:"verify"`
		}
		// Each sector of a slot last acknowledged with seed k holds k's
		// bytes or those of a later write to the slot (k + n·slots,
		// written after that flush, acknowledged or not): a sector is
		// written whole or not at all, and nothing acknowledged is lost.
		mustEval(t, q, `await H.open();
			const meta = await dm.getDisk(args[0]);
			const dev = await dm.openDisk(args[0], { writable: true });
			const bad = [];
			for (const [slot, seed] of Object.entries(args[1])) {
				const got = await dev.read(slot * 65536, 65536);
				const candidates = []; // made as needed: mostly one or two
				const candidate = (j) => (candidates[j] ??= H.randomBytes(65536, seed + j * args[2]));
				const holds = (c, sec) => { for (let i = sec * 512; i < sec * 512 + 512; i++) if (c[i] !== got[i]) return false; return true; };
				for (let sec = 0; sec < 128; sec++) {
					let ok = false;
					for (let j = 0; j < 40 && !ok; j++) ok = holds(candidate(j), sec);
					if (!ok) { bad.push(slot + ":" + sec); break; }
				}
			}
			await dev.write(0, H.randomBytes(512, 7)); // writable again: the crashed tab's hold is gone
			await dev.close();
			const verify = await dm.verifyDisk(args[0]);
			return { listed: !!meta, stale: !!(meta.checksum && meta.checksum.stale), bad, verify };`, &r, d.ID, latest, crashSlots)
		t.Logf("round %d (%s): %d writes acknowledged before the crash", round, d.Format, len(acked))
		if !r.Listed || !r.Stale {
			t.Errorf("round %d: after the crash listed %v, stale %v", round, r.Listed, r.Stale)
		}
		if len(r.Bad) > 0 {
			t.Errorf("round %d (%s): acknowledged writes lost at slot:sector %v", round, d.Format, r.Bad)
		}
		if r.Verify["ok"] != true {
			t.Errorf("round %d: verifyDisk after the crash: %v", round, r.Verify)
		}
		q.Close()
	}
}

// crashSlots is how many 64 KiB slots TestDeviceCrash's storm writes round
// (the disks hold 147).
const crashSlots = 144
