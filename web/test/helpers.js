// Helpers for the browser tests and benchmarks (internal/browsertest,
// cmd/bench-browser). Plain JS with no dependency on the code under test:
// its own CRC32 (slicing-by-8), stream readers, OPFS inspection.

const T = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n] >>> 8) ^ t[t[(k - 1) * 256 + n] & 0xff];
  }
  return t;
})();

// crc32Update extends a raw (unconditioned) CRC register over bytes.
function crc32Update(c, b) {
  let i = 0;
  const n = b.length;
  for (; i + 8 <= n; i += 8) {
    const a = (c ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24))) >>> 0;
    c = T[7 * 256 + (a & 0xff)] ^ T[6 * 256 + ((a >>> 8) & 0xff)] ^ T[5 * 256 + ((a >>> 16) & 0xff)] ^ T[4 * 256 + (a >>> 24)] ^
      T[3 * 256 + b[i + 4]] ^ T[2 * 256 + b[i + 5]] ^ T[256 + b[i + 6]] ^ T[b[i + 7]];
  }
  for (; i < n; i++) c = T[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

export function hex(v) { return (v >>> 0).toString(16).padStart(8, "0"); }

// crc32 of a Uint8Array, as 8 lowercase hex digits.
export function crc32(bytes) { return hex(~crc32Update(0xffffffff, bytes)); }

// crc32Stream reads a ReadableStream<Uint8Array> to the end:
// { crc32: hex, bytes: total length, chunks }.
export async function crc32Stream(stream) {
  let c = 0xffffffff, bytes = 0, chunks = 0;
  const r = stream.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) break;
    c = crc32Update(c, value);
    bytes += value.length;
    chunks++;
  }
  return { crc32: hex(~c), bytes, chunks };
}

// streamBytes reads a (small) stream into one Uint8Array.
export async function streamBytes(stream) {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// gunzip returns the decompressed stream (DecompressionStream, the browser's own).
export function gunzip(stream) { return stream.pipeThrough(new DecompressionStream("gzip")); }

// fixture fetches /__fixtures__/<path> into a File named after it (or name).
export async function fixture(path, name) {
  const r = await fetch("/__fixtures__/" + path);
  if (!r.ok) throw new Error(`fixture ${path}: HTTP ${r.status}`);
  const blob = await r.blob();
  return new File([blob], name ?? path.split("/").pop());
}

// inputFile returns the File that the harness put in <input type=file>.
export function inputFile(selector = "#file") {
  const f = document.querySelector(selector).files[0];
  if (!f) throw new Error(`no file in ${selector}`);
  return f;
}

// opfsDir walks "a/b" from the OPFS root (null when absent and !create).
export async function opfsDir(path, create = false) {
  let d = await navigator.storage.getDirectory();
  for (const part of path.split("/").filter(Boolean)) {
    try {
      d = await d.getDirectoryHandle(part, { create });
    } catch (e) {
      if (e.name === "NotFoundError") return null;
      throw e;
    }
  }
  return d;
}

// opfsList lists a directory's entries: [{ name, kind, size }] sorted by name.
export async function opfsList(path = "aero/disks") {
  const d = await opfsDir(path);
  if (!d) return [];
  const out = [];
  for await (const [name, h] of d.entries()) {
    out.push({ name, kind: h.kind, size: h.kind === "file" ? (await h.getFile()).size : 0 });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// opfsWrite writes bytes (Uint8Array or string) to path/name, making directories.
export async function opfsWrite(path, name, bytes) {
  const d = await opfsDir(path, true);
  const f = await d.getFileHandle(name, { create: true });
  const w = await f.createWritable();
  await w.write(bytes);
  await w.close();
}

// opfsRead reads path/name as text (null when absent).
export async function opfsRead(path, name) {
  const d = await opfsDir(path);
  if (!d) return null;
  try {
    return await (await d.getFileHandle(name)).getFile().then((f) => f.text());
  } catch (e) {
    if (e.name === "NotFoundError") return null;
    throw e;
  }
}

// backend is the storage backend this page's tests run on: the harness
// page's ?backend= (opfs by default).
export const backend = new URLSearchParams(location.search).get("backend") || "opfs";

// open opens the DiskManager into globalThis.dm and returns it, with the
// test build's debug calls (wasm/testhooks.go) as methods.
export async function open(opts = { backend }) {
  const { DiskManager } = await import("/web/disk_manager.js");
  globalThis.dm = withTestHooks(await DiskManager.open(opts));
  return globalThis.dm;
}

// withTestHooks adds the test build's debug operations to a DiskManager:
// _debugStats() (wasm memory, stream readers, the worker's start-up time)
// and _debugCrashHelper() (the helper worker dies as a crash would kill it).
export function withTestHooks(dm) {
  dm._debugStats = async () => ({ ...(await dm._call("debugStats")), workerReadyMs: dm._readyMs });
  dm._debugCrashHelper = () => dm._call("debugCrashHelper");
  return dm;
}

// The IndexedDB side, read directly (not through the code under test).
const idbStores = ["disks", "mounts", "chunks"];

// idbOpen opens aero-disk-manager as it is, creating the schema if the
// database does not exist yet (to plant records before the manager opens).
export function idbOpen() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open("aero-disk-manager");
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains("disks")) db.createObjectStore("disks", { keyPath: "id" });
      if (!db.objectStoreNames.contains("mounts")) db.createObjectStore("mounts", { keyPath: "key" });
      if (!db.objectStoreNames.contains("chunks")) db.createObjectStore("chunks", { keyPath: ["id", "index"] }).createIndex("by_id", "id");
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function idbAll(db, store, method = "getAll") {
  return new Promise((resolve, reject) => {
    const req = db.transaction(store).objectStore(store)[method]();
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

// idbChunks lists every chunk: [{ id, index, bytes }] in key order.
export async function idbChunks() {
  const db = await idbOpen();
  try {
    if (!idbStores.every((s) => db.objectStoreNames.contains(s))) return [];
    const out = [];
    await new Promise((resolve, reject) => {
      const req = db.transaction("chunks").objectStore("chunks").openCursor();
      req.onsuccess = () => {
        const c = req.result;
        if (!c) return resolve();
        const d = c.value.data;
        const u = new Uint8Array(d.buffer || d, d.byteOffset || 0, d.byteLength);
        out.push({ id: c.value.id, index: c.value.index, bytes: d.byteLength, isView: ArrayBuffer.isView(d),
          bufferBytes: d.buffer ? d.buffer.byteLength : d.byteLength, zero: u.every((x) => x === 0) });
        c.continue();
      };
      req.onerror = () => reject(req.error);
    });
    return out;
  } finally {
    db.close();
  }
}

// idbPutChunk stores one chunk record as a killed tab would have left it.
export async function idbPutChunk(id, index, bytes) {
  const db = await idbOpen();
  try {
    await new Promise((resolve, reject) => {
      const tx = db.transaction("chunks", "readwrite");
      tx.objectStore("chunks").put({ id, index, data: bytes });
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// storedFiles lists what the backend stores per disk: [{ name, size }] —
// OPFS files in aero/disks (metadata excluded), or IndexedDB chunk ids
// with the bytes their chunks hold.
export async function storedFiles() {
  if (backend !== "idb") {
    return (await opfsList("aero/disks")).filter((e) => e.kind === "file" && !e.name.startsWith("metadata.json")).map(({ name, size }) => ({ name, size }));
  }
  const by = new Map();
  for (const c of await idbChunks()) by.set(c.id, (by.get(c.id) || 0) + c.bytes);
  return [...by].sort().map(([name, size]) => ({ name, size }));
}

// catalogText is the stored catalog as text: metadata.json, or the disks and
// mounts stores' records as JSON.
export async function catalogText() {
  if (backend !== "idb") return opfsRead("aero/disks", "metadata.json");
  const db = await idbOpen();
  try {
    return JSON.stringify({ disks: await idbAll(db, "disks"), mounts: await idbAll(db, "mounts") });
  } finally {
    db.close();
  }
}

// storeTree lists everything stored: the OPFS tree, plus "idb:<id>/<index>"
// for each chunk.
export async function storeTree() {
  const out = await opfsTree();
  if (backend === "idb") for (const c of await idbChunks()) out.push(`idb:${c.id}/${c.index}`);
  return out;
}

// plantOrphan stores a disk's data with no catalog entry, as a tab killed
// mid-import leaves it.
export async function plantOrphan(id, ext, bytes) {
  if (backend !== "idb") return opfsWrite("aero/disks", `${id}.${ext}`, bytes);
  return idbPutChunk(id, 0, typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes);
}

// progress returns { onProgress, calls }: a recorder for onProgress.
export function progress() {
  const calls = [];
  return { calls, onProgress: (p) => calls.push({ ...p, t: performance.now() }) };
}

// errorOf runs fn and returns the rejection's { name, message } (or null).
export async function errorOf(fn) {
  try {
    await fn();
    return null;
  } catch (e) {
    return { name: String(e && e.name), message: String(e && e.message) };
  }
}

// base64 encodes bytes (for handing binary results back to the test).
export function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// opfsTree lists every file under the OPFS root: ["aero/disks/x.img", ...].
export async function opfsTree(dir = null, prefix = "") {
  dir ??= await navigator.storage.getDirectory();
  const out = [];
  for await (const [name, h] of dir.entries()) {
    if (h.kind === "directory") out.push(...(await opfsTree(h, prefix + name + "/")));
    else out.push(prefix + name);
  }
  return out.sort();
}

// sleep resolves after ms milliseconds.
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// baseline runs one request on the plain-JS benchmark worker
// (web/bench/baseline_worker.js) and resolves to its {ms, bytes}.
export function baseline(msg) {
  const w = (globalThis.__baselineWorker ??= new Worker("/web/bench/baseline_worker.js"));
  return new Promise((resolve, reject) => {
    w.onmessage = (e) => {
      if (e.data.error) {
        const err = new Error(e.data.error.message);
        err.name = e.data.error.name;
        reject(err);
      } else resolve(e.data);
    };
    w.postMessage(msg);
  });
}

// drain reads a stream to the end without looking at the bytes: { bytes, ms }.
export async function drain(stream) {
  const t0 = performance.now();
  const r = stream.getReader();
  let bytes = 0;
  for (;;) {
    const { done, value } = await r.read();
    if (done) break;
    bytes += value.length;
  }
  return { bytes, ms: performance.now() - t0 };
}

// --- Durability tests: this manager's own marks, and tampering. ---

// The suffix of a disk file still being written (internal/opfs).
export const PENDING_SUFFIX = ".aerodisk-partial";

// idbRequest settles with an IDBRequest's result.
function idbRequest(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

// journalOpen opens the aerodisk journal database (internal/idb).
function journalOpen() {
  const req = indexedDB.open("aerodisk", 1);
  req.onupgradeneeded = () => req.result.createObjectStore("pending", { keyPath: "id" });
  return idbRequest(req);
}

// idbWrite runs fn(store) in a readwrite transaction of aero-disk-manager.
async function idbWrite(storeName, fn) {
  const db = await idbOpen();
  try {
    await new Promise((resolve, reject) => {
      const tx = db.transaction(storeName, "readwrite");
      fn(tx.objectStore(storeName));
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// plantPending stores a disk file as a tab killed mid-import leaves it:
// pending (OPFS: <id>.<ext>.aerodisk-partial; IndexedDB: chunks and a
// journal entry) with no lease held.
export async function plantPending(id, ext, bytes) {
  if (backend !== "idb") return opfsWrite("aero/disks", `${id}.${ext}${PENDING_SUFFIX}`, bytes);
  await idbPutChunk(id, 0, bytes);
  const db = await journalOpen();
  try {
    const tx = db.transaction("pending", "readwrite");
    tx.objectStore("pending").put({ id, fileName: `${id}.${ext}`, startedAtMs: Date.now() });
    await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
  } finally {
    db.close();
  }
}

// pendingLeft lists what is pending: OPFS partial files, or journal ids.
export async function pendingLeft() {
  if (backend !== "idb") return (await opfsList("aero/disks")).map((e) => e.name).filter((n) => n.endsWith(PENDING_SUFFIX));
  const db = await journalOpen();
  try {
    return (await idbRequest(db.transaction("pending").objectStore("pending").getAllKeys())).map(String);
  } finally {
    db.close();
  }
}

// setCatalogFile writes (text) or removes (null) aero/disks/<name>.
export async function setCatalogFile(name, text) {
  if (text !== null) return opfsWrite("aero/disks", name, text);
  const d = await opfsDir("aero/disks");
  try { await d.removeEntry(name); } catch (e) { if (e.name !== "NotFoundError") throw e; }
}

// idbRecords returns the disk records as stored.
export async function idbRecords() {
  const db = await idbOpen();
  try { return await idbAll(db, "disks"); } finally { db.close(); }
}

// idbSetRecords replaces every disk record (null deletes them all).
export function idbSetRecords(records) {
  return idbWrite("disks", (st) => { st.clear(); for (const r of records || []) st.put(r); });
}

// idbSetMounts stores the mounts record's value as given.
export function idbSetMounts(value) {
  return idbWrite("mounts", (st) => st.put({ key: "mounts", value }));
}

// resetStorage removes everything the managers stored (no manager open).
export async function resetStorage() {
  const root = await navigator.storage.getDirectory();
  try { await root.removeEntry("aero", { recursive: true }); } catch (e) { if (e.name !== "NotFoundError") throw e; }
  for (const name of ["aero-disk-manager", "aerodisk"]) {
    await new Promise((resolve, reject) => {
      const req = indexedDB.deleteDatabase(name);
      req.onsuccess = resolve;
      req.onerror = () => reject(req.error);
      // onblocked: a closed manager's connection is still closing; the
      // deletion goes on once it has.
    });
  }
}

// crc32Of exports a disk and returns its CRC32 (or the error's name).
export async function crc32Of(dm, id) {
  try {
    return (await crc32Stream(await dm.exportDisk(id))).crc32;
  } catch (e) {
    return e.name;
  }
}

// randomBytes returns n bytes from a seeded generator (xorshift32).
export function randomBytes(n, seed) {
  const b = new Uint8Array(n);
  const w = new Uint32Array(b.buffer, 0, n >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    w[i] = x;
  }
  return b;
}

// --- Aero's side of the origin, written from Aero's source (web/src/storage). ---

// aeroBlocksCRC is Aero's converter's checksum (import_convert.ts,
// convertRawToSparse): for each non-zero block of blockSize bytes (the last
// zero-padded), in order, CRC32 over u64le(block index) ‖ block.
export function aeroBlocksCRC(bytes, blockSize) {
  let c = 0xffffffff;
  const buf = new Uint8Array(blockSize);
  const idx = new Uint8Array(8);
  for (let i = 0; i * blockSize < bytes.length; i++) {
    buf.fill(0);
    buf.set(bytes.subarray(i * blockSize, Math.min(bytes.length, (i + 1) * blockSize)));
    if (buf.every((x) => x === 0)) continue;
    new DataView(idx.buffer).setBigUint64(0, BigInt(i), true);
    c = crc32Update(c, idx);
    c = crc32Update(c, buf);
  }
  return hex(~c);
}

// opfsReadBytes reads path/name as bytes.
export async function opfsReadBytes(path, name) {
  const d = await opfsDir(path);
  return new Uint8Array(await (await (await d.getFileHandle(name)).getFile()).arrayBuffer());
}

// aeroOpenDB opens aero-disk-manager as Aero's openDiskManagerDb does (at
// version 3; metadata.ts) and reports whether it had to upgrade, and the
// stores and indexes it finds. It closes the connection after.
export function aeroOpenDB() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open("aero-disk-manager", 3);
    let upgraded = false;
    req.onupgradeneeded = (e) => { upgraded = { oldVersion: e.oldVersion }; req.transaction.abort(); };
    req.onblocked = () => reject(new Error("Aero's open is blocked by another connection"));
    req.onsuccess = () => {
      const db = req.result;
      const stores = {};
      const tx = db.transaction([...db.objectStoreNames]);
      for (const name of db.objectStoreNames) {
        const st = tx.objectStore(name);
        stores[name] = { keyPath: st.keyPath, indexes: [...st.indexNames].map((n) => ({ name: n, keyPath: st.index(n).keyPath })) };
      }
      const version = db.version;
      db.close();
      resolve({ version, upgraded, stores });
    };
    req.onerror = () => upgraded ? resolve({ upgraded }) : reject(req.error);
  });
}

// idbPutIn / idbAllIn write and read any store of aero-disk-manager.
export function idbPutIn(store, rec) { return idbWrite(store, (st) => st.put(rec)); }
export async function idbAllIn(store) {
  const db = await idbOpen();
  try { return await idbAll(db, store); } finally { db.close(); }
}
