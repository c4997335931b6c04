package browsertest

// Sharing the origin with Aero (wilsonzlin/aero, web/src/storage): its
// records, files and stores beside ours, on both backends.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"aerodisk/internal/testutil"
)

// TestAeroRecords plants Aero's records beside a library — a remote disk
// (no fileName; on OPFS its cache, overlay and manifest files), a local disk
// without a checksum, and on OPFS a disk Aero converted, whose checksum is
// Aero's per-block one — and Aero's remote-cache records on IndexedDB. The
// manager opens without deleting or rewriting any of it, lists the remote
// disk as remote and refuses it by name where it cannot work, and verifies
// every intact Aero disk.
func TestAeroRecords(t *testing.T) { eachBackend(t, testAeroRecords) }

func testAeroRecords(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	var lib []libDisk
	mustEval(t, p, libraryJS, &lib)
	var res struct {
		Problems []string          `json:"problems"`
		Checks   map[string]string `json:"checks"`
	}
	mustEval(t, p, `const lib = args[0];
		const problems = [], checks = {};
		dm.close();
		const remote = { source: "remote", id: "remote1", name: "Remote Win98", kind: "hdd", format: "raw", sizeBytes: 1 << 30, createdAtMs: 1,
			remote: { imageId: "win98", version: "1", delivery: "range", urls: { url: "https://example.invalid/win98.img" } },
			cache: { chunkSizeBytes: 1 << 20, backend: H.backend, fileName: "remote1.cache.aerospar", overlayFileName: "remote1.overlay.aerospar", overlayBlockSizeBytes: 1 << 20, cacheLimitBytes: 512 << 20 } };
		const blankBytes = H.randomBytes(1 << 20, 55);
		const blank = { source: "local", id: "aero-local", name: "Aero disk", backend: H.backend, kind: "hdd", format: "raw", fileName: "aero-local.img", sizeBytes: 1 << 20, createdAtMs: 5 };
		const records = [remote, blank];
		const aeroFiles = { "remote1.cache.aerospar": "Aero's cache", "remote1.overlay.aerospar": "Aero's overlay", "remote1.manifest.json": '{"manifestVersion":1}' };
		if (H.backend === "idb") {
			await H.idbPutChunk("aero-local", 0, blankBytes);
			await H.idbPutIn("remote_chunk_meta", { cacheKey: "win98@1", bytes: 5 });
			await H.idbPutIn("remote_chunks", { cacheKey: "win98@1", chunkIndex: 0, lastAccess: 9, data: new Uint8Array([1, 2, 3]).buffer });
			await H.idbSetRecords([...(await H.idbRecords()), ...records]);
		} else {
			// A disk Aero converted: a copy of our converted disk's file, its
			// record with Aero's checksum of it.
			const beta = lib[1];
			await H.opfsWrite("aero/disks", "aero-conv.aerospar", await H.opfsReadBytes("aero/disks", beta.fileName));
			records.push({ source: "local", id: "aero-conv", name: "Aero converted", backend: "opfs", kind: "hdd", format: "aerospar",
				fileName: "aero-conv.aerospar", sizeBytes: 3 << 19, createdAtMs: 8,
				checksum: { algorithm: "crc32", value: H.aeroBlocksCRC(H.randomBytes(3 << 19, 2), 1 << 20) } });
			await H.opfsWrite("aero/disks", "aero-local.img", blankBytes);
			for (const [name, text] of Object.entries(aeroFiles)) await H.opfsWrite("aero/disks", name, text);
			const c = JSON.parse(await H.opfsRead("aero/disks", "metadata.json"));
			for (const r of records) c.disks[r.id] = r;
			await H.setCatalogFile("metadata.json", JSON.stringify(c));
		}
		const stored = async () => {
			if (H.backend === "idb") return Object.fromEntries((await H.idbRecords()).map((r) => [r.id, JSON.stringify(r)]));
			const c = JSON.parse(await H.opfsRead("aero/disks", "metadata.json"));
			return Object.fromEntries(Object.entries(c.disks).map(([id, r]) => [id, JSON.stringify(r)]));
		};
		const before = await stored();
		const check = async (when, changed = []) => {
			const now = await stored();
			for (const r of records) if (!changed.includes(r.id) && now[r.id] !== before[r.id]) problems.push(when + ": Aero's record " + r.id + " became " + now[r.id]);
			if (H.backend === "opfs") for (const [name, text] of Object.entries(aeroFiles)) {
				const got = await H.opfsRead("aero/disks", name);
				if (got !== text) problems.push(when + ": Aero's file " + name + " is " + JSON.stringify(got));
			} else {
				const rc = await H.idbAllIn("remote_chunks"), rm = await H.idbAllIn("remote_chunk_meta");
				if (rc.length !== 1 || rm.length !== 1) problems.push(when + ": Aero's remote cache stores hold " + rc.length + " and " + rm.length + " records");
			}
		};

		await H.open();
		if ((dm.openReport.swept || []).length) problems.push("swept " + dm.openReport.swept);
		await check("open");
		const r = await dm.getDisk("remote1");
		checks.remoteSource = r.source;
		for (const [what, fn] of [["export", () => dm.exportDisk("remote1")], ["verify", () => dm.verifyDisk("remote1")],
			["mount", () => dm.setMounts({ hddId: "remote1" })]]) {
			const e = await H.errorOf(fn);
			checks[what] = e ? e.name + (e.message.includes("remote disk") ? "" : " (no word of a remote disk: " + e.message + ")") : "resolved";
		}
		await dm.renameDisk(lib[0].id, "renamed");
		await dm.setMounts({ hddId: lib[2].id });
		await check("after a rename and a mount");
		const vl = await dm.verifyDisk("aero-local");
		checks.local = vl.ok && vl.recorded ? "recorded" : JSON.stringify(vl);
		if (H.backend === "opfs") {
			const vc = await dm.verifyDisk("aero-conv");
			checks.converted = vc.ok ? vc.definition : JSON.stringify(vc);
		}
		await check("after verifies", ["aero-local"]);
		const local = JSON.parse((await stored())["aero-local"]);
		if (Object.keys(local).length !== Object.keys(blank).length + 1 || !local.checksum) problems.push("the record without a checksum became " + JSON.stringify(local));
		await dm.deleteDisk("remote1");
		records.shift();
		await check("after deleting the remote record", ["aero-local"]);
		if (H.backend === "opfs" && !(await H.opfsRead("aero/disks", "remote1.cache.aerospar"))) problems.push("the remote disk's cache went with its record");
		return { problems, checks };`, &res, lib)
	for _, pr := range res.Problems {
		t.Error(pr)
	}
	want := map[string]string{"remoteSource": "remote", "export": "UnsupportedFormatError", "verify": "UnsupportedFormatError",
		"mount": "UnsupportedFormatError", "local": "recorded"}
	if be == "opfs" {
		want["converted"] = "aero-blocks"
	}
	for k, v := range want {
		if res.Checks[k] != v {
			t.Errorf("%s: %q, want %q", k, res.Checks[k], v)
		}
	}
	checkLibrary(t, p, lib)
}

// TestAeroOpensOurDatabase: the aero-disk-manager database this manager
// creates is at Aero's version (3) with Aero's stores, key paths and
// indexes, so Aero's own open (metadata.ts, openDiskManagerDb) needs no
// upgrade — and is not blocked while our manager has it open; and the chunk
// records are what Aero's reader takes (idb_chunk_disk.ts: data an
// ArrayBuffer or a Uint8Array, at most 4 MiB a chunk).
func TestAeroOpensOurDatabase(t *testing.T) {
	parallel(t)
	_, p := openDMOn(t, "idb")
	var lib []libDisk
	mustEval(t, p, libraryJS, &lib)
	var r struct {
		Version  int            `json:"version"`
		Upgraded any            `json:"upgraded"`
		Stores   map[string]any `json:"stores"`
	}
	mustEval(t, p, `return H.aeroOpenDB();`, &r)
	if r.Version != 3 || r.Upgraded != false {
		t.Errorf("Aero's open: version %d, upgraded %v", r.Version, r.Upgraded)
	}
	for _, want := range []string{
		`"chunks":{"indexes":[{"keyPath":"id","name":"by_id"}],"keyPath":["id","index"]}`,
		`"disks":{"indexes":[],"keyPath":"id"}`,
		`"mounts":{"indexes":[],"keyPath":"key"}`,
		`"remote_chunk_meta":{"indexes":[],"keyPath":"cacheKey"}`,
		`"remote_chunks":{"indexes":[{"keyPath":"cacheKey","name":"by_cacheKey"},{"keyPath":["cacheKey","lastAccess"],"name":"by_cacheKey_lastAccess"}],"keyPath":["cacheKey","chunkIndex"]}`,
	} {
		if got := mustJSON(t, r.Stores); !strings.Contains(got, want) {
			t.Errorf("stores %s lack %s", got, want)
		}
	}
	checkChunks(t, p) // Uint8Arrays owning their buffers, ≤ 4 MiB: Aero's reader takes them
	checkLibrary(t, p, lib)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAeroReadsOurAeroSpar: every AEROSPAR file the browser stores — blank
// disks (60 GB and a floppy), a converted all-zero image, a converted disk
// with data — passes Aero's three readers' checks (testutil.AeroCheck,
// written from Aero's source), reads as its content by Aero's rules, and
// a blank 60 GB disk costs at most 1 MiB of storage.estimate().
func TestAeroReadsOurAeroSpar(t *testing.T) {
	parallel(t)
	_, p := openDMOn(t, "opfs")
	var files []struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		CRC    string `json:"crc"`
		Bytes  string `json:"bytes"` // base64
		Growth int64  `json:"growth"`
	}
	mustEval(t, p, `const out = [];
		const add = async (d, crc, growth = 0) => {
			const b = await H.opfsReadBytes("aero/disks", d.fileName);
			out.push({ name: d.name, size: d.sizeBytes, crc, bytes: H.base64(b), growth });
		};
		const u0 = (await navigator.storage.estimate()).usage;
		const big = await dm.createBlankDisk({ name: "60 GB", sizeBytes: 60e9 - 60e9 % 512 });
		const u1 = (await navigator.storage.estimate()).usage;
		await add(big, big.checksum.value, u1 - u0);
		const fl = await dm.createBlankDisk({ name: "floppy", sizeBytes: 737280, kind: "floppy" });
		await add(fl, fl.checksum.value);
		const zeros = await dm.importDiskConverted(new File([new Uint8Array(4 << 20)], "zeros.img"));
		await add(zeros, zeros.checksum.value);
		const data = H.randomBytes((5 << 20) + 4096, 3);
		data.fill(0, 1 << 20, 3 << 20);
		const mixed = await dm.importDiskConverted(new File([data], "mixed.img"));
		await add(mixed, H.crc32(data));
		return out;`, &files)
	for _, f := range files {
		b, err := base64.StdEncoding.DecodeString(f.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(b)
		if err := testutil.AeroCheck(r, int64(len(b))); err != nil {
			t.Errorf("%s (%d bytes): Aero refuses it: %v", f.Name, len(b), err)
			continue
		}
		if f.Size <= 64<<20 {
			content, err := testutil.AeroContent(r, int64(len(b)))
			if err != nil || int64(len(content)) != f.Size || crcBytes(content) != f.CRC {
				t.Errorf("%s: Aero reads %d bytes (%v), CRC %s, want %d bytes CRC %s", f.Name, len(content), err, crcBytes(content), f.Size, f.CRC)
			}
		}
		t.Logf("%s: %d-byte file, Aero accepts it", f.Name, len(b))
	}
	if len(files) > 0 && files[0].Growth > 1<<20+16<<10 {
		t.Errorf("a blank 60 GB disk took %d bytes of storage.estimate()", files[0].Growth)
	}
}
