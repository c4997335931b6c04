package browsertest

// Overlays, checkpoints and deltas (docs/overlays.md) in the real browser,
// on both backends: every layer operation through the DiskManager API,
// with block devices writing the layers, checked byte for byte against a
// model the page keeps.

import (
	"strings"
	"testing"
)

// TestLayers: an overlay written through a device keeps its base pristine;
// a checkpoint taken while the device writes freezes exactly what was
// written before it; restore, revert, the default overlay of mode
// "overlay", a qcow2 base, deltas out and back in, the rules that keep a
// base immutable, deleting a checkpoint (a merge), commit and flatten.
func TestLayers(t *testing.T) { eachBackend(t, testLayers) }

func testLayers(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs, rawCRC, _ := devFixtures(t)
	disks := importDevDisks(t, p, fs)
	var r struct {
		OverlayFresh   string            `json:"overlayFresh"`
		OverlayWritten string            `json:"overlayWritten"`
		Model          string            `json:"model"`
		BaseAfter      string            `json:"baseAfter"`
		AtCheckpoint   string            `json:"atCheckpoint"`
		ModelAtCp      string            `json:"modelAtCp"`
		Head           string            `json:"head"`
		ModelHead      string            `json:"modelHead"`
		Restored       string            `json:"restored"`
		Reverted       string            `json:"reverted"`
		Checkpoints    []map[string]any  `json:"checkpoints"`
		DeleteBase     string            `json:"deleteBase"`
		WriteBase      string            `json:"writeBase"`
		DefaultID      string            `json:"defaultId"`
		DefaultAgain   string            `json:"defaultAgain"`
		DefaultParent  string            `json:"defaultParent"`
		BaseUntouched  string            `json:"baseUntouched"`
		QcowOverlay    string            `json:"qcowOverlay"`
		QcowModel      string            `json:"qcowModel"`
		Delta          string            `json:"delta"`
		DeltaOther     map[string]string `json:"deltaOther"`
		AfterDelete    string            `json:"afterDelete"`
		CpAfterDelete  int               `json:"cpAfterDelete"`
		Committed      string            `json:"committed"`
		BaseCommitted  string            `json:"baseCommitted"`
		BaseStale      bool              `json:"baseStale"`
		Flat           string            `json:"flat"`
		FlatParent     string            `json:"flatParent"`
	}
	mustEval(t, p, devModelJS+`const [raw, qcow, spar] = args;
		const crcOf = async (id, o) => (await H.crc32Stream(await dm.exportDisk(id, o))).crc32;
		const errName = async (f) => { try { await f(); return "none"; } catch (e) { return e.name + ": " + e.message; } };
		const out = {};
		const ov = await dm.createOverlay(raw, { name: "work" });
		out.overlayFresh = await crcOf(ov.id);

		// Writes through a device land in the overlay.
		let dev = await dm.openDisk(ov.id, { writable: true });
		const model = await dev.read(0, dev.sizeBytes);
		await modelRun(dev, model, 7, 60);
		await dev.flush();
		// A checkpoint while the device is open: what was written before it.
		const cp = await dm.checkpoint(ov.id, { name: "first" });
		const atCp = model.slice();
		await modelRun(dev, model, 8, 60);
		await dev.close();
		out.model = H.crc32(atCp);
		out.overlayWritten = await crcOf(ov.id);
		out.modelHead = H.crc32(model);
		out.baseAfter = await crcOf(raw);
		out.atCheckpoint = await crcOf(ov.id, { checkpointId: cp.id });
		out.modelAtCp = H.crc32(atCp);
		out.checkpoints = await dm.listCheckpoints(ov.id);

		// The base is immutable while it has an overlay.
		out.deleteBase = await errName(() => dm.deleteDisk(raw));
		out.writeBase = await errName(() => dm.openDisk(raw, { writable: true }));

		// A delta of the checkpoint, onto the same base and onto another.
		const delta = await H.streamBytes(await dm.exportDelta(ov.id, { checkpointId: cp.id }));
		const file = new File([delta], "first.aerodelta");
		const imported = await dm.importDelta(file, { baseId: raw });
		out.delta = await crcOf(imported.id);
		out.deltaOther = { spar: await errName(() => dm.importDelta(file, { baseId: spar })) };
		await dm.deleteDisk(imported.id);

		// Restore and revert.
		await dm.restoreCheckpoint(ov.id, cp.id);
		out.restored = await crcOf(ov.id);
		await dm.revertDisk(ov.id);
		out.reverted = await crcOf(ov.id);

		// Deleting the checkpoint: its layer merges into the one above.
		await dm.restoreCheckpoint(ov.id, cp.id);
		dev = await dm.openDisk(ov.id, { writable: true });
		const m2 = await dev.read(0, dev.sizeBytes);
		await modelRun(dev, m2, 9, 40);
		await dev.close();
		await dm.deleteCheckpoint(ov.id, cp.id, { onProgress: () => {} });
		out.afterDelete = (await crcOf(ov.id)) === H.crc32(m2) ? "same" : "changed";
		out.cpAfterDelete = (await dm.listCheckpoints(ov.id)).length;

		// Commit into the raw base: both read the overlay's disk.
		await dm.commitOverlay(ov.id);
		out.committed = await crcOf(ov.id);
		out.baseCommitted = await crcOf(raw);
		out.baseStale = !!(await dm.getDisk(raw)).checksum.stale;
		out.head = H.crc32(m2);

		// Flatten: a standalone copy.
		const flat = await dm.flattenDisk(ov.id, { name: "flat" });
		out.flat = await crcOf(flat.id);
		out.flatParent = flat.parentId || "";
		await dm.deleteDisk(ov.id);

		// Mode "overlay": the default overlay, made once, the base pristine.
		const before = await crcOf(raw);
		dev = await dm.openDisk(raw, { writable: true, mode: "overlay" });
		out.defaultId = dev.diskId;
		await dev.write(0, H.randomBytes(4096, 5));
		await dev.close();
		dev = await dm.openDisk(raw, { writable: true, mode: "overlay" });
		out.defaultAgain = dev.diskId;
		await dev.close();
		out.defaultParent = (await dm.getDisk(out.defaultId)).parentId;
		out.baseUntouched = (await crcOf(raw)) === before ? "yes" : "no";

		// A qcow2 disk is writable through an overlay.
		dev = await dm.openDisk(qcow, { writable: true, mode: "overlay" });
		const qm = await dev.read(0, dev.sizeBytes);
		await modelRun(dev, qm, 10, 30);
		const qid = dev.diskId;
		await dev.close();
		out.qcowOverlay = await crcOf(qid);
		out.qcowModel = H.crc32(qm);
		return out;`, &r, disks.Raw.ID, disks.Qcow.ID, disks.Spar.ID)

	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s: %q, want %q", what, got, want)
		}
	}
	check("a fresh overlay", r.OverlayFresh, rawCRC)
	check("the overlay after writes", r.OverlayWritten, r.ModelHead)
	check("the base after the overlay's writes", r.BaseAfter, rawCRC)
	check("the checkpoint taken while writing", r.AtCheckpoint, r.ModelAtCp)
	check("the imported delta", r.Delta, r.ModelAtCp)
	check("restored", r.Restored, r.ModelAtCp)
	check("reverted", r.Reverted, rawCRC)
	check("after deleting the checkpoint", r.AfterDelete, "same")
	check("the overlay after commit", r.Committed, r.Head)
	check("the base after commit", r.BaseCommitted, r.Head)
	check("the flat copy", r.Flat, r.Head)
	check("the flat copy's parent", r.FlatParent, "")
	check("the default overlay, opened twice", r.DefaultAgain, r.DefaultID)
	check("the default overlay's base", r.DefaultParent, disks.Raw.ID)
	check("the base under its default overlay", r.BaseUntouched, "yes")
	check("the qcow2 overlay", r.QcowOverlay, r.QcowModel)
	if r.DefaultID == disks.Raw.ID {
		t.Error("mode overlay wrote the base itself")
	}
	if r.CpAfterDelete != 0 {
		t.Errorf("%d checkpoints after deleting the only one", r.CpAfterDelete)
	}
	if !r.BaseStale {
		t.Error("the base's checksum is not stale after a commit")
	}
	if len(r.Checkpoints) != 1 || r.Checkpoints[0]["name"] != "first" {
		t.Errorf("checkpoints: %+v", r.Checkpoints)
	}
	for what, got := range map[string]string{"deleting a base": r.DeleteBase, "writing a base": r.WriteBase} {
		if !strings.HasPrefix(got, "InUseError: ") || !strings.Contains(got, "work") {
			t.Errorf("%s: %s", what, got)
		}
	}
	if got := r.DeltaOther["spar"]; !strings.HasPrefix(got, "InvalidArgumentError: ") || !strings.Contains(got, rawCRC) {
		t.Errorf("a delta onto another base: %s (want it to name the base's CRC32 %s)", got, rawCRC)
	}
}

// TestCompactDisk: dm.compactDisk gives back what discards left behind,
// on both backends: an overlay's layer (its file shrinks, the disk reads
// the same, progress in phase "compact"), and on OPFS an AEROSPAR disk
// whose device freed blocks (compacted in the background and before the
// close; a second compaction finds nothing).
func TestCompactDisk(t *testing.T) { eachBackend(t, testCompactDisk) }

func testCompactDisk(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	var r struct {
		Before, After string
		Res, Again    map[string]float64
		Phases        []string
		Spar          map[string]any
	}
	mustEval(t, p, `const base = await dm.createBlankDisk({ name: "base", sizeBytes: 8 << 20 });
		const ov = await dm.createOverlay(base.id, { name: "ov" });
		let dev = await dm.openDisk(ov.id, { writable: true });
		await dev.write(0, H.randomBytes(4 << 20, 1));
		await dev.discard(0, 3 << 20);
		await dev.close();
		const out = { before: await H.crc32Of(dm, ov.id), phases: [] };
		out.res = await dm.compactDisk(ov.id, { onProgress: (p) => out.phases.push(p.phase) });
		out.after = await H.crc32Of(dm, ov.id);
		out.again = await dm.compactDisk(ov.id);
		if (dm.backend === "opfs") {
			const s = await dm.createBlankDisk({ name: "spar", sizeBytes: 16 << 20 });
			dev = await dm.openDisk(s.id, { writable: true });
			const data = H.randomBytes(16 << 20, 2);
			await dev.write(0, data);
			await dev.discard(0, 8 << 20);
			data.fill(0, 0, 8 << 20);
			const during = await dm.compactDisk(s.id); // through the device
			await dev.close();
			const meta = await dm.getDisk(s.id);
			out.spar = { format: meta.format, crc: await H.crc32Of(dm, s.id), want: H.crc32(data), during,
				again: await dm.compactDisk(s.id), fileSizeBytes: meta.fileSizeBytes };
		}
		return out;`, &r)
	if r.Before != r.After {
		t.Errorf("the overlay reads %s after compaction, %s before", r.After, r.Before)
	}
	if r.Res["files"] != 1 || r.Res["reclaimedBytes"] < 1<<20 {
		t.Errorf("compacting the overlay: %v, want one file and at least the 3 MiB discarded less the tables", r.Res)
	}
	if len(r.Phases) == 0 || r.Phases[len(r.Phases)-1] != "compact" {
		t.Errorf("progress phases %v", r.Phases)
	}
	if r.Again["files"] != 0 {
		t.Errorf("a second compaction: %v", r.Again)
	}
	if be == "opfs" {
		s := r.Spar
		if s["format"] != "aerospar" || s["crc"] != s["want"] {
			t.Errorf("the AEROSPAR disk after compaction: %v", s)
		}
		if a, _ := s["again"].(map[string]any); a["files"] != float64(0) {
			t.Errorf("compacting the closed AEROSPAR disk again: %v", s["again"])
		}
		// Eight 1 MiB blocks moved down, the file cut: at most half of 16 MiB and the table.
		if n, _ := s["fileSizeBytes"].(float64); n == 0 || n > 9<<20 {
			t.Errorf("the AEROSPAR file is %v bytes after its compaction", s["fileSizeBytes"])
		}
	}
}
