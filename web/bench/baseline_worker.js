// Plain-JS baselines for `make bench` (cmd/bench-browser), measured in the
// same browser as aerodisk's worker. Deliberately the simplest fast code a
// page would write: no wasm, no checksum.
//
//   {op: "copy", file, name}         file.stream() → OPFS sync access handle bench/<name>
//   {op: "read", name, chunkBytes}   sync-handle reads of bench/<name> into one buffer
//   {op: "remove", name}
// Replies {ms, bytes} or {error: {name, message}}.
"use strict";

async function benchDir() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle("bench", { create: true });
}

self.onmessage = async (e) => {
  const { op, file, name, chunkBytes = 4 << 20 } = e.data;
  try {
    const dir = await benchDir();
    if (op === "copy") {
      const h = await (await dir.getFileHandle(name, { create: true })).createSyncAccessHandle();
      const t0 = performance.now();
      let at = 0;
      try {
        h.truncate(0);
        const reader = file.stream().getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          at += h.write(value, { at });
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
