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

// hold keeps obj referenced until promise settles. Chromium 156 never
// settles some pending promises once the object they were asked of is
// garbage-collected — createSyncAccessHandle() on a FileSystemFileHandle
// (an OPFS import under constant GC stalled before its first byte), a BYOB
// read on a File's stream (see openStream) — and a local variable is not
// enough: V8 keeps across an await only what is used after it
// (TestStreamSurvivesGC runs imports, exports and verifies under constant GC).
const held = new Set();
async function hold(obj, promise) {
  held.add(obj);
  try {
    return await promise;
  } finally {
    held.delete(obj);
  }
}

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

// Input streams. A File's stream is read with a BYOB ("bring your own
// buffer") reader where the browser offers one, into a few buffers reused
// for the whole file: a default reader allocates a new ArrayBuffer for every
// chunk (most are 64 KiB), and that allocation, its page faults and its
// garbage cost the reading thread more than the bytes do — reusing buffers
// makes a plain stream-to-handle copy 1.2–1.6× faster here (docs/browser.md).
// The stream state keeps the stream and its reader referenced (and Go keeps
// the File) for the whole read: in Chromium 156 a BYOB read whose File,
// stream and reader were referenced only from the reading loop stalled
// forever under garbage collection (see hold).
function openStream(file) {
  const stream = file.stream();
  let reader, byob = true;
  try {
    reader = stream.getReader({ mode: "byob" });
  } catch (e) {
    reader = stream.getReader(); // not a byte stream here: chunks are copied
    byob = false;
  }
  return { stream, reader, byob, rest: null, spare: null };
}

// nextChunk returns a default reader's next bytes, at most max of them (the
// rest waits for the next call), or null at its end.
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

// fill reads the stream's next bytes into buf from offset 0 until len bytes
// are there or the stream ends, calling each(piece, offset) for every piece
// as it arrives. It resolves to {buf, n}: a BYOB read transfers the buffer,
// so buf is the same memory under a new ArrayBuffer, and the caller must use
// it (and not the one it passed) from then on. (A read cut short by cancel
// returns no buffer: buf is then the detached one, of 0 bytes.)
async function fill(s, buf, len, each) {
  let n = 0;
  while (n < len) {
    let piece;
    if (s.byob) {
      const r = await s.reader.read(new Uint8Array(buf, n, len - n));
      if (r.value) buf = r.value.buffer;
      if (r.done) break;
      piece = r.value;
    } else {
      const c = await nextChunk(s, len - n);
      if (!c) break;
      piece = new Uint8Array(buf, n, c.length);
      piece.set(c);
    }
    if (each) each(piece, n);
    n += piece.length;
  }
  return { buf, n };
}

// allZero reports whether a Uint8Array that owns its buffer from offset 0
// holds only zeros (stopping at the first non-zero word).
function allZero(b) {
  const words = new Uint32Array(b.buffer, 0, b.length >>> 2);
  for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
  for (let i = words.length << 2; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

// The helper worker, started on first use (or warmed at open). A checksum
// job's bytes travel in buffers (j.bufBytes each, at most j.count of them:
// sizes Go chooses) that the helper transfers back once it has checksummed
// them, so a whole import reuses the same few
// (which also bounds the bytes in flight).
const crcJobs = new Map();
let nextCRCJob = 1;
const deflates = new Map(); // id → promise of {seg, crc} or {error}
const deflateWaiters = new Map(); // id → its resolve
let nextDeflate = 1;
let helperInstance = null;
// crcBuffer resolves to a free buffer of job j: a returned one, a new one
// while fewer than j.count exist, or the next to come back.
async function crcBuffer(j) {
  for (;;) {
    if (j.failed) throw new Error(j.failed);
    if (j.pool.length) return j.pool.pop();
    if (j.made < j.count) { j.made++; return new ArrayBuffer(j.bufBytes); }
    await new Promise((wake) => { j.wake = wake; });
  }
}
// crcReturn takes back a buffer of job j: a pool buffer goes back to the
// pool; any other (a short chunk's copy, a detached one) just frees its
// place, so a new one may be made.
function crcReturn(j, buf) {
  if (buf.byteLength === j.bufBytes) j.pool.push(buf);
  else j.made--;
  if (j.wake) { const w = j.wake; j.wake = null; w(); }
}
// crcSend transfers the first n bytes of buf to the checksum worker (or, n
// being 0, takes buf back).
function crcSend(j, job, buf, n) {
  if (j.failed) throw new Error(j.failed);
  if (n === 0) { crcReturn(j, buf); return; }
  helper().postMessage({ job, buf, n }, [buf]);
}

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
      if (e.data.buf) crcReturn(j, e.data.buf);
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
    return hold(fh, fh.createSyncAccessHandle());
  },
  async openFile(dir, name, writable, create = false) {
    const fh = await dir.getFileHandle(name, { create });
    return hold(fh, fh.createSyncAccessHandle({ mode: writable ? "readwrite" : "read-only" }));
  },
  removeFile: (dir, name) => dir.removeEntry(name),
  async exists(dir, name) {
    try {
      await dir.getFileHandle(name);
      return true;
    } catch (e) {
      if (e.name === "NotFoundError") return false;
      if (e.name === "TypeMismatchError") return true; // a directory of that name
      throw e;
    }
  },
  // Renames a file within dir (a pending file into place); the target does
  // not exist (the caller checked).
  async renameFile(dir, from, to) {
    const fh = await dir.getFileHandle(from);
    await hold(fh, fh.move(dir, to));
  },
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
    const file = await hold(fh, fh.getFile());
    return hold(file, file.text());
  },
  // Moves tmp over name. Chromium's move() replaces an existing file; where
  // it refuses, the old file is removed first (readers then fall back to tmp).
  async replaceFile(dir, tmp, name) {
    const fh = await dir.getFileHandle(tmp);
    try {
      await hold(fh, fh.move(dir, name));
    } catch (e) {
      await dir.removeEntry(name).catch(() => {});
      await hold(fh, fh.move(dir, name));
    }
  },
  // Web Lock shared by every tab of the origin, exclusive or shared:
  // resolves to its release, which returns a promise that settles once the
  // lock is free again.
  lock: (name, exclusive = true) =>
    new Promise((held, failed) => {
      const req = navigator.locks.request(name, { mode: exclusive ? "exclusive" : "shared" },
        () => new Promise((release) => held(() => { release(); return req; })));
      req.catch(failed);
    }),
  // The same without waiting: resolves to null when another holder has it
  // (shared locks coexist; exclusive ones do not), else to its release.
  tryLock: (name, exclusive) =>
    new Promise((held) => {
      const req = navigator.locks.request(name, { mode: exclusive ? "exclusive" : "shared", ifAvailable: true }, (lock) => {
        if (!lock) { held(null); return; }
        return new Promise((release) => held(() => { release(); return req; }));
      });
      req.catch(() => held(null));
    }),
  // The names of the locks held now, by any tab of the origin.
  async heldLocks() {
    const { held = [] } = await navigator.locks.query();
    return held.map((l) => l.name);
  },
  estimate: () => navigator.storage.estimate(),

  // Input files: random access (FileReaderSync, synchronous in workers) and
  // a sequential stream, batched into Go-sized reads.
  readFileAt: guard((file, off, len, addr) => {
    const buf = new FileReaderSync().readAsArrayBuffer(file.slice(off, off + len));
    view(addr, buf.byteLength).set(new Uint8Array(buf));
    return buf.byteLength;
  }),
  openStream: guard(openStream),
  // streamRead reads up to len bytes into Go memory (fewer only at the end).
  async streamRead(s, addr, len) {
    if (!s.spare || s.spare.byteLength < len) s.spare = new ArrayBuffer(len);
    const { buf, n } = await fill(s, s.spare, len);
    s.spare = buf.byteLength ? buf : null;
    view(addr, n).set(new Uint8Array(buf, 0, n)); // the view is made after the await
    return n;
  },
  closeStream: guard((s) => { s.reader.cancel().catch(() => {}); }),

  // Parallel-checksum copy: the stream is read into the job's buffers, each
  // piece written straight into the sync access handle as it arrives, and
  // each buffer is then transferred to the checksum worker, which sends it
  // back. crcBegin/crcEnd bracket one job; streamCopy moves up to len bytes
  // and resolves to the count.
  // crcBegin starts a job whose bytes travel in count buffers of bufBytes
  // (sizes Go chooses: wasm/input.go).
  crcBegin: guard((bufBytes, count) => {
    const id = nextCRCJob++;
    crcJobs.set(id, { pool: [], made: 0, bufBytes, count, wake: null, done: null, failed: null });
    helper().postMessage({ job: id, begin: true });
    return id;
  }),
  async streamCopy(s, h, at, len, job) {
    const j = crcJobs.get(job);
    let n = 0;
    while (n < len) {
      const want = Math.min(j.bufBytes, len - n);
      const base = at + n;
      const r = await fill(s, await crcBuffer(j), want, (piece, off) => {
        const w = h.write(piece, { at: base + off });
        if (w !== piece.length) throw new DOMException(`wrote ${w} of ${piece.length} bytes`, "QuotaExceededError");
      });
      crcSend(j, job, r.buf, r.n);
      n += r.n;
      if (r.n < want) break; // the stream ended
    }
    return n;
  },
  // The IndexedDB form: streamChunk reads the stream's next len bytes
  // (fewer at its end) into one of the job's buffers, resolving to
  // {chunk, n, zero} or null at the end; once Go has put the chunks (a put
  // copies its value), crcPost transfers them to the checksum worker.
  async streamChunk(s, len, job) {
    const j = crcJobs.get(job);
    if (len > j.bufBytes) throw new DOMException(`chunks are at most ${j.bufBytes} bytes`, "InvalidStateError");
    const { buf, n } = await fill(s, await crcBuffer(j), len);
    if (n === 0) { crcReturn(j, buf); return null; }
    let chunk = new Uint8Array(buf, 0, n);
    if (n < j.bufBytes) { // a put clones the whole ArrayBuffer: give it one of n bytes
      chunk = chunk.slice();
      j.made++; // the copy counts as one of the job's buffers until it comes back
      crcReturn(j, buf);
    }
    return { chunk, n, zero: allZero(chunk) };
  },
  async crcPost(job, chunks) {
    const j = crcJobs.get(job);
    if (!j) throw new DOMException("no such checksum job", "InvalidStateError");
    for (const c of chunks) crcSend(j, job, c.buffer, c.length); // throws if the helper failed
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

  // Block devices: a request's ArrayBuffer (a write's bytes, a readInto's
  // lent buffer) and a read's reply, moved to and from Go memory with one
  // copy each; the reply transfers its buffer to the page.
  bufferLength: guard((b) => (b instanceof ArrayBuffer ? b.byteLength : -1)),
  newBuffer: guard((len) => new ArrayBuffer(len)),
  copyOut: guard((buf, at, addr, len) => { new Uint8Array(buf, at, len).set(view(addr, len)); }),
  copyIn: guard((buf, at, addr, len) => { view(addr, len).set(new Uint8Array(buf, at, len)); }),
  replyBuffer: guard((id, buf) => self.postMessage({ id, ok: true, bytes: buf }, [buf])),

  // The synchronous channel's server end (see "the synchronous channel"
  // below): Go decides and answers, these move bytes and flip the words.
  crossOriginIsolated: () => self.crossOriginIsolated === true && typeof SharedArrayBuffer === "function",
  sharedLength: guard((b) => (typeof SharedArrayBuffer === "function" && b instanceof SharedArrayBuffer ? b.byteLength : -1)),
  channelOpen: guard(chOpen),
  channelRead: guard((c, addr, len) => { c.data.set(view(addr, len)); chAnswer(c, 0); }),
  channelTake: guard((c, addr, len) => { view(addr, len).set(c.data.subarray(0, len)); }),
  channelDone: guard((c) => chAnswer(c, 0)),
  channelNext: guard(chNext),
  channelFail: guard((c, name, message) => { chRecord(c, CH.ANSWER, name, message); chAnswer(c, 1); }),
  channelEnd: guard((c, name, message) => chEnd(c, CH_CLOSED, name, message)),

  // Messages to the page.
  post: guard((msg) => self.postMessage(msg)),
  postChunk: guard((id, addr, len) => {
    const chunk = view(addr, len).slice().buffer; // a copy the page owns
    self.postMessage({ id, chunk }, [chunk]);
  }),
  ready: guard(() => {
    self.onmessage = (e) => dispatch(e.data);
    for (const m of pending.splice(0)) dispatch(m);
    self.postMessage({ ready: true });
  }),
};

// The synchronous channel (docs/browser.md, "Synchronous channel";
// wasm/device.go decides everything; web/block_channel.js is the emulator's
// end). A channel is a SharedArrayBuffer the page made: a header of
// CH.HEADER bytes, then the data area. The header, the same in
// web/block_channel.js:
//
//   Int32 words   0 state (0 idle, 1 request, 2 answered) · 1 ended (0 open,
//                 1 closed: throw the closed record, 2 the disk worker
//                 stopped: throw the stopped record) · 2 op · 3 status (0 ok,
//                 1 the answer record) · 4 heartbeat · 5 the emulator side's
//                 lock · 6 magic · 7 data bytes · 8 sector size · 9 read-only
//   Float64 words 8 offset · 9 length · 10 span (the whole remaining range)
//                 · 11 the disk's size
//   records       at 128 the answer's error, 1152 the closed error, 2176 the
//                 stopped error: Int32 name length, Int32 message length,
//                 the name's UTF-8 from byte 8, the message's from byte 72
//
// The emulator writes a request, stores state 1 and notifies; this worker
// waits with Atomics.waitAsync (never blocking its event loop), hands the
// request to Go (the device's queue), and Go's answer stores state 2 and
// notifies. The heartbeat ticks every CH_BEAT_MS while a channel is open,
// so a waiter can tell a busy disk worker from a dead one.
const CH = {
  STATE: 0, ENDED: 1, OP: 2, STATUS: 3, BEAT: 4, LOCK: 5, MAGIC: 6, DATA: 7, SECTOR: 8, READ_ONLY: 9,
  OFFSET: 8, LENGTH: 9, SPAN: 10, SIZE: 11,
  ANSWER: 128, CLOSED: 1152, STOPPED: 2176, NAME_AT: 8, MESSAGE_AT: 72, RECORD_END: 1024,
  HEADER: 4096, MAGIC_VALUE: 0x41444331,
};
const CH_REQUEST = 1, CH_ANSWERED = 2, CH_CLOSED = 1, CH_STOPPED = 2, CH_END = 5, CH_BEAT_MS = 250;
const channels = new Set();
let channelBeat = null;
const channelEncoder = new TextEncoder();

function chOpen(id, sab, port, wake, dataBytes, sizeBytes, sectorSize, readOnly, closedName, closedMessage, stoppedName, stoppedMessage) {
  if (!(port instanceof MessagePort)) throw new TypeError("the channel's port must be a MessagePort");
  const c = {
    id, sab, port, wake, ended: false, busy: false, armed: false,
    i32: new Int32Array(sab, 0, 16), f64: new Float64Array(sab, 0, 12), data: new Uint8Array(sab, CH.HEADER, dataBytes),
  };
  c.i32[CH.DATA] = dataBytes;
  c.i32[CH.SECTOR] = sectorSize;
  c.i32[CH.READ_ONLY] = readOnly ? 1 : 0;
  c.f64[CH.SIZE] = sizeBytes;
  chRecord(c, CH.CLOSED, closedName, closedMessage);
  chRecord(c, CH.STOPPED, stoppedName, stoppedMessage);
  Atomics.store(c.i32, CH.MAGIC, CH.MAGIC_VALUE);
  port.onmessage = (e) => { if (e.data && e.data.close) chWake(c, CH_END, 0, 0, 0); };
  channels.add(c);
  channelBeat ||= setInterval(() => { for (const o of channels) Atomics.add(o.i32, CH.BEAT, 1); }, CH_BEAT_MS);
  chArm(c, true);
  return c;
}

// chRecord writes an error record, in UTF-8 (a message too long for it is
// cut before a whole character; encodeInto takes no shared memory).
function chRecord(c, at, name, message) {
  const put = (s, from, to) => {
    let b = channelEncoder.encode(s);
    if (b.length > to - from) {
      let k = to - from;
      while (k > 0 && (b[k] & 0xc0) === 0x80) k--;
      b = b.subarray(0, k);
    }
    new Uint8Array(c.sab, at + from, b.length).set(b);
    return b.length;
  };
  const lens = new Int32Array(c.sab, at, 2);
  lens[0] = put(name, CH.NAME_AT, CH.MESSAGE_AT);
  lens[1] = put(message, CH.MESSAGE_AT, CH.RECORD_END);
}

// chArm waits for the next request, unless a wait is pending already or a
// request is with Go (busy). inTask: called from a JS task of its own (not
// from inside a Go call), so a request already there goes to Go at once;
// from inside Go it waits for a microtask.
function chArm(c, inTask) {
  if (c.ended || c.busy || c.armed) return;
  const next = () => { c.armed = false; chArm(c, true); };
  const s = Atomics.load(c.i32, CH.STATE);
  if (s === CH_REQUEST) {
    if (inTask) chServe(c);
    else { c.armed = true; queueMicrotask(next); }
    return;
  }
  c.armed = true;
  const w = Atomics.waitAsync(c.i32, CH.STATE, s);
  if (w.async) w.value.then(next);
  else queueMicrotask(next);
}

function chServe(c) {
  c.busy = true;
  chWake(c, Atomics.load(c.i32, CH.OP), c.f64[CH.OFFSET], c.f64[CH.LENGTH], c.f64[CH.SPAN]);
}

function chWake(c, op, offset, length, span) {
  if (c.ended) return;
  try {
    c.wake(c.id, op, offset, length, span);
  } catch (e) {
    chStopAll(); // Go has exited: nobody will answer
  }
}

// chNext hands Go the request waiting now, if any (Go polls for one for a
// moment after each answer: a request taken this way costs no callback):
// its op (0: none), and offset, length and span into Go memory at addr.
function chNext(c, addr) {
  if (c.ended || c.busy || Atomics.load(c.i32, CH.STATE) !== CH_REQUEST) return 0;
  c.busy = true;
  const to = new Float64Array(memory.buffer, addr, 3);
  to[0] = c.f64[CH.OFFSET];
  to[1] = c.f64[CH.LENGTH];
  to[2] = c.f64[CH.SPAN];
  return Atomics.load(c.i32, CH.OP);
}

function chAnswer(c, status) {
  c.busy = false;
  c.i32[CH.STATUS] = status;
  Atomics.store(c.i32, CH.STATE, CH_ANSWERED);
  Atomics.notify(c.i32, CH.STATE);
  chArm(c, false);
}

function chEnd(c, how, name, message) {
  if (c.ended) return;
  c.ended = true;
  if (name) chRecord(c, CH.CLOSED, name, message);
  Atomics.store(c.i32, CH.ENDED, how);
  Atomics.notify(c.i32, CH.STATE);
  Atomics.notify(c.i32, CH.LOCK);
  c.port.onmessage = null;
  c.port.close();
  channels.delete(c);
  if (!channels.size && channelBeat) { clearInterval(channelBeat); channelBeat = null; }
}

// chStopAll ends every channel with its stopped record (written by Go when
// it opened): Go has exited.
function chStopAll() {
  for (const c of [...channels]) chEnd(c, CH_STOPPED);
}

// The helper's CRC32 jobs never enter Go: Go's wasm code generator runs
// hash/crc32 at ~1.2 GB/s, and on a 2-core machine the helper's CPU time per
// byte is what a raw import pays (it competes with the browser's
// file-reading threads). web/crc32.wasm is a hand-written kernel (generated
// by internal/crc32wasm, tested against Go's hash/crc32) that V8 compiles to
// tight machine code: a SIMD form checksumming 16 segments of a 1 MiB block
// at once, and slicing-by-16 for the rest. It is a leaf primitive like a
// hash function; web/crc32_kernel.js's crc32Update(kernel, crc, bytes) has
// the semantics of Go's crc32.Update(crc, IEEE, bytes).
//
//   disk → helper  {job, begin} · {job, buf: ArrayBuffer (transferred), n} · {job, end} · {job, cancel}
//   helper → disk  {job, buf} (transferred back) after checksumming its first n bytes · {job, crc} after end
let crcKernel = null; // the kernel's exports, loaded before the helper is ready
const helperCRCs = new Map(); // job → CRC so far
async function loadCRCKernel() {
  importScripts("./crc32_kernel.js"); // crc32Update: the helper's alone
  const { instance } = await WebAssembly.instantiateStreaming(fetch("./crc32.wasm"));
  const k = instance.exports;
  const need = k.data.value + crc32KernelBytes(k) - k.mem.buffer.byteLength;
  if (need > 0) k.mem.grow(Math.ceil(need / 65536));
  crcKernel = k;
}
function crcMessage(m) {
  const { job } = m;
  if (m.buf) {
    // Always send the buffer back, even for a cancelled job: the disk worker
    // counts its buffers.
    const crc = helperCRCs.get(job);
    if (crc !== undefined) helperCRCs.set(job, crc32Update(crcKernel, crc, new Uint8Array(m.buf, 0, m.n)));
    self.postMessage({ job, buf: m.buf }, [m.buf]);
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
// dispatch hands a message to Go, or to crcMessage in the helper.
const dispatch = (m) => (self.aerodiskRole === "helper" && m && m.job ? crcMessage(m) : self.aerodiskHandle(m));

const go = new Go();
let wasmModule = null; // compiled once, shared with the helper worker
// Go exiting (a fatal error) ends every channel: a waiting emulator
// throws the stopped record instead of waiting for ever.
const goExit = go.exit;
go.exit = (code) => { chStopAll(); goExit.call(go, code); };

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
