// The plain-JS baseline of `make bench` line 9 (cmd/bench-browser/devices.go
// and channel.go): what a page would write without aerodisk to serve block
// requests from a worker — its own OPFS sync access handle on a file of the
// same size, answering the page's requests over postMessage, or an
// emulator's over a SharedArrayBuffer ("serve"), with no wasm, no
// checksum, no catalog.
//
//   {id, op: "open", name, size}          create bench/<name> of size bytes, hold a sync handle
//   {id, op: "read", offset, length}      answered {id, buf} (a new ArrayBuffer, transferred)
//   {id, op: "write", offset, buf}        buf transferred in; answered {id}
//   {id, op: "flush"} / {id, op: "close"}
//   {id, op: "bare", total, chunk, write} the same reads (or writes) looped inside the worker
//                                         with one buffer: the ceiling; answered {id, ms}
//   {id, op: "serve", sab, block}         the synchronous channel's baseline (channel.go): answered
//                                         {id}, then the handle (opened by "open") serves
//                                         a BlockChannel's requests in sab until the page ends it
//                                         (see serve, below)
"use strict";

let h = null;

// The synchronous channel's baseline speaks aerodisk's own wire format
// (web/disk_worker.js, "the synchronous channel"; docs/browser.md), so the
// emulator's worker drives it with the same BlockChannel, spin and all:
// only the server differs. Int32 words 0 state (0 idle, 1 request,
// 2 answered), 1 ended (1: stop serving, the page's doing), 2 op, 3 status,
// 4 heartbeat, 6 magic, 7 data bytes, 8 sector size, 9 read-only; Float64
// words 8 offset, 9 length, 11 the disk's size; the answer's error record
// at byte 128; the data area from byte 4096 on.
const STATE = 0, ENDED = 1, OP = 2, STATUS = 3, BEAT = 4, MAGIC = 6, DATA = 7, SECTOR = 8;
const OFFSET = 8, LENGTH = 9, SIZE = 11, ANSWER = 128, HEADER = 4096, MAGIC_VALUE = 0x41444331;
const REQUEST = 1, ANSWERED = 2;
const READ = 1, WRITE = 2, FLUSH = 4;
// After each answer the server polls for the next request for POLL_MS
// before it waits, as aerodisk's Go side does (50 µs): a caller in a burst
// sends its next request sooner, and a thread that slept wakes late.
const POLL_MS = 0.05;

// serve answers the requests in sab with the sync access handle h: a read
// goes from the handle straight into the shared data area, a write from
// it (the handle takes shared memory: no copy on this side, where aerodisk
// copies between wasm memory and the data area). No range is checked.
//
// block (what channel.go's baseline uses): this worker does nothing else,
// so it blocks in Atomics.wait between requests (after its poll) and
// answers each in the same task, never returning to its event loop until
// the page ends the channel — the fastest a worker serving one channel can
// be, so the honest plain-JS limit. A worker with anything else to do
// (messages, other disks, a heartbeat: aerodisk's disk worker) cannot
// block and must wait with Atomics.waitAsync, whose wake-up is an
// event-loop task; block false is that variant, reported beside it (it
// returns to the event loop after 2 ms of back-to-back answers, as
// aerodisk's does). Either way it answers "serve" once the header is
// written, and stops once the page has stored 1 in the ended word and
// notified the state word.
function serve(sab, block, ready) {
  const i32 = new Int32Array(sab, 0, 16), f64 = new Float64Array(sab, 0, 12), data = new Uint8Array(sab, HEADER);
  i32[DATA] = data.length;
  i32[SECTOR] = 512;
  f64[SIZE] = h.getSize();
  const failure = new TextEncoder().encode("Error");
  new Int32Array(sab, ANSWER, 2).set([failure.length, 0]);
  new Uint8Array(sab, ANSWER + 8, failure.length).set(failure);
  Atomics.store(i32, MAGIC, MAGIC_VALUE);
  ready();
  const ended = () => Atomics.load(i32, ENDED) !== 0;
  // answer serves the request waiting now.
  const answer = () => {
    const op = i32[OP], at = f64[OFFSET], n = f64[LENGTH];
    let status = 0;
    try {
      if (op === READ) h.read(data.subarray(0, n), { at });
      else if (op === WRITE) h.write(data.subarray(0, n), { at });
      else if (op === FLUSH) h.flush();
      else status = 1;
    } catch (err) {
      status = 1;
    }
    i32[STATUS] = status;
    Atomics.add(i32, BEAT, 1);
    Atomics.store(i32, STATE, ANSWERED);
    Atomics.notify(i32, STATE);
  };
  // poll: true once a request waits, false after POLL_MS without one.
  const poll = () => {
    const until = performance.now() + POLL_MS;
    while (Atomics.load(i32, STATE) !== REQUEST) if (performance.now() > until || ended()) return false;
    return true;
  };
  if (block) {
    while (!ended()) {
      const s = poll() ? REQUEST : Atomics.load(i32, STATE);
      if (s !== REQUEST) Atomics.wait(i32, STATE, s);
      if (Atomics.load(i32, STATE) === REQUEST) answer();
    }
    return;
  }
  const yielder = new MessageChannel();
  const burst = () => {
    const t0 = performance.now();
    while (Atomics.load(i32, STATE) === REQUEST && !ended()) {
      answer();
      if (!poll()) break;
      if (performance.now() - t0 > 2) { yielder.port2.postMessage(0); return; } // back after the event loop's turn
    }
    if (ended()) yielder.port1.close();
    else arm();
  };
  yielder.port1.onmessage = burst;
  const arm = () => {
    const s = Atomics.load(i32, STATE);
    const w = s === REQUEST ? null : Atomics.waitAsync(i32, STATE, s);
    if (w && w.async) w.value.then(burst);
    else queueMicrotask(burst);
  };
  arm();
}

self.onmessage = async (e) => {
  const m = e.data;
  try {
    switch (m.op) {
      case "open": {
        const root = await navigator.storage.getDirectory();
        const dir = await root.getDirectoryHandle("bench", { create: true });
        const f = await dir.getFileHandle(m.name, { create: true });
        h = await f.createSyncAccessHandle();
        h.truncate(m.size);
        self.postMessage({ id: m.id });
        return;
      }
      case "read": {
        const buf = new ArrayBuffer(m.length);
        h.read(new Uint8Array(buf), { at: m.offset });
        self.postMessage({ id: m.id, buf }, [buf]);
        return;
      }
      case "write":
        h.write(new Uint8Array(m.buf), { at: m.offset });
        self.postMessage({ id: m.id });
        return;
      case "flush":
        h.flush();
        self.postMessage({ id: m.id });
        return;
      case "close":
        h.close();
        h = null;
        self.postMessage({ id: m.id });
        return;
      case "serve":
        serve(m.sab, m.block, () => self.postMessage({ id: m.id }));
        return;
      case "bare": {
        const b = new Uint8Array(m.chunk);
        const t0 = performance.now();
        for (let at = 0; at < m.total; at += m.chunk) {
          if (m.write) h.write(b, { at });
          else h.read(b, { at });
        }
        if (m.write) h.flush();
        self.postMessage({ id: m.id, ms: performance.now() - t0 });
        return;
      }
    }
    throw new Error("unknown op " + m.op);
  } catch (err) {
    self.postMessage({ id: m.id, error: { name: err.name, message: err.message } });
  }
};
