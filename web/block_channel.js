// aerodisk's synchronous channel, the emulator's end (docs/browser.md,
// "Synchronous channel"). An emulator compiled from C (or any code that
// must block on disk I/O) runs in a worker of its own:
//
//   // the page
//   const dev = await dm.openDisk(id, { writable: true });
//   const ch = await dev.channel();              // { sab, port }
//   emulator.postMessage({ ch }, [ch.port]);
//
//   // the emulator's worker
//   import { BlockChannel } from "./block_channel.js";
//   const disk = new BlockChannel(e.data.ch);
//   disk.readSync(offset, target);  disk.writeSync(offset, bytes);
//   disk.discardSync(offset, length);  disk.flushSync();
//
// Each call writes its request into the SharedArrayBuffer's header,
// notifies the disk worker and blocks in Atomics.wait until it has
// answered (the disk worker waits with Atomics.waitAsync and never blocks).
// The bytes pass through the buffer's data area: one copy on each side.
// Every rule and every error is the disk worker's (Go's): a refused
// request throws an Error whose name is the engine's (InvalidArgumentError,
// ReadOnlyError, ...) and whose message is its sentence, written into the
// buffer — nothing here names an error or decides a range. The header's
// layout is web/disk_worker.js's (its comment "the synchronous channel").
//
// Atomics.wait blocks, so a BlockChannel works in a worker, not on a
// page's main thread (there the browser throws a TypeError).

const STATE = 0, ENDED = 1, OP = 2, STATUS = 3, BEAT = 4, LOCK = 5, MAGIC = 6, DATA = 7, SECTOR = 8, READ_ONLY = 9; // Int32 words
const OFFSET = 8, LENGTH = 9, SPAN = 10, SIZE = 11; // Float64 words
const ANSWER = 128, CLOSED = 1152, STOPPED = 2176, NAME_AT = 8, MESSAGE_AT = 72; // error records
const HEADER = 4096, MAGIC_VALUE = 0x41444331;
const REQUEST = 1, ANSWERED = 2;
const READ = 1, WRITE = 2, DISCARD = 3, FLUSH = 4;

// A waiter wakes every WAIT_MS to look at the heartbeat, which the disk
// worker bumps every 250 ms while it runs (even while a long request keeps
// it busy: its I/O lets the event loop run every 50 ms). Silence for
// STOPPED_AFTER_MS means the disk worker is gone, and the call throws the
// stopped record rather than waiting for ever.
const WAIT_MS = 500, STOPPED_AFTER_MS = 5000;

// A request first spins up to SPIN_MS for its answer before it sleeps in
// Atomics.wait: on OPFS most answers come sooner, and a thread that slept
// wakes late (measured on 2 cores, 4 KiB random reads: median round trip
// 80 µs sleeping at once, 25 µs spinning up to 60–100 µs first). After
// MISSES spins in a row that ended without an answer (IndexedDB, flushes),
// the next NO_SPIN_AFTER_MISSES requests sleep at once, so slow answers
// cost no CPU.
const SPIN_MS = 0.1, MISSES = 4, NO_SPIN_AFTER_MISSES = 64;

const decoder = new TextDecoder();

// A number as it is, anything else as NaN, which the disk worker refuses
// (InvalidArgumentError) where a Float64Array would have turned "0" or
// null into 0.
const num = (v) => (typeof v === "number" ? v : NaN);

export class BlockChannel {
  /**
   * @param {{sab: SharedArrayBuffer, port: MessagePort}} channel what
   *   BlockDevice.channel() returned, posted to this worker (the port in
   *   the transfer list).
   */
  constructor(channel) {
    const sab = channel && channel.sab;
    if (typeof SharedArrayBuffer !== "function" || !(sab instanceof SharedArrayBuffer) || sab.byteLength < HEADER) {
      throw new TypeError("BlockChannel needs the { sab, port } that BlockDevice.channel() returned.");
    }
    this._i32 = new Int32Array(sab, 0, 16);
    this._f64 = new Float64Array(sab, 0, 12);
    if (Atomics.load(this._i32, MAGIC) !== MAGIC_VALUE) {
      throw new TypeError("This SharedArrayBuffer is not an open aerodisk channel.");
    }
    this._sab = sab;
    this._port = channel.port || null;
    this._data = new Uint8Array(sab, HEADER, this._i32[DATA]);
    this._closed = false; // this object's close()
    this._noSpin = 0; // requests left that sleep without spinning first
    this._misses = 0; // spins in a row that ended without an answer
    /** the disk's size in bytes */
    this.sizeBytes = this._f64[SIZE];
    /** 512: offsets and lengths are multiples of it */
    this.sectorSize = this._i32[SECTOR];
    /** writes and discards throw ReadOnlyError */
    this.readOnly = this._i32[READ_ONLY] === 1;
  }

  /** Fills target (its whole length) with the disk's bytes from offset on. */
  readSync(offset, target) {
    if (!(target instanceof Uint8Array)) throw new TypeError("readSync fills a Uint8Array.");
    this._pieces(READ, num(offset), target.length, (done, n) => target.set(this._data.subarray(0, n), done), null);
  }

  /** Writes bytes at offset; it returns once the disk worker has written them. */
  writeSync(offset, bytes) {
    if (!(bytes instanceof Uint8Array)) throw new TypeError("writeSync writes a Uint8Array.");
    this._pieces(WRITE, num(offset), bytes.length, null, (done, n) => this._data.set(bytes.subarray(done, done + n)));
  }

  /** Makes [offset, offset + length) read as zeros; AEROSPAR disks free whole blocks. */
  discardSync(offset, length) {
    this._locked(() => this._request(DISCARD, num(offset), num(length), num(length)));
  }

  /** Once it returns, every write before it survives a killed tab. */
  flushSync() {
    this._locked(() => this._request(FLUSH, 0, 0, 0));
  }

  /**
   * Ends this channel (the device stays open); its calls throw afterwards.
   * Closing again does nothing. Closing the device ends it too.
   */
  close() {
    if (this._closed) return;
    this._closed = true;
    if (this._port) {
      this._port.postMessage({ close: true });
      this._port.close();
    }
  }

  /** @private A read or write cut into pieces of the data area's size. */
  _pieces(op, offset, length, after, before) {
    this._locked(() => {
      const max = this._data.length;
      let done = 0;
      do {
        const n = Math.min(max, length - done);
        if (before) before(done, n);
        // span: the whole remaining range, which the disk worker checks
        // before this piece moves (so a refused range moves nothing).
        this._request(op, offset + done, n, length - done);
        if (after) after(done, n);
        done += n;
      } while (done < length);
    });
  }

  /** @private fn with the channel's lock held (one request at a time, whichever thread). */
  _locked(fn) {
    this._throwIfEnded();
    const i32 = this._i32;
    while (Atomics.compareExchange(i32, LOCK, 0, 1) !== 0) {
      Atomics.wait(i32, LOCK, 1, WAIT_MS);
      this._throwIfEnded();
    }
    try {
      fn();
    } finally {
      Atomics.store(i32, LOCK, 0);
      Atomics.notify(i32, LOCK, 1);
    }
  }

  /** @private One request, answered (or the channel ended) before it returns. */
  _request(op, offset, length, span) {
    const i32 = this._i32, f64 = this._f64;
    f64[OFFSET] = offset;
    f64[LENGTH] = length;
    f64[SPAN] = span;
    i32[OP] = op;
    Atomics.store(i32, STATE, REQUEST);
    Atomics.notify(i32, STATE);
    let state = Atomics.load(i32, STATE);
    if (state === REQUEST && this._noSpin === 0) {
      const until = performance.now() + SPIN_MS;
      while ((state = Atomics.load(i32, STATE)) === REQUEST && performance.now() < until);
      // Slow answers in a row (IndexedDB, flushes): sleep at once for a while.
      this._misses = state === REQUEST ? this._misses + 1 : 0;
      if (this._misses >= MISSES) { this._misses = 0; this._noSpin = NO_SPIN_AFTER_MISSES; }
    } else if (this._noSpin > 0) {
      this._noSpin--;
    }
    let beat = Atomics.load(i32, BEAT), beatAt = performance.now();
    while (state === REQUEST) {
      this._throwIfEnded();
      if (Atomics.wait(i32, STATE, REQUEST, WAIT_MS) === "timed-out") {
        const now = performance.now(), b = Atomics.load(i32, BEAT);
        if (b !== beat) {
          beat = b;
          beatAt = now;
        } else if (now - beatAt > STOPPED_AFTER_MS) {
          this._stopped = true;
          throw this._record(STOPPED);
        }
      }
      state = Atomics.load(i32, STATE);
    }
    if (i32[STATUS] !== 0) throw this._record(ANSWER);
  }

  /** @private */
  _throwIfEnded() {
    const ended = Atomics.load(this._i32, ENDED);
    if (this._stopped || ended === 2) throw this._record(STOPPED);
    if (this._closed || ended === 1) throw this._record(CLOSED);
  }

  /** @private The Error an error record holds (copied out: TextDecoder takes no shared memory). */
  _record(at) {
    const lens = new Int32Array(this._sab, at, 2);
    const bytes = new Uint8Array(this._sab, at, MESSAGE_AT + lens[1]).slice();
    const err = new Error(decoder.decode(bytes.subarray(MESSAGE_AT, MESSAGE_AT + lens[1])));
    err.name = decoder.decode(bytes.subarray(NAME_AT, NAME_AT + lens[0]));
    return err;
  }
}
