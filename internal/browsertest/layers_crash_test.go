package browsertest

// Layered disks survive killed tabs (issue 13, section 4; docs/overlays.md,
// "Operations and their crash rules"): renderers crashed by CDP Page.crash
// at random moments of write storms through overlays, of storms of
// checkpoints, restores, checkpoint deletions and writes, of checkpoint
// deletions (merges) and of commits, on both backends; the next tab must
// find every disk whole.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"aerodisk/internal/layer"
	"aerodisk/internal/sparse"
)

// lcJS installs globalThis.LC in a page: the storm engine of
// TestLayerCrashes and the checks of what a crashed storm left.
//
// A storm writes whole slots of 48 KiB (not a multiple of the 64 KiB
// overlay block, so most writes fill part of a block from below) through a
// device. Op i of a storm — its kind and its slot — is fixed by the storm's
// seed (plan), and so is a write's data (H.randomBytes of a seed made of
// the storm's seed and i; a discard writes zeros): a tab that never saw
// the storm can list what each slot may hold. The engine keeps, for each
// slot, specs of the contents allowed there: {x, r}, x a list of ops (-1:
// the base's bytes) and r ranges [from, to) of ops (to null: no bound
// yet), of which only those that write the slot count:
//
//   - done[s]: what the head holds with every write acknowledged so far
//     in it (a write resolved: that op or a later one);
//   - flushed[s]: what the head holds after a crash (a flush resolved: the
//     last write issued before it or a later one; a restore resolved: the
//     checkpoint's contents or a later write; a restore in flight: either);
//   - a checkpoint's: done when it was called, plus every write not yet
//     acknowledged then and every write issued before the page saw it
//     resolve (one issued after cannot be in its frozen layer); a "quiet"
//     checkpoint (nothing in flight, nothing issued until it resolves) has
//     one allowed content per slot, so its CRC is known.
//
// After a crash every sector of every slot must hold one of the allowed
// contents. Sectors of random data cannot match a wrong op's by accident:
// a lost acknowledged write, a torn or stale block, a layer read from the
// wrong place all fail. A storm goes on in the next tab from where the
// crashed one's could have got to, its disks and checkpoints kept, so
// what one crash left is checked again after the next ones.
const lcJS = `globalThis.LC ??= (() => {
	const SLOT = 48 << 10, SIZE = (1 << 20) + 3 * 512, SLOTS = Math.floor(SIZE / SLOT), MARGIN = 1500;
	const xs = (seed) => { let x = (seed >>> 0) || 1; return () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; }; };
	const plans = new Map();
	const plan = (seed, mix) => {
		const key = seed + ":" + JSON.stringify(mix);
		if (plans.has(key)) return plans.get(key);
		const r = xs(seed), ops = [], total = mix.reduce((a, m) => a + m[1], 0);
		const at = (i) => {
			while (ops.length <= i) {
				let k = r() % total, kind = mix[0][0];
				for (const [name, w] of mix) { if (k < w) { kind = name; break; } k -= w; }
				ops.push({ kind, slot: r() % SLOTS, writes: kind === "write" || kind === "discard" });
			}
			return ops[i];
		};
		plans.set(key, at);
		return at;
	};
	const norm = (sp) => {
		const x = [...new Set(sp.x)].sort((a, b) => a - b);
		const r = sp.r.map(([f, t]) => [f, t]).filter(([f, t]) => t === null || f < t).sort((a, b) => a[0] - b[0]);
		const out = [];
		for (const [f, t] of r) {
			const last = out[out.length - 1];
			if (last && (last[1] === null || f <= last[1])) { if (last[1] !== null) last[1] = t === null ? null : Math.max(last[1], t); }
			else out.push([f, t]);
		}
		return { x, r: out };
	};
	const union = (a, b) => norm({ x: [...a.x, ...b.x], r: [...a.r, ...b.r] });
	const bound = (a, hi) => norm({ x: a.x, r: a.r.map(([f, t]) => [f, t === null ? hi : Math.min(t, hi)]) });
	const from = (i) => ({ x: [], r: [[i, null]] });
	const any = (lim) => new Array(SLOTS).fill({ x: [-1], r: [[0, lim]] });
	const bases = new Map();
	const baseOf = (seed) => { if (!bases.has(seed)) bases.set(seed, H.randomBytes(SIZE, seed)); return bases.get(seed); };
	const zeros = new Uint8Array(SLOT);
	const errText = (e) => (e && e.name || "Error") + ": " + (e && e.message || e);

	class Storm {
		// o: { seed, baseSeed, mix: [[kind, weight]], maxCps }; from: where
		// an earlier storm on the disk left it ({ next, head, cps }), or none.
		constructor(dm, diskId, o, prev) {
			Object.assign(this, { dm, diskId, o, at: plan(o.seed, o.mix), base: baseOf(o.baseSeed), next: 0, limit: Infinity,
				dev: null, pend: new Map(), out: new Set(), issued: new Array(SLOTS).fill(null), cps: [], deleted: [],
				cpInflight: 0, delInflight: 0, restoring: null, errors: [], notes: [], counts: {}, stopped: false, cache: new Map() });
			this.done = []; this.flushed = [];
			// What the last tab left, or any op of this storm's.
			for (let s = 0; s < SLOTS; s++) this.done[s] = this.flushed[s] = prev ? union(prev.head[s], from(prev.next)) : { x: [-1], r: [[0, null]] };
			if (prev) { this.next = prev.next; this.cps = prev.cps.map((c) => ({ ...c })); }
		}
		count(k) { this.counts[k] = (this.counts[k] || 0) + 1; }
		fail(what, e) { this.errors.push(what + ": " + errText(e)); this.stopped = true; }
		expect(what, e, names) {
			if (!names.includes(e && e.name)) return this.fail(what, e);
			this.count(what + " " + e.name);
			if (this.notes.length < 6) this.notes.push(what + ": " + errText(e));
		}
		track(p) { const q = p.then(() => this.out.delete(q), () => this.out.delete(q)); this.out.add(q); return p; }
		async settle() { while (this.out.size) await Promise.all([...this.out]); }
		content(i) {
			if (!this.at(i).writes) throw new Error("op " + i + " writes nothing");
			if (this.at(i).kind === "discard") return zeros;
			let b = this.cache.get(i);
			if (!b) { b = H.randomBytes(SLOT, (Math.imul(this.o.seed, 2654435761) + i + 1) >>> 0); this.cache.set(i, b); }
			return b;
		}
		async openDev() {
			for (let k = 0; ; k++) {
				try { this.dev = await this.dm.openDisk(this.diskId, { writable: true }); return; }
				catch (e) { if (e.name !== "InUseError" || k >= 300) throw e; await H.sleep(10); }
			}
		}
		flushedBy(snap) { snap.forEach((v, s) => { if (v !== null) this.flushed[s] = from(v); }); }
		write(i) {
			const op = this.at(i), off = op.slot * SLOT;
			const p = op.kind === "discard" ? this.dev.discard(off, SLOT) : this.dev.write(off, this.content(i));
			this.issued[op.slot] = i;
			const q = p.then(() => { this.pend.delete(i); this.done[op.slot] = from(i); this.count(op.kind); },
				(e) => { this.pend.delete(i); this.fail(op.kind + " " + i, e); });
			this.pend.set(i, q);
			this.track(q);
		}
		flush() {
			const snap = this.issued.slice();
			return this.track(this.dev.flush().then(() => { this.flushedBy(snap); this.count("flush"); }, (e) => this.fail("flush", e)));
		}
		async close() {
			await this.settle();
			const snap = this.issued.slice();
			await this.dev.close();
			this.dev = null;
			this.flushedBy(snap);
		}
		live() { return this.cps.filter((c) => !c.pre && !c.deleting); }
		checkpoint(name, pre) {
			const low = this.pend.size ? Math.min(...this.pend.keys()) : this.next;
			let spec = this.done.map((d) => union(d, from(low)));
			const X = this.restoring;
			if (X) spec = spec.map((d, s) => union(d, X.spec[s]));
			this.cpInflight++;
			return this.track(this.dm.checkpoint(this.diskId, { name }).then((cp) => {
				this.cpInflight--;
				const hi = this.next; // an op issued from now on cannot be in the frozen layer
				const rec = { id: cp.id, name, pre: !!pre, spec: spec.map((d) => bound(d, hi)) };
				this.cps.push(rec);
				this.count("checkpoint");
				return rec;
			}, (e) => { this.cpInflight--; this.expect("checkpoint", e, ["InUseError"]); return null; }));
		}
		async quiet(name, pre) { await this.settle(); return this.checkpoint(name, pre); }
		// deleteCp deletes one of the storm's own checkpoints (the ones the
		// last tab left unknown first): a merge when its layer has one child.
		deleteCp() {
			const live = this.live();
			if (this.delInflight || !live.length || (live.length < 3 && Math.random() < 0.5)) return;
			const X = live.find((c) => c.unknown) || live[Math.floor(Math.random() * live.length)];
			X.deleting = true;
			this.delInflight++;
			this.track(this.dm.deleteCheckpoint(this.diskId, X.id).then(() => {
				this.delInflight--;
				this.cps = this.cps.filter((c) => c !== X);
				this.deleted.push(X.id);
				this.count("deleteCheckpoint");
			}, (e) => { this.delInflight--; X.deleting = false; this.expect("deleteCheckpoint", e, ["InUseError"]); }));
		}
		async restore() {
			const targets = this.cps.filter((c) => !c.deleting);
			if (!targets.length) return;
			const X = targets[Math.floor(Math.random() * targets.length)];
			await this.close();
			this.restoring = X;
			// Sometimes a checkpoint races the restore.
			if (Math.random() < 0.5 && !this.cpInflight && this.live().length < this.o.maxCps) this.checkpoint("during a restore");
			try {
				await this.dm.restoreCheckpoint(this.diskId, X.id);
				const at = this.next;
				for (let s = 0; s < SLOTS; s++) { this.done[s] = this.flushed[s] = union(X.spec[s], from(at)); this.issued[s] = null; }
				this.count("restore");
			} catch (e) { this.expect("restore", e, ["InUseError"]); }
			this.restoring = null;
			await this.openDev();
		}
		// setup runs the next n ops' writes and discards (the other ops are
		// skipped), at most 4 in flight, and waits for them.
		async setup(n) {
			for (const end = this.next + n; this.next < end;) {
				const i = this.next++;
				if (!this.at(i).writes) continue;
				if (this.pend.size >= 4) await Promise.race(this.pend.values());
				this.write(i);
			}
			await this.settle();
			if (this.errors.length) throw new Error(this.errors.join("; "));
		}
		// exact is the one content each slot has now (nothing in flight).
		exact() { return this.done.map((d) => bound(d, this.next)); }
		async run() {
			let k = 0;
			while (!this.stopped) {
				if (this.next >= this.limit) { await H.sleep(5); continue; }
				const i = this.next++, op = this.at(i);
				try {
					switch (op.kind) {
					case "write": case "discard":
						if (this.pend.size >= 4) await Promise.race(this.pend.values());
						this.write(i);
						break;
					case "flush": this.flush(); break;
					case "checkpoint": if (!this.cpInflight && this.live().length < this.o.maxCps) this.checkpoint("storm " + i); break;
					case "quiet": if (!this.cpInflight && this.live().length < this.o.maxCps) await this.quiet("quiet " + i); break;
					case "delete": this.deleteCp(); break;
					case "restore": await this.restore(); break;
					}
				} catch (e) { this.fail(op.kind + " " + i, e); }
				if (++k % 16 === 0) await H.sleep(0);
			}
		}
		// poll is what the storm has had acknowledged so far; it issues at
		// most MARGIN more ops, so the tab after the crash can bound them.
		poll() {
			const lim = this.limit = this.next + MARGIN;
			let head = this.flushed;
			const X = this.restoring;
			if (X) head = head.map((d, s) => union(d, X.spec[s]));
			return { next: this.next, limit: lim, head: head.map((d) => bound(d, lim)),
				cps: this.cps.map(({ id, name, pre, spec, unknown, deleting }) => ({ id, name, pre, spec, unknown: !!unknown, deleting: !!deleting })),
				deleted: this.deleted, cpInflight: this.cpInflight, delInflight: this.delInflight, restoring: !!X,
				errors: this.errors, notes: this.notes, counts: this.counts };
		}
		cands(s, sp) {
			const out = new Set(sp.x);
			for (const [f, t] of sp.r) for (let i = f; i < t; i++) { const op = this.at(i); if (op.slot === s && op.writes) out.add(i); }
			return [...out].sort((a, b) => a - b);
		}
		// model is the disk as an exact spec says it reads.
		model(spec) {
			const m = this.base.slice();
			for (let s = 0; s < SLOTS; s++) {
				const c = this.cands(s, spec[s]);
				if (c.length !== 1) throw new Error("slot " + s + " has " + c.length + " allowed contents, not one");
				if (c[0] >= 0) m.set(this.content(c[0]), s * SLOT);
			}
			return m;
		}
		// check lists the sectors of bytes that hold none of spec's contents.
		check(bytes, spec, what) {
			if (bytes.length !== SIZE) return [what + ": " + bytes.length + " bytes, want " + SIZE];
			const bad = [];
			for (let s = 0; s < SLOTS && bad.length < 4; s++) {
				// Oldest first (the ops issued last are the likeliest never
				// to have been), the one the last sector held before.
				const c = this.cands(s, spec[s]), off = s * SLOT;
				for (let sec = 0; sec < SLOT; sec += 512) {
					const holds = (i) => {
						const b = i < 0 ? this.base.subarray(off, off + SLOT) : this.content(i);
						for (let j = sec; j < sec + 512; j++) if (b[j] !== bytes[off + j]) return false;
						return true;
					};
					const k = c.findIndex(holds), ok = k >= 0;
					if (k > 0) c.unshift(...c.splice(k, 1));
					if (!ok) { bad.push(what + ": slot " + s + " sector " + (sec / 512) + " holds none of its " + c.length + " allowed contents " + JSON.stringify(spec[s])); break; }
				}
			}
			for (let j = SLOTS * SLOT; j < SIZE; j++) if (bytes[j] !== this.base[j]) { bad.push(what + ": the tail no op writes differs from the base at " + j); break; }
			return bad;
		}
		excludesBase(spec) { return spec.some((sp, s) => !this.cands(s, sp).includes(-1)); }
	}
	// fileBytes reads a stored file as it is: an OPFS file, or the chunks
	// of an IndexedDB file (its stem) put together; kept until forget().
	const files = new Map();
	const fileBytes = async (name) => {
		if (files.has(name)) return files.get(name);
		let out;
		if (H.backend !== "idb") out = await H.opfsReadBytes("aero/disks", name);
		else {
			const stem = name.indexOf(".") > 0 ? name.slice(0, name.indexOf(".")) : name;
			const db = await H.idbOpen();
			try {
				const recs = await new Promise((ok, no) => {
					const req = db.transaction("chunks").objectStore("chunks").getAll(IDBKeyRange.bound([stem, 0], [stem, Infinity]));
					req.onsuccess = () => ok(req.result); req.onerror = () => no(req.error);
				});
				const view = (d) => new Uint8Array(d.buffer || d, d.byteOffset || 0, d.byteLength);
				let size = 0;
				for (const c of recs) size = Math.max(size, c.index * (4 << 20) + c.data.byteLength);
				out = new Uint8Array(size);
				for (const c of recs) out.set(view(c.data), c.index * (4 << 20));
			} finally { db.close(); }
		}
		files.set(name, out);
		return out;
	};
	return { SLOT, SIZE, SLOTS, Storm, any, fileBytes, forget: () => files.clear(), errText };
})();`

// The op mixes: the write storm (kind 1), the checkpoint storm (kind 2),
// and the writes that fill layers before a merge or a commit (kind 3).
var lcMixes = map[string][][]any{
	"w":    {{"write", 12}, {"discard", 2}, {"flush", 3}},
	"c":    {{"write", 12}, {"discard", 1}, {"flush", 2}, {"checkpoint", 2}, {"quiet", 1}, {"restore", 2}, {"delete", 2}},
	"fill": {{"write", 9}, {"discard", 1}},
}

// lcSetupJS starts one trial of each kind, on the disks the last one left
// (args[1], the carry; made when there is none): a base S under three
// overlays — W (the write storm), C (the checkpoint storm, with two
// acknowledged checkpoints A and B made once) and M (layers with data
// under checkpoints, one of which is deleted: a merge up, into a frozen
// layer or into the head, by turns) — and a base K (imported converted:
// AEROSPAR on OPFS) under an overlay whose writes are committed into it.
// Nothing of the trial is awaited. args: [seed, carry, round, mixes].
const lcSetupJS = `const [seed, carry0, round, mix] = args;
	let carry = carry0;
	if (!carry) {
		const file = (bytes, name) => new File([bytes], name);
		const sb = await dm.importDisk(file(H.randomBytes(LC.SIZE, seed), "shared.img"), { name: "shared" });
		const kb = await dm.importDiskConverted(file(H.randomBytes(LC.SIZE, seed + 1), "commit.img"), { name: "commit base" });
		const disks = { sb, kb };
		for (const [role, base, name] of [["wo", sb, "writes"], ["co", sb, "checkpoints"], ["mo", sb, "merges"], ["ko", kb, "commit"]])
			disks[role] = await dm.createOverlay(base.id, { name });
		carry = { disks: {}, crc: { sb: H.crc32(H.randomBytes(LC.SIZE, seed)) } };
		for (const [role, d] of Object.entries(disks)) carry.disks[role] = { id: d.id, name: d.name, format: d.format };
		const o = (k, s, b) => ({ seed: seed + s, baseSeed: seed + b, mix: mix[k], maxCps: 3 });
		carry.w = { o: o("w", 11, 0) };
		carry.c = { o: o("c", 12, 0) };
		carry.m = { o: o("fill", 13, 0), cps: [] };
		carry.k = { o: o("fill", 14, 1), kbCrc: H.crc32(H.randomBytes(LC.SIZE, seed + 1)) };
		// C's acknowledged checkpoints A and B, with known contents.
		const C = new LC.Storm(dm, carry.disks.co.id, carry.c.o);
		await C.openDev();
		await C.setup(30);
		const A = await C.quiet("A", true);
		await C.setup(30);
		const B = await C.quiet("B", true);
		await C.close();
		if (!A || !B) throw new Error("checkpoint A or B refused: " + C.errors.join("; "));
		carry.c.prev = { next: C.next, head: C.exact(), cps: C.cps };
		carry.c.pre = [A, B].map((x) => ({ id: x.id, name: x.name, crc: H.crc32(C.model(x.spec)) }));
	}
	const { disks } = carry;
	const st = { carry };
	const t0 = performance.now();

	// The storms start first and go on while the merges are made ready.
	const C = new LC.Storm(dm, disks.co.id, carry.c.o, carry.c.prev);
	const W = new LC.Storm(dm, disks.wo.id, carry.w.o, carry.w.prev);
	await C.openDev();
	await W.openDev();
	W.run(); C.run();

	// M: a new checkpoint over a layer with data (two the first time), a
	// head with more; the checkpoint to delete merges into the layer above
	// it: a frozen one or the head. K: more writes to commit. Both made
	// ready at once.
	const M = new LC.Storm(dm, disks.mo.id, carry.m.o, carry.m.prev);
	const K = new LC.Storm(dm, disks.ko.id, carry.k.o, carry.k.prev);
	const mcps = [...carry.m.cps];
	// A crash before a trial's deletion began leaves its checkpoint: the
	// oldest ones go first (awaited, before the trial), so the chain stays
	// short however many deletions crashes prevented.
	while (mcps.length > 3) await dm.deleteCheckpoint(disks.mo.id, mcps.shift().id);
	await Promise.all([(async () => {
		await M.openDev();
		for (const name of mcps.length ? ["P" + round] : ["Q", "P" + round]) {
			await M.setup(24);
			const P = await M.quiet(name);
			if (!P) throw new Error("checkpoint " + name + " refused: " + M.errors.join("; "));
			mcps.push({ id: P.id, name: P.name, spec: P.spec });
		}
		await M.setup(16);
		await M.close();
	})(), (async () => {
		await K.openDev();
		await K.setup(32);
		await K.close();
	})()]);
	// Odd rounds merge the oldest checkpoint's layer into the frozen one
	// above it, even ones the new checkpoint's into the head.
	const del = round % 2 === 1 || mcps.length > 3 ? mcps[0] : mcps[mcps.length - 1];
	st.m = { next: M.next, head: M.exact(), cps: mcps.map((c) => ({ ...c, crc: H.crc32(M.model(c.spec)) })), del: del.id,
		into: del === mcps[mcps.length - 1] ? "head" : "frozen" };
	st.m.headCrc = H.crc32(M.model(st.m.head));
	st.k = { next: K.next, head: K.exact() };
	st.k.headCrc = H.crc32(K.model(st.k.head));

	// The merges too, none of it awaited.
	const started = performance.now();
	M.res = {}; K.res = {};
	dm.deleteCheckpoint(disks.mo.id, del.id).then(() => { M.res.doneMs = performance.now() - started; }, (e) => { M.res.err = LC.errText(e); });
	dm.commitOverlay(disks.ko.id).then(() => { K.res.doneMs = performance.now() - started; }, (e) => { K.res.err = LC.errText(e); });
	globalThis.trial = { W, C, M, K, started, t0 };
	return st;`

// lcPollJS is what the crashing tab has had acknowledged, read just before
// the crash.
const lcPollJS = `const { W, C, M, K, started, t0 } = trial;
	return { w: W.poll(), c: C.poll(), merge: M.res, commit: K.res, ms: performance.now() - started, stormMs: performance.now() - t0 };`

// lcCheckJS checks, in the tab after the crash, what the crashed trial
// left. args: [setup, poll]. It returns the problems found, the stored
// files to check structurally ({name, kind}), what it saw, and the carry
// for the next trial.
const lcCheckJS = `const [st, po] = args;
	const { carry } = st, { disks } = carry;
	const problems = [], seen = {};
	// The merges a killed tab left resume in the background.
	const first = await dm.listDisks();
	seen.pending = first.filter((d) => d.pending).map((d) => d.name + ": " + d.pending.op);
	const deadline = Date.now() + 60000;
	let listed = first;
	while (listed.some((d) => d.pending)) {
		if (Date.now() > deadline) { problems.push("still pending after 60 s: " + JSON.stringify(listed.filter((d) => d.pending).map((d) => [d.name, d.pending]))); break; }
		await H.sleep(50);
		listed = await dm.listDisks();
	}
	const byId = new Map(listed.map((d) => [d.id, d]));
	const roles = Object.fromEntries(Object.entries(disks).map(([r, d]) => [d.id, r]));
	for (const d of listed) if (!roles[d.id]) problems.push("a disk the test never made is listed: " + JSON.stringify(d));
	for (const [role, d] of Object.entries(disks)) if (!byId.has(d.id)) problems.push(role + " (" + d.name + ", acknowledged) is not listed");

	// Every listed disk and checkpoint exports.
	const got = new Map();
	const read = async (id, cpId) => {
		const key = id + "/" + (cpId || "");
		if (!got.has(key)) {
			try { got.set(key, await H.streamBytes(await dm.exportDisk(id, cpId ? { checkpointId: cpId } : {}))); }
			catch (e) { got.set(key, LC.errText(e)); }
		}
		return got.get(key);
	};
	const crc = async (id, cpId) => { const b = await read(id, cpId); return typeof b === "string" ? b : H.crc32(b); };
	const jobs = listed.flatMap((d) => [[d, null], ...(d.checkpoints || []).map((cp) => [d, cp])]);
	await Promise.all([0, 1, 2, 3].map(async () => { // four at a time
		for (let j; (j = jobs.shift());) {
			const [d, cp] = j, b = await read(d.id, cp && cp.id);
			if (typeof b === "string") problems.push("listed " + (cp ? "checkpoint " + cp.name + " of " : "disk ") + d.name + " does not export: " + b);
		}
	}));
	const want = (what, got, wanted) => { if (got !== wanted) problems.push(what + ": " + got + ", want " + wanted); };
	const cpsOf = (id) => (byId.get(id) || {}).checkpoints || [];
	const next = { disks, crc: carry.crc };
	want("the shared base", await crc(disks.sb.id), carry.crc.sb);

	// Kind 1: the write storm.
	const w = new LC.Storm(null, null, carry.w.o, { next: 0, head: po.w.head, cps: [] });
	const wb = await read(disks.wo.id);
	if (typeof wb !== "string") problems.push(...w.check(wb, po.w.head, "the write storm's overlay"));
	// The check is not vacuous: where a flush was acknowledged the base's bytes fail it.
	seen.wExcludesBase = w.excludesBase(po.w.head);
	if (seen.wExcludesBase && w.check(w.base, po.w.head, "x").length === 0) problems.push("the write storm's check passes the untouched base");
	next.w = { o: carry.w.o, prev: { next: po.w.limit, head: po.w.head, cps: [] } };

	// Kind 2: the checkpoint storm.
	const c = new LC.Storm(null, null, carry.c.o, { next: 0, head: po.c.head, cps: [] });
	const clisted = cpsOf(disks.co.id);
	const isListed = (id) => clisted.some((l) => l.id === id);
	for (const x of carry.c.pre) {
		if (!isListed(x.id)) problems.push("acknowledged checkpoint " + x.name + " is not listed");
		want("acknowledged checkpoint " + x.name, await crc(disks.co.id, x.id), x.crc);
	}
	const keep = [];
	for (const cp of po.c.cps) {
		if (!isListed(cp.id)) {
			if (!cp.deleting) problems.push("acknowledged checkpoint " + cp.name + " is not listed");
			continue;
		}
		const b = await read(disks.co.id, cp.id);
		if (typeof b !== "string") problems.push(...c.check(b, cp.spec, "checkpoint " + cp.name));
		keep.push({ id: cp.id, name: cp.name, pre: cp.pre, spec: cp.spec, unknown: cp.unknown });
	}
	for (const id of po.c.deleted) if (isListed(id)) problems.push("checkpoint " + id + ", whose deletion was acknowledged, is listed");
	seen.cUnknown = 0;
	for (const cp of clisted) {
		if (po.c.cps.some((x) => x.id === cp.id) || po.c.deleted.includes(cp.id)) continue;
		seen.cUnknown++; // taken by the crashed tab, not acknowledged before the poll
		const spec = LC.any(po.c.limit);
		const b = await read(disks.co.id, cp.id);
		if (typeof b !== "string") problems.push(...c.check(b, spec, "unacknowledged checkpoint " + cp.name));
		keep.push({ id: cp.id, name: cp.name, pre: false, spec, unknown: true });
	}
	const cb = await read(disks.co.id);
	if (typeof cb !== "string") problems.push(...c.check(cb, po.c.head, "the checkpoint storm's overlay"));
	next.c = { o: carry.c.o, pre: carry.c.pre, prev: { next: po.c.limit, head: po.c.head, cps: keep } };

	// Kind 3: the merge up (deleteCheckpoint).
	const mlisted = cpsOf(disks.mo.id);
	const mkeep = [];
	for (const x of st.m.cps) {
		const l = mlisted.some((cp) => cp.id === x.id);
		if (x.id === st.m.del) {
			seen.deletedListed = l;
			if (l && po.merge.doneMs !== undefined) problems.push("checkpoint " + x.name + ", whose deletion was acknowledged, is listed");
		} else if (!l) problems.push("checkpoint " + x.name + " of the merged disk is not listed");
		if (l) { want("checkpoint " + x.name + " of the merged disk", await crc(disks.mo.id, x.id), x.crc); mkeep.push({ id: x.id, name: x.name, spec: x.spec }); }
	}
	want("the merged disk's head", await crc(disks.mo.id), st.m.headCrc);
	if (po.merge.err) problems.push("deleteCheckpoint failed: " + po.merge.err);
	next.m = { o: carry.m.o, cps: mkeep, prev: { next: st.m.next, head: st.m.head, cps: [] } };

	// Kind 3: the commit.
	want("the committed overlay", await crc(disks.ko.id), st.k.headCrc);
	const kcrc = await crc(disks.kb.id);
	seen.committed = kcrc === st.k.headCrc;
	const began = seen.pending.includes(disks.ko.name + ": commit") || po.commit.doneMs !== undefined;
	if (kcrc !== st.k.headCrc && (kcrc !== carry.k.kbCrc || began))
		problems.push("the commit base reads " + kcrc + ": want the overlay's " + st.k.headCrc + (kcrc === carry.k.kbCrc ? " (the commit had begun)" : " (or its own " + carry.k.kbCrc + " if the commit never began)"));
	if (po.commit.err) problems.push("commitOverlay failed: " + po.commit.err);
	next.k = { o: carry.k.o, kbCrc: kcrc, prev: { next: st.k.next, head: st.k.head, cps: [] } };

	const pending = await H.pendingLeft();
	if (pending.length) problems.push("pending files left: " + pending.join(", "));

	const files = [];
	for (const d of listed) {
		for (const n of (d.layers || { nodes: [] }).nodes) files.push({ name: n.fileName, kind: "layer", disk: d.name });
		if (d.format === "aerospar") files.push({ name: d.fileName, kind: "aerospar", disk: d.name });
	}
	const named = new Set(listed.flatMap((d) => [d.fileName, ...(d.layers || { nodes: [] }).nodes.map((n) => n.fileName), ...(d.garbage || [])]));
	const stray = (await H.storedFiles()).map((f) => f.name).filter((n) => H.backend === "idb" ? ![...named].some((m) => m.split(".")[0] === n) : !named.has(n));
	return { problems, files, seen, stray, carry: next };`

type lcPoll struct {
	W      lcStormPoll `json:"w"`
	C      lcStormPoll `json:"c"`
	Merge  lcRes       `json:"merge"`
	Commit lcRes       `json:"commit"`
	Ms     float64     `json:"ms"`
	Storm  float64     `json:"stormMs"`
}

type lcStormPoll struct {
	Next       int            `json:"next"`
	Errors     []string       `json:"errors"`
	Notes      []string       `json:"notes"`
	Counts     map[string]int `json:"counts"`
	CPInflight int            `json:"cpInflight"`
	DelInfl    int            `json:"delInflight"`
	Restoring  bool           `json:"restoring"`
}

type lcRes struct {
	DoneMs *float64 `json:"doneMs"`
	Err    string   `json:"err"`
}

// TestLayerCrashes crashes the tab (CDP Page.crash: its renderer and
// workers die without cleanup) 20 times per backend, each time in the
// middle of one trial of every kind, all running at once on disks of
// their own: a write storm with flushes through an overlay; a storm of
// checkpoints, restores, checkpoint deletions and writes on an overlay
// with two acknowledged checkpoints; a checkpoint deletion (a merge up,
// into a frozen layer or into the head, by turns) and a commit of an
// overlay into its base, both started without waiting. The crash comes at
// a random moment, within a range that follows how long the merges take
// on this machine, so that most crashes cut them short. The next tab,
// once the merges it resumes have finished, finds: every listed disk and
// checkpoint exporting and each layer file (and AEROSPAR base) passing
// the format's checks; the catalog listing exactly the test's disks, and
// no stored file that no record names; every write a flush acknowledged
// there, sector by sector, and nothing but writes the storms made (see
// lcJS); the acknowledged checkpoints with their exact contents, those
// whose deletion was acknowledged gone; the other checkpoints and the head
// of the merged disk exactly as before, the deleted checkpoint gone or
// exact; the commit done (base and overlay reading the overlay's content)
// or, if it never began, not begun. That tab then runs the next trials on
// the same disks. Its tabs crash in a browser of its own (TestTabCrashes
// says why).
func TestLayerCrashes(t *testing.T) { eachBackend(t, testLayerCrashes) }

// lcRounds is how many crashes TestLayerCrashes makes per backend: each
// cuts one trial of every kind short.
const lcRounds = 20

func testLayerCrashes(t *testing.T, be string) {
	requireWasm(t)
	s := ownSession(t)
	s.Backend = be
	rng := rand.New(rand.NewPCG(uint64(len(be)), 29))
	// The crash comes up to window ms after the trial starts: shorter when
	// the merges finished before it, longer when both were cut short, so
	// that both outcomes keep occurring.
	window := 300.0
	var carry, setup, poll json.RawMessage
	var last lcPoll
	reported, checked := map[string]bool{}, map[string]bool{}
	var cutMerges, cutCommits, intoHead, intoFrozen, flushes, checkpoints, restores, deletes, writes, resumed, committed, gone int
	for round := 0; round <= lcRounds; round++ {
		p := newPage(t, s, fmt.Sprint("tab-", round))
		var rep openReport
		mustEval(t, p, `const r = (await H.open()).openReport;`+"\n"+lcJS+"\nreturn r;", &rep)
		if rep.Recovery != nil {
			t.Errorf("round %d: the catalog was recovered after a crash: %+v", round, rep.Recovery)
		}
		if setup != nil {
			var res struct {
				Problems []string `json:"problems"`
				Files    []struct {
					Name string `json:"name"`
					Kind string `json:"kind"`
					Disk string `json:"disk"`
				} `json:"files"`
				Seen struct {
					Pending       []string `json:"pending"`
					DeletedListed bool     `json:"deletedListed"`
					Committed     bool     `json:"committed"`
				} `json:"seen"`
				Stray []string        `json:"stray"`
				Carry json.RawMessage `json:"carry"`
			}
			mustEval(t, p, lcCheckJS, &res, setup, poll)
			for _, pr := range res.Problems {
				t.Errorf("round %d (crashed at %.0f ms): %s", round-1, last.Ms, pr)
			}
			resumed += len(res.Seen.Pending)
			if !res.Seen.DeletedListed {
				gone++
			}
			if res.Seen.Committed {
				committed++
			}
			for _, f := range res.Files {
				var sum string
				mustEval(t, p, `return H.crc32(await LC.fileBytes(args[0]));`, &sum, f.Name)
				if checked[f.Name+" "+sum] {
					continue // checked after an earlier crash, unchanged since
				}
				checked[f.Name+" "+sum] = true
				if err := lcCheckFile(p, f.Name, f.Kind); err != nil {
					t.Errorf("round %d: %s (a %s file of %s) fails its check: %v", round-1, f.Name, f.Kind, f.Disk, err)
				}
			}
			mustEval(t, p, `LC.forget();`, nil)
			for _, n := range res.Stray {
				if !reported[n] {
					reported[n] = true
					t.Errorf("round %d: %s is stored but no record names it", round-1, n)
				}
			}
			carry = res.Carry
		}
		if round == lcRounds {
			break
		}
		seed := 1000 + 100*len(be)
		mustEval(t, p, lcSetupJS, &setup, seed, carry, round, lcMixes)
		var into struct {
			M struct {
				Into string `json:"into"`
			} `json:"m"`
		}
		json.Unmarshal(setup, &into)
		time.Sleep(time.Duration(rng.Float64()*window) * time.Millisecond)
		mustEval(t, p, lcPollJS, &poll)
		p.Crash()
		last = lcPoll{}
		if err := json.Unmarshal(poll, &last); err != nil {
			t.Fatal(err)
		}
		for _, e := range append(last.W.Errors, last.C.Errors...) {
			t.Errorf("round %d: the storm failed: %s", round, e)
		}
		mergeCut, commitCut := last.Merge.DoneMs == nil && last.Merge.Err == "", last.Commit.DoneMs == nil && last.Commit.Err == ""
		if mergeCut {
			cutMerges++
			if into.M.Into == "head" {
				intoHead++
			} else {
				intoFrozen++
			}
		}
		if commitCut {
			cutCommits++
		}
		switch {
		case !mergeCut && !commitCut:
			window = max(window*0.7, 20)
		case mergeCut && commitCut:
			window = min(window*1.2, 3000)
		}
		flushes += last.W.Counts["flush"] + last.C.Counts["flush"]
		writes += last.W.Counts["write"] + last.C.Counts["write"]
		checkpoints += last.C.Counts["checkpoint"]
		restores += last.C.Counts["restore"]
		deletes += last.C.Counts["deleteCheckpoint"]
		t.Logf("round %d: crash at %.0f ms (the storms' %.0f ms): write storm at op %d %v; checkpoint storm at op %d %v (in flight: %d checkpoints, %d deletions, a restore %v; refusals %q); merge into the %s %s, commit %s",
			round, last.Ms, last.Storm, last.W.Next, last.W.Counts, last.C.Next, last.C.Counts, last.C.CPInflight, last.C.DelInfl, last.C.Restoring, last.C.Notes,
			into.M.Into, doneText(last.Merge), doneText(last.Commit))
	}
	t.Logf("%d crashes: %d merges (%d into the head, %d into a frozen layer) and %d commits cut short; %d pending merges resumed at the next open; the deleted checkpoint gone %d times, the commit base committed %d times; the storms had %d writes, %d flushes, %d checkpoints, %d restores, %d checkpoint deletions acknowledged",
		lcRounds, cutMerges, intoHead, intoFrozen, cutCommits, resumed, gone, committed, writes, flushes, checkpoints, restores, deletes)
	if cutMerges == 0 || cutCommits == 0 {
		t.Errorf("no crash cut a merge (%d) or a commit (%d) short", cutMerges, cutCommits)
	}
	if flushes == 0 || restores == 0 || checkpoints == 0 || deletes == 0 {
		t.Errorf("the storms had %d flushes, %d checkpoints, %d restores, %d deletions acknowledged: want some of each", flushes, checkpoints, restores, deletes)
	}
}

func doneText(r lcRes) string {
	switch {
	case r.Err != "":
		return "failed"
	case r.DoneMs != nil:
		return fmt.Sprintf("done at %.0f ms", *r.DoneMs)
	}
	return "cut short"
}

// pageFile reads a stored file through the page (LC.fileBytes), 256 KiB
// pieces as they are needed: the checks read the tables, not every byte.
type pageFile struct {
	p      *Page
	name   string
	size   int64
	pieces map[int64][]byte
}

const pagePiece = 256 << 10

func (f *pageFile) ReadAt(b []byte, off int64) (int, error) {
	done := 0
	for done < len(b) {
		pos := off + int64(done)
		if pos >= f.size {
			return done, io.EOF
		}
		i := pos / pagePiece
		piece, ok := f.pieces[i]
		if !ok {
			var s string
			if err := f.p.Eval(`return H.base64((await LC.fileBytes(args[0])).subarray(args[1], args[1] + args[2]));`, &s, f.name, i*pagePiece, pagePiece); err != nil {
				return done, err
			}
			var err error
			if piece, err = base64.StdEncoding.DecodeString(s); err != nil {
				return done, err
			}
			if f.pieces == nil {
				f.pieces = map[int64][]byte{}
			}
			f.pieces[i] = piece
		}
		at := pos - i*pagePiece
		if at >= int64(len(piece)) {
			return done, io.EOF
		}
		done += copy(b[done:], piece[at:])
	}
	return done, nil
}

// lcCheckFile is aerodisk check of a stored file: a layer file's header,
// L1 and every L2 table (no cluster named twice or outside the file), and
// every data cluster whole in the file; an AEROSPAR file opened (fully
// validated) and read.
func lcCheckFile(p *Page, name, kind string) error {
	var size int64
	if err := p.Eval(`return (await LC.fileBytes(args[0])).length;`, &size, name); err != nil {
		return err
	}
	f := &pageFile{p: p, name: name, size: size}
	switch kind {
	case "layer":
		l, err := layer.OpenReader(f, size)
		if err != nil {
			return err
		}
		if _, err := l.Check(); err != nil {
			return err
		}
		for b := range l.Blocks() {
			st, off, err := l.Lookup(b)
			if err != nil {
				return err
			}
			if st == layer.Data && off+l.BlockSize() > size {
				return fmt.Errorf("the data cluster of block %d at %d ends past the file's %d bytes", b, off, size)
			}
		}
		return nil
	case "aerospar":
		d, err := sparse.OpenReader(f, size)
		if err != nil {
			return err
		}
		buf := make([]byte, 1<<20)
		for off := int64(0); off < d.Size(); off += int64(len(buf)) {
			n := min(int64(len(buf)), d.Size()-off)
			if _, err := d.ReadAt(buf[:n], off); err != nil && err != io.EOF {
				return fmt.Errorf("reading at %d: %w", off, err)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown kind %q", kind)
}
