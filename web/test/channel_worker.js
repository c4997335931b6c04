// The emulator's worker of the channel tests (internal/browsertest/
// channel_test.go): a module worker that gets a synchronous channel by
// postMessage and blocks on it as an emulator compiled from C would.
//
//   page → worker  {id, cmd: "open", ch}     ch = await dev.channel() (port transferred)
//                  {id, cmd: "model", seed, ops}   the whole disk read into a model, then
//                                           random reads, writes, discards and flushes
//                                           checked against it → {counts, crc}
//                  {id, cmd: "refusals"}    calls that must throw → [{call, name, message}]
//                  {id, cmd: "loop"}        reads until one throws → {reads, name, message}
//                                           (posts {started} after the first read)
//                  {id, cmd: "close"}       BlockChannel.close()
//                  {id, cmd: "call", call}  one call (see calls) → {name, message} or null
//                  {id, cmd: "timing", n, seqMiB}  informal figures (no assertion)
//   worker → page  {id, ok: true, value} · {id, ok: false, error: {name, message}}
import { BlockChannel } from "/web/block_channel.js";
import { crc32, randomBytes } from "/web/test/helpers.js";

let disk = null;

const errorOf = (fn) => {
  try {
    fn();
    return null;
  } catch (e) {
    return { name: String(e && e.name), message: String(e && e.message) };
  }
};

// The calls "refusals" and "call" make, by name.
const calls = {
  "read at 1": () => disk.readSync(1, new Uint8Array(512)),
  "read 100 bytes": () => disk.readSync(0, new Uint8Array(100)),
  "read 0 bytes": () => disk.readSync(0, new Uint8Array(0)),
  "read at -512": () => disk.readSync(-512, new Uint8Array(512)),
  "read at the end": () => disk.readSync(disk.sizeBytes, new Uint8Array(512)),
  "read across the end": () => disk.readSync(disk.sizeBytes - 512, new Uint8Array(1024)),
  "read 3 MiB across the end": () => disk.readSync(disk.sizeBytes - (1 << 20), new Uint8Array(3 << 20)),
  "read at 2^40": () => disk.readSync(2 ** 40, new Uint8Array(512)),
  "read at 0.5": () => disk.readSync(0.5, new Uint8Array(512)),
  "read at \"0\"": () => disk.readSync("0", new Uint8Array(512)),
  "read at null": () => disk.readSync(null, new Uint8Array(512)),
  "write at 1": () => disk.writeSync(1, new Uint8Array(512).fill(7)),
  "write 1000 bytes": () => disk.writeSync(512, new Uint8Array(1000).fill(7)),
  "write 3 MiB + 100 bytes": () => disk.writeSync(0, new Uint8Array((3 << 20) + 100).fill(7)),
  "write 3 MiB across the end": () => disk.writeSync(disk.sizeBytes - (2 << 20), new Uint8Array(3 << 20).fill(7)),
  "discard at 1": () => disk.discardSync(1, 512),
  "discard 100 bytes": () => disk.discardSync(0, 100),
  "discard 0 bytes": () => disk.discardSync(0, 0),
  "discard across the end": () => disk.discardSync(disk.sizeBytes - 512, 1024),
  "discard \"512\" bytes": () => disk.discardSync(0, "512"),
  // Allowed ones, for read-only and closed channels.
  read: () => disk.readSync(0, new Uint8Array(4096)),
  write: () => disk.writeSync(0, new Uint8Array(4096).fill(9)),
  discard: () => disk.discardSync(0, 4096),
  flush: () => disk.flushSync(),
  "read into an ArrayBuffer": () => disk.readSync(0, new ArrayBuffer(512)),
};

// model runs ops random requests against a model of the whole disk: reads
// (into views at odd places of a larger buffer) checked against it, writes
// (1 sector to 2.5 MiB, so long ones cross the data area's 1 MiB pieces),
// discards, flushes.
function model(seed, ops) {
  const m = new Uint8Array(disk.sizeBytes);
  disk.readSync(0, m); // longer than the data area: pieces
  const startCrc = crc32(m);
  let x = seed >>> 0 || 1;
  const rnd = (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
  const sectors = disk.sizeBytes / 512;
  const counts = { write: 0, discard: 0, read: 0, flush: 0, long: 0 };
  const big = new Uint8Array(6 << 20);
  const same = (a, off) => { for (let i = 0; i < a.length; i++) if (a[i] !== m[off + i]) return false; return true; };
  for (let i = 0; i < ops; i++) {
    let n = 1 + rnd(5120);
    if (rnd(2) === 0) n = 1 + rnd(16);
    n = Math.min(n, sectors);
    const off = rnd(sectors - n + 1) * 512, len = n * 512;
    if (len > 1 << 20) counts.long++;
    switch (rnd(6)) {
    case 0: case 1: {
      const b = randomBytes(len, seed * 1000 + i + 1);
      if (rnd(4) === 0) b.fill(0, 0, len >> 1);
      disk.writeSync(off, b);
      m.set(b, off);
      counts.write++;
      break;
    }
    case 2:
      disk.discardSync(off, len);
      m.fill(0, off, off + len);
      counts.discard++;
      break;
    case 3: case 4: {
      const at = rnd(8) * 8;
      const target = big.subarray(at, at + len);
      disk.readSync(off, target);
      if (!same(target, off)) throw new Error(`readSync [${off}, +${len}) differs from the model at op ${i}`);
      counts.read++;
      break;
    }
    case 5:
      disk.flushSync();
      counts.flush++;
      break;
    }
  }
  const back = new Uint8Array(disk.sizeBytes);
  disk.readSync(0, back);
  if (crc32(back) !== crc32(m)) throw new Error("the disk read whole differs from the model");
  return { counts, startCrc, crc: crc32(m) };
}

// timing: n random 4 KiB reads (each timed), then seqMiB of sequential
// 1 MiB reads and writes. Informal: printed by the test, never asserted.
function timing(n, seqMiB) {
  const b = new Uint8Array(4096);
  const sectors4k = Math.floor(disk.sizeBytes / 4096);
  const times = new Float64Array(n);
  let x = 12345;
  const rnd = (k) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % k; };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    disk.readSync(rnd(sectors4k) * 4096, b);
    times[i] = performance.now() - s;
  }
  const readsPerSec = n / ((performance.now() - t0) / 1000);
  times.sort();
  const mib = new Uint8Array(1 << 20);
  const span = Math.floor(disk.sizeBytes / (1 << 20));
  let t = performance.now();
  for (let i = 0; i < seqMiB; i++) disk.readSync((i % span) << 20, mib);
  const seqReadMBs = seqMiB / ((performance.now() - t) / 1000);
  t = performance.now();
  for (let i = 0; i < seqMiB; i++) disk.writeSync((i % span) << 20, mib);
  disk.flushSync();
  const seqWriteMBs = seqMiB / ((performance.now() - t) / 1000);
  return {
    readsPerSec, medianUs: times[n >> 1] * 1000, p99Us: times[Math.floor(n * 0.99)] * 1000, maxUs: times[n - 1] * 1000,
    seqReadMBs, seqWriteMBs,
  };
}

self.onmessage = (e) => {
  const { id, cmd } = e.data;
  try {
    let value = null;
    switch (cmd) {
    case "open":
      disk = new BlockChannel(e.data.ch);
      value = { sizeBytes: disk.sizeBytes, sectorSize: disk.sectorSize, readOnly: disk.readOnly, isolated: self.crossOriginIsolated };
      break;
    case "model":
      value = model(e.data.seed, e.data.ops);
      break;
    case "refusals":
      value = Object.keys(calls).filter((k) => e.data.only ? e.data.only.includes(k) : true)
        .map((call) => ({ call, ...(errorOf(calls[call]) || { name: "", message: "" }) }));
      break;
    case "call":
      value = errorOf(calls[e.data.call]);
      break;
    case "loop": {
      let reads = 0;
      const b = new Uint8Array(4096);
      const err = errorOf(() => {
        for (;;) {
          disk.readSync((reads % 64) * 4096, b);
          if (reads++ === 0) self.postMessage({ id, started: true });
        }
      });
      value = { reads, ...err };
      break;
    }
    case "close":
      disk.close();
      break;
    case "timing":
      value = timing(e.data.n, e.data.seqMiB);
      break;
    default:
      throw new Error("unknown command " + cmd);
    }
    self.postMessage({ id, ok: true, value });
  } catch (err) {
    self.postMessage({ id, ok: false, error: { name: String(err && err.name), message: String(err && err.message) } });
  }
};
