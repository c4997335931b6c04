// Runs web/crc32.wasm in Node for crc32wasm's tests.
//   node run.js check <crc32.wasm> <data file> <len,len,...>
//     prints one CRC per length: the CRC of the first len bytes, computed in
//     pieces of varied sizes (continuation across chunks, like the helper).
//   node run.js speed <crc32.wasm> <MiB>
//     prints the kernel's GB/s on random data, with and without the copy
//     into its memory the helper does.
"use strict";
const fs = require("fs");
const [mode, wasmPath, arg1, arg2] = process.argv.slice(2);
const { exports: k } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)));
const base = k.data.value;

// ensure grows the kernel's memory to hold n bytes at base.
function ensure(n) {
  const need = base + n - k.mem.buffer.byteLength;
  if (need > 0) k.mem.grow(Math.ceil(need / 65536));
}
// crcOf copies p into the kernel's memory and continues crc over it.
function crcOf(crc, p) {
  ensure(p.length);
  new Uint8Array(k.mem.buffer, base, p.length).set(p);
  return k.update(crc, base, p.length) >>> 0;
}

if (mode === "check") {
  const data = fs.readFileSync(arg1);
  const out = [];
  for (const len of arg2.split(",").map(Number)) {
    let crc = 0;
    // Uneven piece sizes so pieces split 16-byte blocks anywhere.
    for (let off = 0, i = 0; off < len; i++) {
      const n = Math.min(len - off, [len, 1, 17, 4096 + 5, 3, 65536 + 1][i % 6] || 1);
      crc = crcOf(crc, data.subarray(off, off + n));
      off += n;
    }
    // And in one piece: both must agree.
    const whole = crcOf(0, data.subarray(0, len));
    if (whole !== crc) throw new Error(`len ${len}: pieces ${crc} vs whole ${whole}`);
    out.push(crc);
  }
  console.log(out.join("\n"));
} else if (mode === "speed") {
  // Best of 40 batches of n bytes, 1 MiB at a time as the helper does:
  // the kernel alone on data in its memory, and with the copy in from a
  // separate buffer (the helper's Uint8Array.set of each transferred chunk).
  const n = Number(arg1) << 20;
  const src = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) require("crypto").randomFillSync(src, i, Math.min(65536, n - i));
  const piece = 1 << 20;
  ensure(piece);
  const best = (fn) => {
    let ms = Infinity;
    for (let r = 0; r < 40; r++) {
      const t0 = performance.now();
      fn();
      ms = Math.min(ms, performance.now() - t0);
    }
    return (n / ms / 1e6).toFixed(2) + " GB/s";
  };
  new Uint8Array(k.mem.buffer, base, piece).set(src.subarray(0, piece));
  const kernel = best(() => { for (let off = 0; off < n; off += piece) k.update(0, base, piece); });
  const copied = best(() => { let c = 0; for (let off = 0; off < n; off += piece) c = crcOf(c, src.subarray(off, off + piece)); });
  console.log(`kernel: ${kernel}; with the copy in: ${copied} (best of 40)`);
}
