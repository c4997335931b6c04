// The emulator's side of `make bench` line 9's synchronous-channel figures
// (cmd/bench-browser/channel.go): a module worker that blocks on a disk the
// way an emulator compiled from C would, and times it. The disk is one of
//
//   aerodisk   a BlockChannel (web/block_channel.js) on dev.channel()
//   plain      the plain-JS baseline: a BlockChannel too, on a
//              SharedArrayBuffer that web/bench/device_worker.js's "serve"
//              answers from its own sync access handle on an OPFS file (it
//              speaks aerodisk's wire format, so the caller's side, spin
//              and all, is the same code and only the server differs)
//   bare       this worker's own sync access handle on that same file,
//              called directly: the ceiling (no channel at all)
//
// and all three run the same loops (work, below) with the same offsets,
// sizes and bytes, through the same three calls, so the ratios compare
// what serves the requests alone.
//
//   page → worker  {id, cmd: "open", ch}           aerodisk's {sab, port} (port transferred),
//                                                  or the baseline's {sab} (already served)
//                  {id, cmd: "open", bare: name}   a sync access handle on bench/<name> (nobody else holding it)
//                  {id, cmd: "run", size, randSpan, nRead, nWrite, maxMs, seed}   → the figures (work)
//                  {id, cmd: "close"}              closes the disk
//   worker → page  {id, value} · {id, error: {name, message}}
import { BlockChannel } from "/web/block_channel.js";

// BareDisk is the ceiling: the same calls straight on a sync access handle.
class BareDisk {
  constructor(h) { this.h = h; }
  readSync(offset, target) { this.h.read(target, { at: offset }); }
  writeSync(offset, bytes) { this.h.write(bytes, { at: offset }); }
  flushSync() { this.h.flush(); }
  close() { this.h.close(); }
}

let disk = null;

// The buffers, made once (none is allocated inside a timed loop).
const MIB = 1 << 20, BLOCK = 4096;
const mib = new Uint8Array(MIB);
const block = new Uint8Array(BLOCK);
const fill = (b, seed) => {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = 1 + (x % 255); }
};

const pct = (sorted, n, p) => sorted[Math.min(n - 1, Math.floor(p * n))] * 1000;

// work runs, in this order: 1 MiB sequential writes over [0, size) then a
// flush; 1 MiB sequential reads over the same; nRead 4 KiB reads at random
// 4 KiB-aligned offsets of [0, randSpan), each timed; nWrite 4 KiB writes
// at random offsets there (each a different block of bytes: a counter in
// its first word), each timed, then a flush. A random loop stops early
// (and says how many it made) once it has run maxMs: a slow backend
// reports a rate rather than running for minutes. Times in ms, round trips
// in µs.
function work({ size, randSpan, nRead, nWrite, maxMs, seed }) {
  fill(mib, seed);
  fill(block, seed + 1);
  const out = {};
  let t = performance.now();
  for (let at = 0; at < size; at += MIB) disk.writeSync(at, mib);
  disk.flushSync();
  out.seqWriteMs = performance.now() - t;
  t = performance.now();
  for (let at = 0; at < size; at += MIB) disk.readSync(at, mib);
  out.seqReadMs = performance.now() - t;

  const blocks = Math.floor(randSpan / BLOCK);
  let x = seed >>> 0 || 1;
  const rnd = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % blocks; };
  const times = new Float64Array(Math.max(nRead, nWrite));
  const words = new Uint32Array(block.buffer, 0, 1);
  const random = (n, write) => {
    const t0 = performance.now();
    let i = 0, s = t0;
    for (; i < n; i++) {
      const at = rnd() * BLOCK;
      if (write) {
        words[0] = i;
        disk.writeSync(at, block);
      } else {
        disk.readSync(at, block);
      }
      const e = performance.now();
      times[i] = e - s;
      s = e;
      if (e - t0 > maxMs) { i++; break; }
    }
    if (write) disk.flushSync();
    const ms = performance.now() - t0;
    const sorted = times.subarray(0, i).sort();
    return { n: i, ms, p50Us: pct(sorted, i, 0.5), p99Us: pct(sorted, i, 0.99) };
  };
  out.rndRead = random(nRead, false);
  out.rndWrite = random(nWrite, true);
  return out;
}

self.onmessage = async (e) => {
  const m = e.data;
  try {
    let value = null;
    switch (m.cmd) {
      case "open":
        if (m.ch) disk = new BlockChannel(m.ch);
        else {
          const root = await navigator.storage.getDirectory();
          const dir = await root.getDirectoryHandle("bench");
          const f = await dir.getFileHandle(m.bare);
          disk = new BareDisk(await f.createSyncAccessHandle());
        }
        break;
      case "run":
        value = work(m);
        break;
      case "close":
        disk.close();
        disk = null;
        break;
      default:
        throw new Error("unknown command " + m.cmd);
    }
    self.postMessage({ id: m.id, value });
  } catch (err) {
    self.postMessage({ id: m.id, error: { name: String(err && err.name), message: String(err && err.message) } });
  }
};
