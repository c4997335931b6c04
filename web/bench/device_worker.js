// The plain-JS baseline of `make bench` line 9 (cmd/bench-browser/devices.go):
// what a page would write without aerodisk to serve block requests from a
// worker — its own OPFS sync access handle on a file of the same size,
// answering the page's requests over postMessage, with no wasm, no
// checksum, no catalog.
//
//   {id, op: "open", name, size}          create bench/<name> of size bytes, hold a sync handle
//   {id, op: "read", offset, length}      answered {id, buf} (a new ArrayBuffer, transferred)
//   {id, op: "write", offset, buf}        buf transferred in; answered {id}
//   {id, op: "flush"} / {id, op: "close"}
//   {id, op: "bare", total, chunk, write} the same reads (or writes) looped inside the worker
//                                         with one buffer: the ceiling; answered {id, ms}
"use strict";

let h = null;

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
