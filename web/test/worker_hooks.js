// The test build's worker hooks (wasm/testhooks.go loads this script into
// the worker with importScripts; a production worker never has them). They
// extend self.aerodiskIO with what only tests need, reaching the worker
// script's own top-level bindings (memory, helperInstance), which classic
// scripts share.
"use strict";
(() => {
  const io = self.aerodiskIO;
  const counts = { byob: 0, plain: 0 }; // streams opened each way
  const openStream = io.openStream;
  Object.assign(io, {
    // As in browsers without OPFS sync access handles.
    hideSyncAccessHandles: () => { delete FileSystemFileHandle.prototype.createSyncAccessHandle; },
    // As in browsers whose File streams are not byte streams.
    hideByteStreams: () => {
      const getReader = ReadableStream.prototype.getReader;
      ReadableStream.prototype.getReader = function (options) {
        if (options && options.mode === "byob") throw new TypeError("Cannot use a BYOB reader with a non-byte stream");
        return getReader.call(this, options);
      };
    },
    openStream: (file) => {
      const s = openStream(file);
      if (s && !s.e) counts[s.byob ? "byob" : "plain"]++;
      return s;
    },
    streamCounts: () => ({ ...counts }),
    // A full GC every 2 ms (chromium with --js-flags=--expose-gc).
    collectGarbageOften: () => {
      if (typeof self.gc !== "function") {
        return { e: { name: "NotSupportedError", message: "gc() is not exposed: start chromium with --js-flags=--expose-gc" } };
      }
      setInterval(() => self.gc(), 2);
    },
    memoryBytes: () => (memory ? memory.buffer.byteLength : 0),
    // The helper worker dies as a crash would kill it (an uncaught error).
    crashHelper: () => { if (helperInstance) helperInstance.postMessage({ crash: true }); },
  });
  if (self.aerodiskRole === "helper") {
    // The helper's message handler is set when Go is ready: put the crash
    // request in front of it.
    const ready = io.ready;
    io.ready = (...args) => {
      const r = ready(...args);
      const handle = self.onmessage;
      self.onmessage = (e) => {
        if (e.data && e.data.crash) setTimeout(() => { throw new Error("the helper crashed on request (a test)"); });
        else handle(e);
      };
      return r;
    };
  }
})();
