// Runs web/crc32.wasm in Node for crc32wasm's tests.
//   node run.js check <crc32.wasm> <data file> <len,len,...>
//     prints one CRC per length: the CRC of the first len bytes, computed in
//     pieces of varied sizes (continuation across chunks, like the helper).
//   node run.js speed <crc32.wasm> <MiB>
//     prints GB/s on random data: update (slicing-by-16) and update16 (SIMD)
//     alone on data in the kernel's memory, and crc32Update with its copies.
// Pieces go through web/crc32_kernel.js's crc32Update, the helper's own code.
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");
const [mode, wasmPath, arg1, arg2] = process.argv.slice(2);
const { exports: k } = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)));
const base = k.data.value;
vm.runInThisContext(fs.readFileSync(path.join(__dirname, "../../../web/crc32_kernel.js"), "utf8"));

// ensure grows the kernel's memory to hold n bytes at base.
function ensure(n) {
  const need = base + n - k.mem.buffer.byteLength;
  if (need > 0) k.mem.grow(Math.ceil(need / 65536));
}
ensure(crc32KernelBytes(k));
// crcOf continues crc over p.
const crcOf = (crc, p) => crc32Update(k, crc, p);

if (mode === "check") {
  const data = fs.readFileSync(arg1);
  const out = [];
  for (const len of arg2.split(",").map(Number)) {
    let crc = 0;
    // Uneven piece sizes so pieces split 16-byte blocks anywhere.
    for (let off = 0, i = 0; off < len; i++) {
      const n = Math.min(len - off, [len, 1, 17, 4096 + 5, 3, 65536 + 1, (1 << 20) + 9][i % 7] || 1);
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
  const block = k.lanes.value * k.segLen.value;
  ensure(Math.max(block, crc32KernelBytes(k)));
  const best = (fn) => {
    let ms = Infinity;
    for (let r = 0; r < 40; r++) {
      const t0 = performance.now();
      fn();
      ms = Math.min(ms, performance.now() - t0);
    }
    return (n / ms / 1e6).toFixed(2) + " GB/s";
  };
  new Uint8Array(k.mem.buffer, base, block).set(src.subarray(0, block));
  const slicing = best(() => { for (let off = 0; off < n; off += block) k.update(0, base, block); });
  const simd = best(() => { for (let off = 0; off < n; off += block) k.update16(0, base); });
  const copied = best(() => crcOf(0, src));
  console.log(`update: ${slicing}; update16: ${simd}; crc32Update with its copies: ${copied} (best of 40)`);
}
