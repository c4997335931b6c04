package main

import (
	"fmt"
	"slices"

	"aerodisk/internal/browsertest"
)

// Line 9: block devices, overlays and checkpoints (issue 13 §6). The
// baseline is web/bench/device_worker.js: a plain-JS worker holding its own
// sync access handle on a file of the same size, answering the page's
// requests over postMessage; its bare loop inside the worker is the
// ceiling. Each figure is the best of -runs.

// devJS defines, in the page: dw (the baseline worker's request function),
// seq(fn, total, chunk) timing sequential requests, and the disks.
const devJS = `
	if (!globalThis.dw) {
		const w = new Worker("/web/bench/device_worker.js");
		const pending = new Map();
		let next = 1;
		w.onmessage = (e) => { const p = pending.get(e.data.id); pending.delete(e.data.id);
			if (e.data.error) p.reject(Object.assign(new Error(e.data.error.message), { name: e.data.error.name })); else p.resolve(e.data); };
		globalThis.dw = (msg, transfer = []) => new Promise((resolve, reject) => { const id = next++; pending.set(id, { resolve, reject }); w.postMessage({ ...msg, id }, transfer); });
	}
	const seq = async (fn, total, chunk) => { const t0 = performance.now(); for (let at = 0; at < total; at += chunk) await fn(at); return performance.now() - t0; };
	const rnd = (n) => Math.floor(Math.random() * n);
	const pct = (v, p) => { const s = v.slice().sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
`

func benchDevices(p *browsertest.Page, dmVar, label string) ([]row, error) {
	const total = 256 << 20
	const chunk = 1 << 20
	type result struct {
		OursRead, OursWrite, BaseRead, BaseWrite, BareRead, BareWrite []float64
		DirectRead, OverlayRead                                       []float64
		CpMs, RestoreMs, RevertMs                                     []float64
		P50, P99, Reads                                               []float64
	}
	var all result
	for i := 0; i < *runs; i++ {
		step("%s devices run %d/%d", label, i+1, *runs)
		var r struct {
			OursRead, OursWrite, BaseRead, BaseWrite, BareRead, BareWrite float64
			DirectRead, OverlayRead                                       float64
			CpMs, RestoreMs, RevertMs                                     float64
			P50, P99, Reads                                               float64
		}
		settle()
		err := p.Eval(devJS+`const dm = globalThis[args[0]]; const total = args[1], chunk = args[2], opfs = args[3];
			const out = {};
			// 1 MiB sequential writes, then reads, through openDisk.
			const d = await dm.createBlankDisk({ name: "bench dev", sizeBytes: total });
			let dev = await dm.openDisk(d.id, { writable: true });
			const data = H.randomBytes(chunk, 3);
			out.oursWrite = await seq((at) => dev.write(at, data), total, chunk);
			await dev.flush();
			out.oursRead = await seq((at) => dev.read(at, chunk), total, chunk);
			await dev.close();
			if (opfs) {
				await dw({ op: "open", name: "dev.img", size: total });
				out.baseWrite = await seq((at) => { const b = data.slice().buffer; return dw({ op: "write", offset: at, buf: b }, [b]); }, total, chunk);
				await dw({ op: "flush" });
				out.baseRead = await seq((at) => dw({ op: "read", offset: at, length: chunk }), total, chunk);
				out.bareWrite = (await dw({ op: "bare", total, chunk, write: true })).ms;
				out.bareRead = (await dw({ op: "bare", total, chunk, write: false })).ms;
				await dw({ op: "close" });
			}
			// Reads through one overlay layer holding half the blocks.
			out.directRead = out.oursRead;
			const ov = await dm.createOverlay(d.id, { name: "bench overlay" });
			dev = await dm.openDisk(ov.id, { writable: true });
			const other = H.randomBytes(chunk, 4);
			for (let at = 0; at < total; at += 2 * chunk) await dev.write(at, other);
			await dev.flush();
			out.overlayRead = await seq((at) => dev.read(at, chunk), total, chunk);
			await dev.close();
			await dm.deleteDisk(ov.id);
			await dm.deleteDisk(d.id);

			// Checkpoint, restore, revert on a 60 GB disk with 1 GiB written.
			const big = await dm.createBlankDisk({ name: "bench 60", sizeBytes: 60e9 });
			const bo = await dm.createOverlay(big.id, { name: "bench 60 overlay" });
			dev = await dm.openDisk(bo.id, { writable: true });
			for (let at = 0; at < (1 << 30); at += chunk) await dev.write(at, data);
			await dev.close();
			let t0 = performance.now();
			const cp = await dm.checkpoint(bo.id, { name: "bench" });
			out.cpMs = performance.now() - t0;
			t0 = performance.now();
			await dm.restoreCheckpoint(bo.id, cp.id);
			out.restoreMs = performance.now() - t0;
			t0 = performance.now();
			await dm.revertDisk(bo.id);
			out.revertMs = performance.now() - t0;

			// 4 KiB reads of another disk while a 1 GiB commit runs.
			await dm.restoreCheckpoint(bo.id, cp.id);
			await dm.deleteCheckpoint(bo.id, cp.id);
			const probe = await dm.createBlankDisk({ name: "bench probe", sizeBytes: 64 << 20 });
			const pd = await dm.openDisk(probe.id);
			const lat = [];
			let running = true;
			const commit = dm.commitOverlay(bo.id).finally(() => { running = false; });
			while (running) { const t = performance.now(); await pd.read(rnd(16383) * 4096, 4096); lat.push(performance.now() - t); }
			await commit;
			await pd.close();
			out.p50 = pct(lat, 0.5); out.p99 = pct(lat, 0.99); out.reads = lat.length;
			await dm.deleteDisk(probe.id);
			await dm.deleteDisk(bo.id);
			await dm.deleteDisk(big.id);
			return out;`, &r, dmVar, total, chunk, label == "OPFS")
		if err != nil {
			return nil, fmt.Errorf("%s devices: %w", label, err)
		}
		all.OursRead = append(all.OursRead, mbps(total, r.OursRead))
		all.OursWrite = append(all.OursWrite, mbps(total, r.OursWrite))
		if r.BaseRead > 0 {
			all.BaseRead = append(all.BaseRead, mbps(total, r.BaseRead))
			all.BaseWrite = append(all.BaseWrite, mbps(total, r.BaseWrite))
			all.BareRead = append(all.BareRead, mbps(total, r.BareRead))
			all.BareWrite = append(all.BareWrite, mbps(total, r.BareWrite))
		}
		all.DirectRead = append(all.DirectRead, mbps(total, r.DirectRead))
		all.OverlayRead = append(all.OverlayRead, mbps(total, r.OverlayRead))
		all.CpMs = append(all.CpMs, r.CpMs)
		all.RestoreMs = append(all.RestoreMs, r.RestoreMs)
		all.RevertMs = append(all.RevertMs, r.RevertMs)
		all.P50 = append(all.P50, r.P50)
		all.P99 = append(all.P99, r.P99)
		all.Reads = append(all.Reads, r.Reads)
	}
	best, least := slices.Max[[]float64], slices.Min[[]float64]
	var rows []row
	if len(all.BaseRead) > 0 {
		rows = append(rows,
			row{"(9) " + label + ": 1 MiB sequential reads through openDisk, MB/s (vs a plain-JS worker over postMessage)", f0(best(all.OursRead)), f0(best(all.BaseRead)), f2(best(all.OursRead) / best(all.BaseRead)), "≥ 0.8"},
			row{"    the same worker's bare sync-access-handle reads (ceiling), MB/s", "", f0(best(all.BareRead)), f2(best(all.OursRead) / best(all.BareRead)), "(report)"},
			row{"(9) " + label + ": 1 MiB sequential writes through openDisk, MB/s", f0(best(all.OursWrite)), f0(best(all.BaseWrite)), f2(best(all.OursWrite) / best(all.BaseWrite)), "≥ 0.7"},
			row{"    the same worker's bare sync-access-handle writes (ceiling), MB/s", "", f0(best(all.BareWrite)), f2(best(all.OursWrite) / best(all.BareWrite)), "(report)"},
		)
	} else {
		rows = append(rows,
			row{"(9) " + label + ": 1 MiB sequential reads / writes through openDisk, MB/s", f0(best(all.OursRead)) + " / " + f0(best(all.OursWrite)), "", "", "(report)"})
	}
	rows = append(rows,
		row{"(9) " + label + ": reads through one overlay layer (disk 50% written), MB/s vs direct", f0(best(all.OverlayRead)), f0(best(all.DirectRead)), f2(best(all.OverlayRead) / best(all.DirectRead)), "≥ 0.8"},
		row{"(9) " + label + ": checkpoint of a 60 GB disk with 1 GiB written, ms", f1(least(all.CpMs)), "", "", "< 10"},
		row{"(9) " + label + ": restore of that checkpoint, ms", f1(least(all.RestoreMs)), "", "", "< 50"},
		row{"(9) " + label + ": revert, ms", f1(least(all.RevertMs)), "", "", "< 50"},
		row{fmt.Sprintf("(9) %s: 4 KiB read latency while a 1 GiB commit runs, p99 ms (p50 %s, %s reads)", label, f2(least(all.P50)), f0(best(all.Reads))), f1(least(all.P99)), "", "", "≤ 20"},
	)
	return rows, nil
}
