// crc32Update(k, crc, data) continues a CRC32 (IEEE; the semantics of Go's
// crc32.Update) over the Uint8Array data with the kernel web/crc32.wasm,
// whose instance's exports are k (see internal/crc32wasm). Whole blocks of
// lanes × segLen bytes go through update16, the SIMD form that checksums 16
// segments at once: each segment is copied to its own place, segStride
// apart, in the kernel's memory. What is left goes through update,
// slicing-by-16. Shared by the helper worker (web/disk_worker.js) and the
// kernel's tests (internal/crc32wasm/testdata/run.js).
"use strict";

// crc32KernelBytes is how much memory from k.data the kernel needs.
function crc32KernelBytes(k) {
  return k.lanes.value * k.segStride.value;
}

function crc32Update(k, crc, data) {
  const base = k.data.value, len = k.segLen.value, stride = k.segStride.value, lanes = k.lanes.value;
  const block = lanes * len;
  const mem = new Uint8Array(k.mem.buffer); // made per call: memory growth detaches old views
  let off = 0;
  for (; off + block <= data.length; off += block) {
    for (let j = 0; j < lanes; j++) mem.set(data.subarray(off + j * len, off + (j + 1) * len), base + j * stride);
    crc = k.update16(crc, base);
  }
  for (; off < data.length; off += block) {
    const piece = data.subarray(off, off + block);
    mem.set(piece, base);
    crc = k.update(crc, base, piece.length);
  }
  return crc >>> 0;
}
