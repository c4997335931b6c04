// Types of web/block_channel.js: the emulator's end of a BlockDevice's
// synchronous channel (docs/browser.md, "Synchronous channel"). Every call
// blocks in Atomics.wait, so a BlockChannel works in a worker only. A
// refused request throws an Error named as the engine names it
// (InvalidArgumentError, ReadOnlyError, ...), with its sentence.
import type { BlockChannelInit } from "./disk_manager.js";

export declare class BlockChannel {
  /** ch: what BlockDevice.channel() returned, posted to this worker; TypeError for anything else */
  constructor(ch: BlockChannelInit);
  /** the disk's size in bytes */
  readonly sizeBytes: number;
  /** 512: offsets and lengths are multiples of it */
  readonly sectorSize: number;
  /** writes and discards throw ReadOnlyError */
  readonly readOnly: boolean;
  /** fills target (its whole length) with the disk's bytes from offset on */
  readSync(offset: number, target: Uint8Array): void;
  /** returns once the disk worker has written the bytes */
  writeSync(offset: number, bytes: Uint8Array): void;
  /** the range reads as zeros afterwards; AEROSPAR disks free whole blocks */
  discardSync(offset: number, length: number): void;
  /** once it returns, every write before it survives a killed tab */
  flushSync(): void;
  /** ends this channel (the device stays open); its calls throw afterwards */
  close(): void;
}
