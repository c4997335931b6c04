// aerodisk's Web Worker: loads the Go WebAssembly module and gives it the
// few browser primitives it needs (self.aerodiskIO). All disk logic lives in
// Go; these helpers only move bytes between the browser's objects and wasm
// memory, and report exceptions as values ({e: {name, message}}) so Go sees
// their names.
"use strict";
importScripts("./wasm_exec.js");

let memory = null; // the Go instance's WebAssembly.Memory
// The same script runs two roles: the disk worker, and (named
// "aerodisk-helper") a helper worker the disk worker starts, which works on a
// second core: it checksums a raw import while this worker streams it into
// the file, and compresses chunks of a gzip export.
self.aerodiskRole = self.name === "aerodisk-helper" ? "helper" : "disk";
const pending = []; // messages that arrive before Go is ready

// A view over Go memory, made per call: memory growth detaches old buffers.
const view = (addr, len) => new Uint8Array(memory.buffer, addr, len);
const err = (e) => ({ e: { name: (e && e.name) || "Error", message: String((e && e.message) || e) } });
const guard = (fn) => (...args) => { try { return fn(...args); } catch (e) { return err(e); } };

let disksDirPromise = null;
async function subdir(...names) {
  let dir = await navigator.storage.getDirectory();
  for (const n of names) dir = await dir.getDirectoryHandle(n, { create: true });
  return dir;
}

// A macrotask boundary: long synchronous work (sync access handles,
// FileReaderSync) yields through it so queued messages, such as an abort,
// get delivered. MessageChannel avoids setTimeout's 4 ms clamping.
const yieldChannel = new MessageChannel();
const yielded = [];
yieldChannel.port1.onmessage = () => yielded.shift()();

// nextChunk returns the stream's next bytes, at most max of them (the rest
// waits for the next call), or null at its end.
async function nextChunk(s, max) {
  let chunk = s.rest;
  s.rest = null;
  if (!chunk) {
    const r = await s.reader.read();
    if (r.done) return null;
    chunk = r.value;
  }
  if (chunk.length > max) {
    s.rest = chunk.subarray(max);
    chunk = chunk.subarray(0, max);
  }
  return chunk;
}

// allZero reports whether a Uint8Array that owns its buffer from offset 0
// holds only zeros (stopping at the first non-zero word).
function allZero(b) {
  const words = new Uint32Array(b.buffer, 0, b.length >>> 2);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  for (let i = words.length << 2; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

// The helper worker, started on first use (or warmed at open).
const CRC_INFLIGHT = 32 << 20; // bytes posted but not yet checksummed
const crcJobs = new Map();
let nextCRCJob = 1;
const deflates = new Map(); // id → promise of {seg, crc} or {error}
const deflateWaiters = new Map(); // id → its resolve
let nextDeflate = 1;
let helperInstance = null;
function helper() {
  if (!helperInstance) {
    helperInstance = new Worker("./disk_worker.js", { name: "aerodisk-helper" });
    helperInstance.postMessage({ module: wasmModule });
    // A dead helper (an uncaught error, or a failed start-up: {fatal}) must
    // not leave waiters hanging: fail them all. A CRC job then ends without
    // a checksum (Go reports the import as failed); a streamCopy waiting
    // for acks is woken and its job's crcEnd fails the same way.
    const failed = (message) => {
      if (helperInstance !== self_) return;
      const error = `the helper worker failed: ${message || "unknown error"}`;
      for (const done of deflateWaiters.values()) done({ error });
      deflateWaiters.clear();
      for (const j of crcJobs.values()) {
        j.failed = error;
        j.inflight = 0;
        if (j.wake) { const w = j.wake; j.wake = null; w(); }
        if (j.done) j.done(undefined);
      }
      helperInstance.terminate();
      helperInstance = null;
    };
    const self_ = helperInstance;
    // preventDefault keeps the helper's error from propagating to this
    // worker's own error handler and the page, which would fail every call
    // at once, before the failing import has removed its partial file.
    helperInstance.onerror = (e) => { e.preventDefault(); failed(e.message); };
    helperInstance.onmessage = (e) => {
      if (e.data.fatal) { failed(e.data.fatal.message); return; }
      if (e.data.deflated) {
        const done = deflateWaiters.get(e.data.deflated);
        deflateWaiters.delete(e.data.deflated);
        if (done) done({ seg: e.data.seg, crc: e.data.crc >>> 0, error: e.data.error });
        return;
      }
      const j = crcJobs.get(e.data.job);
      if (!j) return;
      if (e.data.ack) {
        j.inflight -= e.data.ack;
        if (j.wake && j.inflight <= CRC_INFLIGHT) { const w = j.wake; j.wake = null; w(); }
      }
      if ("crc" in e.data && j.done) j.done(e.data.crc === null ? undefined : e.data.crc >>> 0);
    };
  }
  return helperInstance;
}

self.aerodiskIO = {
  yield: () => new Promise((resolve) => { yielded.push(resolve); yieldChannel.port2.postMessage(0); }),
  // Promises settle as {v} or {e} so Go keeps rejection names.
  settle: (p) => Promise.resolve(p).then((v) => ({ v }), err),

  // Sync access handle I/O straight from/to Go memory.
  read: guard((h, addr, len, at) => h.read(view(addr, len), { at })),
  write: guard((h, addr, len, at) => h.write(view(addr, len), { at })),
  truncate: guard((h, size) => h.truncate(size)),
  getSize: guard((h) => h.getSize()),
  flush: guard((h) => h.flush()),
  close: guard((h) => h.close()),

  opfsSupported: () =>
    typeof FileSystemFileHandle !== "undefined" &&
    typeof FileSystemFileHandle.prototype.createSyncAccessHandle === "function",
  hideSyncAccessHandles: () => { delete FileSystemFileHandle.prototype.createSyncAccessHandle; },
  disksDir: () => (disksDirPromise ||= subdir("aero", "disks")),
  exportsDir: () => subdir("aero", "exports"),
  async createFile(dir, name) {
    try {
      await dir.getFileHandle(name);
      throw new DOMException(`${name} exists`, "InvalidStateError");
    } catch (e) {
      if (e.name !== "NotFoundError") throw e;
    }
    const fh = await dir.getFileHandle(name, { create: true });
    return fh.createSyncAccessHandle();
  },
  async openFile(dir, name, writable, create = false) {
    const fh = await dir.getFileHandle(name, { create });
    return fh.createSyncAccessHandle({ mode: writable ? "readwrite" : "read-only" });
  },
  removeFile: (dir, name) => dir.removeEntry(name),
  async listFiles(dir) {
    const out = [];
    for await (const [name, h] of dir.entries()) if (h.kind === "file") out.push(name);
    return out;
  },
  async clearDir(dir) {
    for await (const [name] of dir.entries()) {
      try { await dir.removeEntry(name); } catch (e) { /* held open by another tab */ }
    }
  },
  async readText(dir, name) {
    const fh = await dir.getFileHandle(name);
    return (await fh.getFile()).text();
  },
  // Moves tmp over name. Chromium's move() replaces an existing file; where
  // it refuses, the old file is removed first (readers then fall back to tmp).
  async replaceFile(dir, tmp, name) {
    const fh = await dir.getFileHandle(tmp);
    try {
      await fh.move(dir, name);
    } catch (e) {
      await dir.removeEntry(name).catch(() => {});
      await fh.move(dir, name);
    }
  },
  // Web Lock shared by every tab of the origin: resolves to its release.
  lock: (name) =>
    new Promise((held) => {
      navigator.locks.request(name, () => new Promise((release) => held(release)));
    }),
  // The same without waiting: resolves to null when another holder has it
  // (shared locks coexist; exclusive ones do not), else to its release,
  // which returns a promise that settles once the lock is free again — so
  // this worker's next tryLock cannot find its own lock still held.
  tryLock: (name, exclusive) =>
    new Promise((held) => {
      const req = navigator.locks.request(name, { mode: exclusive ? "exclusive" : "shared", ifAvailable: true }, (lock) => {
        if (!lock) { held(null); return; }
        return new Promise((release) => held(() => { release(); return req; }));
      });
      req.catch(() => held(null));
    }),
  estimate: () => navigator.storage.estimate(),
  crashHelper: () => { if (helperInstance) helperInstance.postMessage({ crash: true }); },

  // Input files: random access (FileReaderSync, synchronous in workers) and
  // a sequential stream, batched into Go-sized reads.
  readFileAt: guard((file, off, len, addr) => {
    const buf = new FileReaderSync().readAsArrayBuffer(file.slice(off, off + len));
    view(addr, buf.byteLength).set(new Uint8Array(buf));
    return buf.byteLength;
  }),
  openStream: guard((file) => ({ reader: file.stream().getReader(), rest: null })),
  async streamRead(s, addr, len) {
    let n = 0;
    for (let chunk; n < len && (chunk = await nextChunk(s, len - n)); n += chunk.length) {
      view(addr + n, chunk.length).set(chunk);
    }
    return n;
  },
  closeStream: guard((s) => { s.reader.cancel().catch(() => {}); }),

  // Parallel-checksum copy: stream chunks go straight into the sync access
  // handle and, transferred, to the checksum worker. crcBegin/crcEnd bracket
  // one job; streamCopy moves up to len bytes and resolves to the count.
  crcBegin: guard(() => {
    const id = nextCRCJob++;
    crcJobs.set(id, { inflight: 0, wake: null, done: null, failed: null });
    helper().postMessage({ job: id, begin: true });
    return id;
  }),
  async streamCopy(s, h, at, len, job) {
    const j = crcJobs.get(job);
    if (j.failed) throw new Error(j.failed); // not worth copying the rest
    const batch = [];
    let n = 0;
    while (n < len) {
      let chunk = await nextChunk(s, len - n);
      if (!chunk) break;
      if (chunk.byteOffset !== 0 || chunk.byteLength !== chunk.buffer.byteLength) {
        chunk = chunk.slice(); // owns its buffer, so it can be transferred
      }
      const w = h.write(chunk, { at: at + n });
      if (w !== chunk.length) throw new DOMException(`wrote ${w} of ${chunk.length} bytes`, "QuotaExceededError");
      n += w;
      batch.push(chunk);
    }
    // One message per call (≤ 16 MiB): posting each stream chunk costs more.
    while (j.inflight > CRC_INFLIGHT) await new Promise((wake) => { j.wake = wake; });
    if (j.failed) throw new Error(j.failed);
    j.inflight += n;
    helper().postMessage({ job, chunks: batch }, batch.map((c) => c.buffer));
    return n;
  },
  // The IndexedDB form: streamChunk assembles the stream's next len bytes
  // (fewer at its end) in a new Uint8Array, resolving to {chunk, n, zero}
  // or null at the end; once Go has put the chunks, crcPost transfers them
  // to the checksum worker.
  async streamChunk(s, len) {
    const out = new Uint8Array(len);
    let n = 0;
    for (let c; n < len && (c = await nextChunk(s, len - n)); n += c.length) out.set(c, n);
    if (n === 0) return null;
    const chunk = n === len ? out : out.slice(0, n);
    return { chunk, n, zero: allZero(chunk) };
  },
  async crcPost(job, chunks) {
    const j = crcJobs.get(job);
    if (!j) throw new DOMException("no such checksum job", "InvalidStateError");
    let n = 0;
    for (const c of chunks) n += c.length;
    while (j.inflight > CRC_INFLIGHT) await new Promise((wake) => { j.wake = wake; });
    if (j.failed) throw new Error(j.failed);
    j.inflight += n;
    helper().postMessage({ job, chunks }, chunks.map((c) => c.buffer));
  },
  crcEnd: (job) =>
    new Promise((resolve) => {
      const j = crcJobs.get(job);
      if (j.failed) { resolve(undefined); return; } // no checksum: Go fails the import
      j.done = resolve;
      helper().postMessage({ job, end: true });
    }).finally(() => crcJobs.delete(job)),
  crcCancel: guard((job) => {
    crcJobs.delete(job);
    helper().postMessage({ job, cancel: true });
  }),
  warmHelper: guard(() => { helper(); }),

  // Compresses one chunk of Go memory in the helper worker: deflateStart
  // copies and posts it and returns an id; deflateWait(id) resolves to
  // {seg: Uint8Array, crc} or {error}.
  deflateStart: guard((addr, len) => {
    const id = nextDeflate++;
    const chunk = view(addr, len).slice();
    deflates.set(id, new Promise((resolve) => deflateWaiters.set(id, resolve)));
    helper().postMessage({ deflate: id, chunk }, [chunk.buffer]);
    return id;
  }),
  deflateWait(id) {
    const p = deflates.get(id);
    deflates.delete(id);
    return p;
  },

  // Messages to the page.
  post: guard((msg) => self.postMessage(msg)),
  postChunk: guard((id, addr, len) => {
    const chunk = view(addr, len).slice().buffer; // a copy the page owns
    self.postMessage({ id, chunk }, [chunk]);
  }),
  memoryBytes: () => (memory ? memory.buffer.byteLength : 0),
  ready: guard(() => {
    self.onmessage = (e) => dispatch(e.data);
    for (const m of pending.splice(0)) dispatch(m);
    self.postMessage({ ready: true });
  }),
};

// The helper's CRC32 jobs never enter Go: Go's wasm code generator runs
// hash/crc32 at ~1.2 GB/s, and on a 2-core machine the helper's CPU time per
// byte is what a raw import pays (it competes with the browser's
// file-reading threads). web/crc32.wasm is a hand-written slicing-by-16
// kernel (generated by internal/crc32wasm, tested against Go's hash/crc32)
// that V8 compiles to tight machine code. It is a leaf primitive like a
// hash function: update(crc, addr, len) = Go's crc32.Update(crc, IEEE, …)
// over its own memory from addr.
//
//   disk → helper  {job, begin} · {job, chunks: [Uint8Array] (transferred)} · {job, end} · {job, cancel}
//   helper → disk  {job, ack: bytes} after each message of chunks · {job, crc} after end
let crcKernel = null; // the kernel's exports, loaded before the helper is ready
const CRC_PIECE = 1 << 20; // bytes copied into the kernel per call: stays in L2
const helperCRCs = new Map(); // job → CRC so far
function loadCRCKernel() {
  return WebAssembly.instantiateStreaming(fetch("./crc32.wasm")).then(({ instance }) => {
    const k = instance.exports;
    const need = k.data.value + CRC_PIECE - k.mem.buffer.byteLength;
    if (need > 0) k.mem.grow(Math.ceil(need / 65536));
    crcKernel = k;
  });
}
function crcMessage(m) {
  const { job } = m;
  if (m.chunks) {
    // Always ack, even for a cancelled job: the disk worker counts bytes in flight.
    let crc = helperCRCs.get(job), total = 0;
    const k = crcKernel, base = k.data.value;
    const mem = new Uint8Array(k.mem.buffer, base, CRC_PIECE); // the memory never grows after load
    for (const chunk of m.chunks) {
      total += chunk.length;
      if (crc === undefined) continue;
      for (let off = 0; off < chunk.length; off += CRC_PIECE) {
        const piece = chunk.subarray(off, off + CRC_PIECE);
        mem.set(piece);
        crc = k.update(crc, base, piece.length);
      }
    }
    if (crc !== undefined) helperCRCs.set(job, crc);
    self.postMessage({ job, ack: total });
  } else if (m.begin) {
    helperCRCs.set(job, 0);
  } else if (m.end) {
    // An unknown job (this helper replaced a dead one) has no checksum to give.
    const crc = helperCRCs.get(job);
    helperCRCs.delete(job);
    self.postMessage(crc === undefined ? { job, crc: null } : { job, crc: crc >>> 0 });
  } else if (m.cancel) {
    helperCRCs.delete(job);
  }
}
// helperMessage handles what reaches the helper outside Go: CRC jobs, and
// a test's request to die as a crashing helper would (an uncaught error).
function helperMessage(m) {
  if (m && m.crash) setTimeout(() => { throw new Error("the helper crashed on request (a test)"); });
  else crcMessage(m);
}
// dispatch hands a message to Go, or to crcMessage in the helper.
const dispatch = (m) => (self.aerodiskRole === "helper" && m && (m.job || m.crash) ? helperMessage(m) : self.aerodiskHandle(m));

const go = new Go();
let wasmModule = null; // compiled once, shared with the helper worker

function run(instancePromise) {
  instancePromise
    .then((instance) => {
      memory = instance.exports.mem;
      return go.run(instance);
    })
    .catch((e) => self.postMessage({ fatal: { name: e.name || "Error", message: String(e.message || e) } }));
}

if (self.aerodiskRole === "helper") {
  // The disk worker sends its compiled module first: no second fetch or
  // compile of the wasm on start-up.
  self.onmessage = (e) => {
    if (e.data && e.data.module) {
      self.onmessage = (later) => pending.push(later.data);
      // Go starts (and reports ready) only once the CRC kernel is loaded.
      run(loadCRCKernel().then(() => WebAssembly.instantiate(e.data.module, go.importObject)));
    } else {
      pending.push(e.data);
    }
  };
} else {
  self.onmessage = (e) => pending.push(e.data);
  run(WebAssembly.instantiateStreaming(fetch("./aerodisk.wasm"), go.importObject).then((r) => {
    wasmModule = r.module;
    return r.instance;
  }));
}
