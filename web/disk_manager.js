// aerodisk DiskManager: the main-thread API. It starts the disk worker
// (Go compiled to WebAssembly) and turns calls into worker requests; all
// disk logic runs in the worker. See disk_manager.d.ts for the types.

function makeError(e) {
  const err = new Error(e && e.message ? e.message : "The disk worker failed.");
  err.name = e && e.name ? e.name : "Error";
  return err;
}

function abortError() {
  const err = new Error("The operation was cancelled.");
  err.name = "AbortError";
  return err;
}

function invalid(message) {
  const err = new Error(message);
  err.name = "InvalidArgumentError";
  return err;
}

export class DiskManager {
  /** @private */
  constructor(worker, readyMs) {
    this._worker = worker;
    this._nextId = 1;
    this._calls = new Map(); // id → {resolve, reject, onProgress, onChunk}
    this._readyMs = readyMs;
    this._devices = new Set(); // open BlockDevices, closed with the manager
    this.backend = null;
    worker.onmessage = (e) => this._onMessage(e.data);
    worker.onerror = (e) => this._failAll({ name: "Error", message: e.message || "The disk worker crashed." });
  }

  /**
   * Starts the worker and opens the storage backend.
   * @param {{backend?: "auto"|"opfs"|"idb"}} [options]
   */
  static async open(options = {}) {
    const started = performance.now();
    const worker = new Worker(new URL("./disk_worker.js", import.meta.url), { name: "aerodisk" });
    await new Promise((resolve, reject) => {
      worker.onmessage = (e) => {
        if (e.data && e.data.ready) resolve();
        else if (e.data && e.data.fatal) reject(makeError(e.data.fatal));
      };
      worker.onerror = (e) => reject(makeError({ name: "Error", message: e.message || "The disk worker failed to start." }));
    });
    const dm = new DiskManager(worker, performance.now() - started);
    try {
      // The options go to the worker as they are: it reads backend (and a
      // test build of the worker its test-only options; wasm/testhooks.go).
      const r = await dm._call("open", { ...options, backend: options.backend || "auto" });
      dm.backend = r.backend;
      dm._tempExports = r.tempExports;
      dm.openReport = r.report || {};
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return dm;
  }

  /** @private */
  _onMessage(msg) {
    const call = this._calls.get(msg.id);
    if (!call) return;
    if (msg.progress) {
      if (call.onProgress) {
        try { call.onProgress(msg.progress); } catch (e) { console.error(e); }
      }
      return;
    }
    if (msg.chunk) {
      if (call.onChunk) call.onChunk(new Uint8Array(msg.chunk));
      return;
    }
    this._calls.delete(msg.id);
    if (call.cleanup) call.cleanup();
    if (msg.ok && msg.bytes) call.resolve(msg.bytes); // a device read: an ArrayBuffer transferred here
    else if (msg.ok) call.resolve(msg.json === undefined || msg.json === "" ? undefined : JSON.parse(msg.json));
    else call.reject(makeError(msg.error));
  }

  /** @private */
  _failAll(error) {
    for (const [id, call] of this._calls) {
      this._calls.delete(id);
      if (call.cleanup) call.cleanup();
      call.reject(makeError(error));
    }
  }

  /** @private */
  _call(op, args = {}, { signal, onProgress, onChunk, transfer } = {}) {
    if (!this._worker) return Promise.reject(invalid("The disk manager is closed."));
    if (signal && signal.aborted) return Promise.reject(abortError());
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const call = { resolve, reject, onProgress: throttle(onProgress), onChunk };
      if (signal) {
        const onAbort = () => this._worker && this._worker.postMessage({ op: "abort", target: id });
        signal.addEventListener("abort", onAbort, { once: true });
        call.cleanup = () => signal.removeEventListener("abort", onAbort);
      }
      this._calls.set(id, call);
      try {
        this._worker.postMessage({ id, op, args }, transfer || []);
      } catch (e) {
        // A function or other uncloneable value among the arguments.
        this._calls.delete(id);
        if (call.cleanup) call.cleanup();
        reject(e && e.name === "DataCloneError" ? invalid("The arguments must be plain data (strings, numbers, a File).") : e);
      }
    });
  }

  /**
   * An import: the worker's answer, except that an import whose signal
   * fired before its promise settled never resolves. The worker commits an
   * import only if no abort has reached it; when the abort arrives just
   * after the commit, the disk is deleted again here and the promise
   * rejects with AbortError, so an aborted import never leaves a disk.
   * @private
   */
  async _import(args, { signal, onProgress }) {
    const disk = await this._call("importDisk", args, { signal, onProgress });
    if (signal && signal.aborted) {
      try {
        await this._call("deleteDisk", { id: disk.id });
      } catch (e) {
        if (e.name !== "NotFoundError") return disk; // kept: it could not be undone (another tab opened it)
      }
      throw abortError();
    }
    return disk;
  }

  /** @returns {Promise<DiskMeta[]>} newest lastUsedAtMs first */
  listDisks() { return this._call("listDisks"); }
  getDisk(id) { return this._call("getDisk", { id }); }

  createBlankDisk(options) {
    if (!isObject(options)) return Promise.reject(invalid("createBlankDisk needs { name, sizeBytes }."));
    const { name, sizeBytes, kind } = options;
    if (!Number.isSafeInteger(sizeBytes)) return Promise.reject(invalid("sizeBytes must be a whole number of bytes."));
    return this._call("createBlankDisk", { name, sizeBytes, kind });
  }

  /** Stores the file as it is. */
  importDisk(file, options = {}) {
    if (!(file instanceof Blob)) return Promise.reject(invalid("importDisk needs a File."));
    if (!isObject(options)) return Promise.reject(invalid("The import options must be an object."));
    const { name, kind, onProgress, signal } = options;
    return this._import({ file, name, kind, convert: false }, { signal, onProgress });
  }

  /** Converts the file into AEROSPAR (ISO images stay ISO). */
  importDiskConverted(file, options = {}) {
    if (!(file instanceof Blob)) return Promise.reject(invalid("importDiskConverted needs a File."));
    if (!isObject(options)) return Promise.reject(invalid("The import options must be an object."));
    const { name, kind, onProgress, signal } = options;
    return this._import({ file, name, kind, convert: true }, { signal, onProgress });
  }

  /**
   * The disk's logical content (or a gzip of it) as a stream. The worker
   * produces one chunk per chunk the stream's reader asks for, so memory
   * stays flat whatever the disk size.
   * @returns {Promise<ReadableStream<Uint8Array>>}
   */
  async exportDisk(id, { gzip = false, checkpointId, onProgress, signal } = {}) {
    return this._exportStream(id, { gzip, checkpointId, delta: false }, { onProgress, signal });
  }

  /**
   * The blocks a disk changed since its base, up to a checkpoint (or now),
   * as a self-contained delta file (docs/overlays.md, "Deltas").
   * @returns {Promise<ReadableStream<Uint8Array>>}
   */
  async exportDelta(id, { checkpointId, onProgress, signal } = {}) {
    return this._exportStream(id, { gzip: false, checkpointId, delta: true }, { onProgress, signal });
  }

  /** @private */
  async _exportStream(id, { gzip, checkpointId, delta }, { onProgress, signal }) {
    const what = { id, gzip, checkpointId: checkpointId || "", delta };
    await this._call("exportable", what); // reject NotFoundError (or a remote disk) before a stream exists
    let controller;
    let wanted = null; // resolves a pending pull when a chunk arrives
    let requestId;
    const done = this._call("exportDisk", what, {
      signal,
      onProgress,
      onChunk: (chunk) => {
        controller.enqueue(chunk);
        if (wanted) { const w = wanted; wanted = null; w(); }
      },
    });
    requestId = this._nextId - 1;
    const worker = this._worker;
    return new ReadableStream({
      start(c) {
        controller = c;
        done.then(() => { c.close(); if (wanted) wanted(); }, (e) => { c.error(e); if (wanted) wanted(); });
      },
      pull() {
        worker.postMessage({ op: "pull", target: requestId });
        return new Promise((resolve) => { wanted = resolve; });
      },
      cancel() {
        worker.postMessage({ op: "abort", target: requestId });
        done.catch(() => {});
      },
    }, { highWaterMark: 8 });
  }

  /**
   * Saves an export to a file the user chooses (showSaveFilePicker) or, where
   * that is missing, downloads it through a temporary OPFS file.
   */
  async exportDiskToFile(id, { gzip = false, checkpointId, delta = false, fileName, onProgress, signal } = {}) {
    const what = { id, gzip, checkpointId: checkpointId || "", delta: !!delta };
    const disk = await this._call("exportable", what);
    const name = fileName || (delta ? `${disk.name}.aerodelta` : `${disk.name}.img${gzip ? ".gz" : ""}`);
    const stream = () => this._exportStream(id, what, { onProgress, signal });
    if (typeof self.showSaveFilePicker === "function") {
      const handle = await self.showSaveFilePicker({ suggestedName: name });
      const writable = await handle.createWritable();
      const stream = await this._exportStream(id, what, { onProgress, signal });
      await stream.pipeTo(writable, { signal });
      return;
    }
    let file;
    if (this._tempExports) {
      const r = await this._call("exportToTemp", { ...what, fileName: name }, { signal, onProgress });
      // Each handle stays referenced until its promise settles (see hold in
      // disk_worker.js: Chromium can drop the promise of a collected handle).
      const root = await navigator.storage.getDirectory();
      const aero = await root.getDirectoryHandle("aero");
      const dir = await aero.getDirectoryHandle("exports");
      const fh = await dir.getFileHandle(r.tempName);
      file = await fh.getFile();
      void [root, aero, dir, fh].length;
    } else {
      // No OPFS sync access handles (the IndexedDB backend's browsers): the
      // export becomes a Blob, which browsers keep on disk when it is large.
      file = await new Response(await stream()).blob();
    }
    const url = URL.createObjectURL(file);
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.style.display = "none";
    document.body.appendChild(a);
    a.click();
    a.remove();
    // The download reads the file after this returns; the file and URL are
    // released when the manager closes or the next one opens.
    (this._tempUrls ||= []).push(url);
  }

  /**
   * Opens a disk for 512-byte sector I/O: a BlockDevice (docs/browser.md,
   * "Block devices"). Read-only unless writable is true; mode "direct"
   * (the default) writes raw and AEROSPAR disks in place.
   * @param {string} id
   * @param {{writable?: boolean, mode?: "direct"|"overlay"}} [options]
   */
  // ---------- overlays, checkpoints, deltas (docs/overlays.md) ----------

  /** A new disk whose unwritten blocks read through to baseId; its writes stay apart. */
  createOverlay(baseId, { name } = {}) { return this._call("createOverlay", { baseId, name }); }

  /** Freezes the disk as it is now, in O(1), also while a device writes it. */
  checkpoint(id, { name } = {}) { return this._call("checkpoint", { id, name }); }

  listCheckpoints(id) { return this._call("listCheckpoints", { id }); }

  /** The disk reads as at checkpointId again; every checkpoint stays. */
  restoreCheckpoint(id, checkpointId) { return this._call("restoreCheckpoint", { id, checkpointId }); }

  /** Forgets a checkpoint; its layer is merged into the one above, in the background. */
  deleteCheckpoint(id, checkpointId, { onProgress, signal } = {}) {
    return this._call("deleteCheckpoint", { id, checkpointId }, { signal, onProgress });
  }

  /** Drops every write kept apart from the disk's base, in O(1). */
  revertDisk(id) { return this._call("revertDisk", { id }); }

  /** Writes an overlay's changes into its raw or AEROSPAR base. */
  commitOverlay(id, { onProgress, signal } = {}) { return this._call("commitOverlay", { id }, { signal, onProgress }); }

  /** A standalone copy of the disk as it reads now. */
  /**
   * Gives back the space the disk's files hold for nothing, in ~5 ms steps
   * (docs/overlays.md, "Compaction"): an AEROSPAR disk's freed blocks, a
   * layer's unnamed clusters. What it reads never changes.
   */
  compactDisk(id, { onProgress, signal } = {}) { return this._call("compactDisk", { id }, { signal, onProgress }); }
  flattenDisk(id, { name, onProgress, signal } = {}) { return this._call("flattenDisk", { id, name }, { signal, onProgress }); }

  /** Stores a delta (exportDelta) as a new overlay of baseId, refused for another base. */
  importDelta(file, options = {}) {
    if (!(file instanceof Blob)) return Promise.reject(invalid("importDelta needs a File."));
    if (!isObject(options)) return Promise.reject(invalid("The importDelta options must be an object."));
    const { baseId, name, onProgress, signal } = options;
    return this._call("importDelta", { file, baseId, name }, { signal, onProgress });
  }

  async openDisk(id, options = {}) {
    if (!isObject(options)) throw invalid("The openDisk options must be an object.");
    const { writable = false, mode } = options;
    if (typeof writable !== "boolean") throw invalid("writable must be true or false.");
    const info = await this._call("openDisk", { id, writable, mode });
    const dev = new BlockDevice(this, info);
    if (!this._worker) {
      // The manager closed while the disk opened: close it too.
      dev._closed = true;
    } else {
      this._devices.add(dev);
    }
    return dev;
  }

  verifyDisk(id, { onProgress, signal } = {}) { return this._call("verifyDisk", { id }, { signal, onProgress }); }
  renameDisk(id, name) { return this._call("renameDisk", { id, name }); }
  deleteDisk(id) { return this._call("deleteDisk", { id }); }
  getMounts() { return this._call("getMounts"); }

  /**
   * Changes the mounts: a drive left out keeps its disk, null unmounts it.
   * @param {Partial<Mounts>} mounts
   */
  setMounts(mounts) {
    if (!isObject(mounts)) return Promise.reject(invalid("setMounts needs an object such as { hddId, cdId }."));
    const args = {};
    for (const key of ["hddId", "cdId"]) {
      if (!(key in mounts) || mounts[key] === undefined) continue;
      const v = mounts[key];
      if (v !== null && typeof v !== "string") return Promise.reject(invalid(`${key} must be a disk id or null.`));
      args[key] = v;
    }
    return this._call("setMounts", args);
  }

  /**
   * What importing file would make of it, read from its headers only:
   * { format, kind, sizeBytes, fileBytes, name, convertible, keepAsIs,
   * convert, backingFile?, warnings }. Rejects as importDisk would
   * (UnsupportedFormatError, CorruptImageError, NotFoundError for a missing
   * backing disk), storing nothing.
   */
  probeFile(file) {
    if (!(file instanceof Blob)) return Promise.reject(invalid("probeFile needs a File."));
    return this._call("probeFile", { file });
  }

  /** The engine's rules a page shows before it asks: sizes, floppy sizes, what each drive takes. */
  limits() { return this._call("limits"); }

  /**
   * Reads a size a person typed ("20 GB", "60G", "512 MiB"; docs/units.md):
   * { requestedBytes, bytes } (bytes rounded up to 512-byte sectors), or
   * rejects with InvalidArgumentError saying why.
   */
  parseSize(text) {
    if (typeof text !== "string") return Promise.reject(invalid("parseSize needs text."));
    return this._call("parseSize", { text });
  }

  /** What opening found and repaired (a recovered catalog, swept imports), and any recovery since. */
  recoveryReport() { return this._call("openReport"); }

  async storageInfo() {
    const { usage = 0, quota = 0 } = await navigator.storage.estimate();
    const persisted = navigator.storage.persisted ? await navigator.storage.persisted() : false;
    return { usage, quota, persisted };
  }

  async requestPersistence() {
    return navigator.storage.persist ? navigator.storage.persist() : false;
  }

  /**
   * Ends the worker. Pending calls reject with AbortError; open devices are
   * closed first (their writes flushed), and the promise resolves once the
   * worker is gone.
   */
  close() {
    for (const url of this._tempUrls || []) URL.revokeObjectURL(url);
    if (!this._worker) return this._closing || Promise.resolve();
    const worker = this._worker;
    this._failAll({ name: "AbortError", message: "The disk manager was closed." });
    const devices = [...this._devices];
    this._devices.clear();
    for (const d of devices) d._closed = true;
    // The worker closes the devices after the requests they already have,
    // so every write sent reaches storage before the worker ends.
    const closed = devices.length ? this._call("devCloseAll").catch(() => {}) : Promise.resolve();
    this._worker = null;
    if (!devices.length) {
      worker.terminate();
      return (this._closing = Promise.resolve());
    }
    return (this._closing = closed.then(() => worker.terminate()));
  }
}

/**
 * A disk open for block I/O (DiskManager.openDisk). Offsets and lengths are
 * multiples of sectorSize inside the disk (InvalidArgumentError otherwise,
 * from the worker). Requests run in the order they are made.
 */
class BlockDevice {
  /** @private */
  constructor(dm, info) {
    this._dm = dm;
    this._dev = info.dev;
    this._closed = false;
    this._spare = null; // the buffer readInto lends the worker, back with each answer
    this.sizeBytes = info.sizeBytes;
    this.sectorSize = info.sectorSize;
    this.readOnly = info.readOnly;
    this.diskId = info.diskId;
    this._channelBytes = info.channelBytes; // the SharedArrayBuffer channel() makes: the worker's size
  }

  /** @private */
  _op(op, args, transfer) {
    if (this._closed) return Promise.reject(invalid("The device is closed."));
    return this._dm._call(op, { dev: this._dev, ...args }, { transfer });
  }

  /** The bytes [offset, offset+length), in a Uint8Array of their own. */
  async read(offset, length) {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) throw invalid("offset and length must be whole numbers of bytes.");
    return new Uint8Array(await this._op("devRead", { offset, length }));
  }

  /**
   * Fills target with the bytes from offset on. The worker fills a buffer
   * this device lends it and sends back (transferred both ways, reused by
   * the next call), which is copied into target once.
   */
  async readInto(offset, target) {
    if (!Number.isSafeInteger(offset)) throw invalid("offset must be a whole number of bytes.");
    if (!(target instanceof Uint8Array)) throw invalid("readInto needs a Uint8Array to fill.");
    const length = target.byteLength;
    let buf = this._spare;
    this._spare = null;
    if (!buf || buf.byteLength < length) buf = new ArrayBuffer(length);
    const got = await this._op("devRead", { offset, length, buf }, [buf]);
    target.set(new Uint8Array(got, 0, length));
    this._spare = got;
  }

  /**
   * Writes bytes at offset. The bytes are copied before write() returns
   * (the copy is transferred to the worker), so the caller may reuse them
   * at once.
   */
  write(offset, bytes) {
    if (!Number.isSafeInteger(offset)) return Promise.reject(invalid("offset must be a whole number of bytes."));
    if (!(bytes instanceof Uint8Array)) return Promise.reject(invalid("write needs the bytes as a Uint8Array."));
    const copy = bytes.slice(); // exactly the view's bytes, in a buffer of their own
    return this._op("devWrite", { offset, bytes: copy.buffer }, [copy.buffer]).then(() => undefined);
  }

  /** Makes [offset, offset+length) read as zeros; AEROSPAR frees whole blocks. */
  discard(offset, length) {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) return Promise.reject(invalid("offset and length must be whole numbers of bytes."));
    return this._op("devDiscard", { offset, length }).then(() => undefined);
  }

  /** Every write before it survives a killed tab once this resolves. */
  flush() { return this._op("devFlush", {}).then(() => undefined); }

  /**
   * A synchronous channel for an emulator in a worker of its own
   * (docs/browser.md, "Synchronous channel"): { sab, port }, to post to
   * that worker with the port in the transfer list, where
   * `new BlockChannel(ch)` (block_channel.js) reads and writes with
   * Atomics.wait. The page must be cross-origin isolated (SharedArrayBuffer);
   * elsewhere the worker refuses, saying why. Closing the device ends it.
   */
  async channel() {
    const isolated = typeof SharedArrayBuffer === "function" && globalThis.crossOriginIsolated === true;
    // Not isolated: the worker is asked anyway, and refuses with its sentence.
    const sab = isolated ? new SharedArrayBuffer(this._channelBytes) : null;
    const { port1, port2 } = new MessageChannel();
    try {
      await this._op("devChannel", { sab, port: port1 }, [port1]);
    } catch (e) {
      port2.close();
      throw e;
    }
    return { sab, port: port2 };
  }

  /** Flushes and releases the disk; closing again does nothing. */
  close() {
    if (this._closed) return Promise.resolve();
    this._closed = true;
    this._dm._devices.delete(this);
    return this._dm._call("devClose", { dev: this._dev }).then(() => undefined);
  }
}

function isObject(v) { return v !== null && typeof v === "object"; }

// throttle passes progress on at most ~10 times a second (always the last).
function throttle(fn) {
  if (!fn) return null;
  let last = 0;
  return (p) => {
    const now = performance.now();
    if (now - last >= 100 || p.processedBytes >= p.totalBytes) {
      last = now;
      fn(p);
    }
  };
}
