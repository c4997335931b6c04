// Plain-JS baselines for `make bench` (cmd/bench-browser), measured in the
// same browser as aerodisk's worker. Deliberately the simplest fast code a
// page would write: no wasm, no checksum.
//
//   {op: "copy", file, name}         file.stream() → OPFS sync access handle bench/<name>
//   {op: "copybyob", file, name}     the same through a BYOB reader into one reused 4 MiB
//                                    buffer (the reading aerodisk's import does; a reference)
//   {op: "read", name, chunkBytes}   sync-handle reads of bench/<name> into one buffer
//   {op: "remove", name}
//   {op: "idbcopy", file, db, chunkBytes, perTxn}
//                                    file.stream() → chunkBytes records {id, index, data}
//                                    put perTxn to a relaxed readwrite transaction of the
//                                    chunks store of IndexedDB <db>, awaiting each commit
//   {op: "idbclear", db}             empties that chunks store
//   {op: "idbdelete", db}            deletes the database
// Replies {ms, bytes} or {error: {name, message}}.
"use strict";

async function benchDir() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle("bench", { create: true });
}

// idbOpen opens (creating) a database with aerodisk's schema.
function idbOpen(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore("disks", { keyPath: "id" });
      db.createObjectStore("mounts", { keyPath: "key" });
      db.createObjectStore("chunks", { keyPath: ["id", "index"] }).createIndex("by_id", "id");
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

const txDone = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onerror = tx.onabort = () => reject(tx.error || new DOMException("transaction aborted", "AbortError"));
  });

const idbs = new Map(); // open databases by name

self.onmessage = async (e) => {
  const { op, file, name, db: dbName, chunkBytes = 4 << 20, perTxn = 4, inflight = 1 } = e.data;
  try {
    if (op === "idbcopy" || op === "idbclear") {
      if (!idbs.has(dbName)) idbs.set(dbName, await idbOpen(dbName));
      const db = idbs.get(dbName);
      if (op === "idbclear") {
        const tx = db.transaction("chunks", "readwrite");
        tx.objectStore("chunks").clear();
        await txDone(tx);
        self.postMessage({ ms: 0, bytes: 0 });
        return;
      }
      const t0 = performance.now();
      const id = "baseline";
      const reader = file.stream().getReader();
      let chunk = new Uint8Array(Math.min(chunkBytes, file.size));
      let fill = 0, index = 0, bytes = 0, batch = [];
      const committing = []; // inflight > 1 (an experiment): commits not awaited yet
      const putBatch = async () => {
        const tx = db.transaction("chunks", "readwrite", { durability: "relaxed" });
        const st = tx.objectStore("chunks");
        for (const r of batch) st.put(r);
        batch = [];
        committing.push(txDone(tx));
        while (committing.length >= inflight) await committing.shift();
      };
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (let at = 0; at < value.length; ) {
          const n = Math.min(value.length - at, chunk.length - fill);
          chunk.set(value.subarray(at, at + n), fill);
          fill += n;
          at += n;
          bytes += n;
          if (fill === chunk.length) {
            batch.push({ id, index: index++, data: chunk });
            if (batch.length === perTxn) await putBatch();
            chunk = new Uint8Array(Math.min(chunkBytes, file.size - bytes));
            fill = 0;
          }
        }
      }
      if (batch.length) await putBatch();
      await Promise.all(committing);
      self.postMessage({ ms: performance.now() - t0, bytes });
      return;
    }
    if (op === "idbdelete") {
      if (idbs.has(dbName)) idbs.get(dbName).close();
      idbs.delete(dbName);
      await new Promise((resolve, reject) => {
        const req = indexedDB.deleteDatabase(dbName);
        req.onsuccess = resolve;
        req.onerror = () => reject(req.error);
      });
      self.postMessage({ ms: 0, bytes: 0 });
      return;
    }
    const dir = await benchDir();
    if (op === "copy" || op === "copybyob") {
      const h = await (await dir.getFileHandle(name, { create: true })).createSyncAccessHandle();
      const t0 = performance.now();
      let at = 0;
      try {
        h.truncate(0);
        if (op === "copybyob") {
          const stream = file.stream(); // held: see openStream in disk_worker.js
          const reader = stream.getReader({ mode: "byob" });
          let buf = new ArrayBuffer(4 << 20);
          for (;;) {
            const { done, value } = await reader.read(new Uint8Array(buf));
            if (done) break;
            at += h.write(value, { at });
            buf = value.buffer;
          }
        } else {
          const reader = file.stream().getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            at += h.write(value, { at });
          }
        }
        h.flush();
      } finally {
        h.close();
      }
      self.postMessage({ ms: performance.now() - t0, bytes: at });
    } else if (op === "read") {
      const h = await (await dir.getFileHandle(name)).createSyncAccessHandle();
      const t0 = performance.now();
      let at = 0;
      try {
        const buf = new Uint8Array(chunkBytes);
        for (;;) {
          const n = h.read(buf, { at });
          if (n <= 0) break;
          at += n;
        }
      } finally {
        h.close();
      }
      self.postMessage({ ms: performance.now() - t0, bytes: at });
    } else if (op === "remove") {
      await dir.removeEntry(name).catch(() => {});
      self.postMessage({ ms: 0, bytes: 0 });
    } else {
      throw new Error(`unknown op ${op}`);
    }
  } catch (err) {
    self.postMessage({ error: { name: err.name, message: String(err.message || err) } });
  }
};
