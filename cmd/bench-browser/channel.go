package main

import (
	"fmt"
	"slices"

	"aerodisk/internal/browsertest"
)

// Line 9, the synchronous channel (issue 13 §6; docs/browser.md,
// "Synchronous channel"). An emulator's worker (web/bench/channel_client.js)
// blocks on a disk and times the same loops (the same offsets, sizes and
// bytes) on three: aerodisk's channel to a device, through BlockChannel;
// the plain-JS baseline, a worker (web/bench/device_worker.js, "serve")
// holding its own sync access handle on an OPFS file of the same size and
// answering over a SharedArrayBuffer with Atomics, in aerodisk's wire
// format so that the caller's side is the same BlockChannel; and the
// client's own sync access handle on that file called directly, the
// ceiling. The baseline's server blocks in Atomics.wait (a worker that
// serves one channel and nothing else can: the fastest plain JS); the same
// server waiting with Atomics.waitAsync, as aerodisk's disk worker must,
// is reported beside it. The baseline and the ceiling are OPFS's alone;
// IndexedDB's figures are reported. Each figure is the best of -runs, the
// runs alternating which side goes first.

const (
	chanSize     = 256 << 20 // the disk, all of it written then read 1 MiB at a time
	chanRandSpan = 64 << 20  // where the random 4 KiB reads and writes go
	chanReads    = 20000
	chanWrites   = 10000
	chanMaxMs    = 10000 // a random loop stops after this long (a slow backend reports a rate)
)

// chanJS defines, in the page, spawn(url, options): a worker with
// ask(msg, transfer), a promise of its answer (device_worker.js's and
// channel_client.js's shapes: {id, ...value} or {id, error}).
const chanJS = `
	const spawn = (url, options) => {
		const w = new Worker(url, options);
		const pending = new Map();
		let next = 1;
		const fail = (err) => { for (const p of pending.values()) p.reject(err); pending.clear(); };
		w.onmessage = (e) => { const p = pending.get(e.data.id); if (!p) return; pending.delete(e.data.id);
			if (e.data.error) p.reject(Object.assign(new Error(e.data.error.message), { name: e.data.error.name })); else p.resolve(e.data); };
		w.onerror = (e) => fail(new Error(url + " failed: " + e.message));
		return { w, ask: (msg, transfer = []) => new Promise((resolve, reject) => { const id = next++; pending.set(id, { resolve, reject }); w.postMessage({ ...msg, id }, transfer); }) };
	};
	const client = () => spawn("/web/bench/channel_client.js", { type: "module" });
`

// chanFigures is what channel_client.js's "run" measures.
type chanFigures struct {
	SeqWriteMs, SeqReadMs float64
	RndRead, RndWrite     struct{ N, Ms, P50Us, P99Us float64 }
}

// chanBest collects the runs of one disk.
type chanBest struct {
	seqRead, seqWrite, reads, writes, readP50, readP99, writeP50, writeP99 []float64
}

func (b *chanBest) add(f chanFigures) {
	b.seqRead = append(b.seqRead, mbps(chanSize, f.SeqReadMs))
	b.seqWrite = append(b.seqWrite, mbps(chanSize, f.SeqWriteMs))
	b.reads = append(b.reads, f.RndRead.N/f.RndRead.Ms*1000)
	b.writes = append(b.writes, f.RndWrite.N/f.RndWrite.Ms*1000)
	b.readP50 = append(b.readP50, f.RndRead.P50Us)
	b.readP99 = append(b.readP99, f.RndRead.P99Us)
	b.writeP50 = append(b.writeP50, f.RndWrite.P50Us)
	b.writeP99 = append(b.writeP99, f.RndWrite.P99Us)
}

func benchChannel(p *browsertest.Page, dmVar, label string) ([]row, error) {
	opfs := label == "OPFS"
	work := map[string]any{"size": chanSize, "randSpan": chanRandSpan, "nRead": chanReads, "nWrite": chanWrites, "maxMs": chanMaxMs, "seed": 7}
	var ours, base, async, bare chanBest
	runOurs := func() error {
		var f chanFigures
		settle()
		if err := p.Eval(chanJS+`const dm = globalThis[args[0]];
			const d = await dm.createBlankDisk({ name: "bench channel", sizeBytes: args[1].size });
			const dev = await dm.openDisk(d.id, { writable: true });
			const ch = await dev.channel();
			const c = client();
			try {
				await c.ask({ cmd: "open", ch }, [ch.port]);
				const r = await c.ask({ cmd: "run", ...args[1] });
				await c.ask({ cmd: "close" });
				return r.value;
			} finally {
				c.w.terminate();
				await dev.close();
				await dm.deleteDisk(d.id);
			}`, &f, dmVar, work); err != nil {
			return fmt.Errorf("%s channel: %w", label, err)
		}
		ours.add(f)
		return nil
	}
	// runBase measures the baseline (its server blocking in Atomics.wait,
	// or with block false waiting with Atomics.waitAsync), then, on the
	// file it left, the bare handle.
	runBase := func(block bool) error {
		var f struct{ Base, Bare chanFigures }
		settle()
		if err := p.Eval(chanJS+`const c = client(), s = spawn("/web/bench/device_worker.js");
			try {
				await s.ask({ op: "open", name: "channel.img", size: args[0].size });
				const sab = new SharedArrayBuffer(4096 + (1 << 20));
				await s.ask({ op: "serve", sab, block: args[1] });
				await c.ask({ cmd: "open", ch: { sab } });
				const base = (await c.ask({ cmd: "run", ...args[0] })).value;
				await c.ask({ cmd: "close" });
				const i32 = new Int32Array(sab, 0, 2);
				Atomics.store(i32, 1, 1); // ended: the server stops
				Atomics.notify(i32, 0);
				await s.ask({ op: "close" });
				let bare = null;
				if (args[2]) {
					await c.ask({ cmd: "open", bare: "channel.img" });
					bare = (await c.ask({ cmd: "run", ...args[0] })).value;
					await c.ask({ cmd: "close" });
				}
				return { base, bare };
			} finally {
				c.w.terminate(); s.w.terminate();
				const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("bench");
				await dir.removeEntry("channel.img").catch(() => {});
			}`, &f, work, block, block); err != nil {
			return fmt.Errorf("%s channel baseline: %w", label, err)
		}
		if block {
			base.add(f.Base)
			bare.add(f.Bare)
		} else {
			async.add(f.Base)
		}
		return nil
	}
	for i := 0; i < *runs; i++ {
		step("%s channel run %d/%d", label, i+1, *runs)
		// Odd runs put the baseline first: neither side always follows the other.
		order := []func() error{runOurs}
		if opfs {
			order = append(order, func() error { return runBase(true) }, func() error { return runBase(false) })
			if i%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
		}
		for _, fn := range order {
			if err := fn(); err != nil {
				return nil, err
			}
		}
	}
	best, least := slices.Max[[]float64], slices.Min[[]float64]
	pre := "(9) " + label + ": "
	if !opfs {
		return []row{
			{pre + "1 MiB sequential reads / writes through the synchronous channel, MB/s", f0(best(ours.seqRead)) + " / " + f0(best(ours.seqWrite)), "", "", "(report)"},
			{fmt.Sprintf("%s4 KiB random reads over the channel, per second (median round trip %s µs, p99 %s)", pre, f0(least(ours.readP50)), f0(least(ours.readP99))), f0(best(ours.reads)), "", "", "(report)"},
			{fmt.Sprintf("%s4 KiB random writes over the channel, per second (median %s µs, p99 %s)", pre, f0(least(ours.writeP50)), f0(least(ours.writeP99))), f0(best(ours.writes)), "", "", "(report)"},
		}, nil
	}
	ratio := func(o, b []float64) string { return f2(best(o) / best(b)) }
	return []row{
		{pre + "1 MiB sequential reads through the synchronous channel, MB/s (vs a plain-JS worker serving a SharedArrayBuffer)", f0(best(ours.seqRead)), f0(best(base.seqRead)), ratio(ours.seqRead, base.seqRead), "≥ 0.8"},
		{"    bare sync-access-handle reads in a worker (ceiling), MB/s", "", f0(best(bare.seqRead)), ratio(ours.seqRead, bare.seqRead), "(report)"},
		{pre + "1 MiB sequential writes through the channel, MB/s", f0(best(ours.seqWrite)), f0(best(base.seqWrite)), ratio(ours.seqWrite, base.seqWrite), "≥ 0.7"},
		{"    bare sync-access-handle writes (ceiling), MB/s", "", f0(best(bare.seqWrite)), ratio(ours.seqWrite, bare.seqWrite), "(report)"},
		{pre + "4 KiB random reads over the channel, per second", f0(best(ours.reads)), f0(best(base.reads)), ratio(ours.reads, base.reads), "≥ 20000"},
		{fmt.Sprintf("    their median round trip, µs (p99 %s; plain JS %s)", f0(least(ours.readP99)), f0(least(base.readP99))), f0(least(ours.readP50)), f0(least(base.readP50)), f2(least(ours.readP50) / least(base.readP50)), "≤ 50"},
		{"    bare sync-access-handle 4 KiB random reads (ceiling), per second", "", f0(best(bare.reads)), ratio(ours.reads, bare.reads), "(report)"},
		{fmt.Sprintf("    plain JS with an Atomics.waitAsync server, reads per second (median %s µs, p99 %s)", f0(least(async.readP50)), f0(least(async.readP99))), "", f0(best(async.reads)), ratio(ours.reads, async.reads), "(report)"},
		{fmt.Sprintf("%s4 KiB random writes over the channel, per second (median %s µs, p99 %s; plain JS %s, %s)", pre, f0(least(ours.writeP50)), f0(least(ours.writeP99)), f0(least(base.writeP50)), f0(least(base.writeP99))), f0(best(ours.writes)), f0(best(base.writes)), ratio(ours.writes, base.writes), "≥ 10000"},
		{"    bare sync-access-handle 4 KiB random writes (ceiling), per second", "", f0(best(bare.writes)), ratio(ours.writes, bare.writes), "(report)"},
		{fmt.Sprintf("    plain JS with an Atomics.waitAsync server, writes per second (median %s µs)", f0(least(async.writeP50))), "", f0(best(async.writes)), ratio(ours.writes, async.writes), "(report)"},
	}, nil
}
