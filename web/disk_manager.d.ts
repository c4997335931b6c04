// Types of web/disk_manager.js, the aerodisk main-thread API.
// Checked by `make test` (tsc over web/types-test/, which uses all of it).

export type Backend = "opfs" | "idb";
export type DiskKind = "hdd" | "cd" | "floppy";
export type DiskFormat = "raw" | "iso" | "qcow2" | "vhd" | "dc42" | "aerospar" | "aerolayr" | "overlay";

export interface Checksum {
  algorithm: "crc32";
  /** 8 lowercase hex digits */
  value: string;
  /**
   * true: the disk was written through a block device since value was
   * computed, so value no longer describes it; verifyDisk records a new one.
   * Absent when false.
   */
  stale?: boolean;
}

export interface DiskMeta {
  /** "remote": an Aero remote disk, listed but not readable here yet; absent or "local": stored here */
  source?: "local" | "remote";
  id: string;
  name: string;
  backend: Backend;
  kind: DiskKind;
  format: DiskFormat;
  fileName: string;
  /** logical size in bytes */
  sizeBytes: number;
  createdAtMs: number;
  lastUsedAtMs: number;
  /**
   * CRC32 of the logical content: what a raw export yields. null when none
   * is recorded yet (a disk recovered from its file, or made by another
   * tool): the first verifyDisk records one.
   */
  checksum: Checksum | null;
  sourceFileName?: string;
  sourceFormat?: DiskFormat;
  /** CRC32 of the uploaded file's bytes */
  sourceChecksum?: Checksum;
  /** length of the stored file in bytes */
  fileSizeBytes?: number;
  /** storage the disk took when it was stored */
  storedBytes?: number;
  /** facts a person should know about how the disk was made */
  warnings?: string[];
  /** set on a disk rebuilt from its file after the catalog was lost */
  recovered?: {
    atMs: number;
    /** "file" (rebuilt from the file's header) or the catalog generation it was taken from */
    from: string;
  };
  /** an overlay's base disk (docs/overlays.md) */
  parentId?: string;
  /** the overlay openDisk's mode "overlay" uses for its base */
  defaultOverlay?: boolean;
  /** the layers kept on top of the disk's base; absent for a disk that is its file alone */
  layers?: Layers;
  checkpoints?: Checkpoint[];
  /** layer files this manager stopped using and removes */
  garbage?: string[];
  /** a merge or commit to finish before layer operations run again */
  pending?: { op: "merge-up" | "commit"; from?: string; into?: string; startedAtMs: number };
}

/** A disk's layer tree: the head's chain is the disk as it reads now. */
export interface Layers {
  blockSize: number;
  head: string;
  nodes: { id: string; fileName: string; parent: string; createdAtMs: number }[];
}

/** A frozen state of a disk (DiskManager.checkpoint). */
export interface Checkpoint {
  id: string;
  name: string;
  createdAtMs: number;
  /** the frozen layer ("" the disk's base) */
  layer: string;
}

/** A disk rebuilt from its file when no usable catalog named it. */
export interface RecoveredDisk {
  id: string;
  name: string;
  fileName: string;
  /** the format read from the file ("" when neither its name nor its header says) */
  format: string;
  /** why the file's header could not be read, if it could not */
  problem?: string;
}

/** How the catalog was recovered (OpenReport.recovery). */
export interface Recovery {
  /** why the current catalog was not used */
  reason: string;
  /** the catalog generation the disks were taken from, "" when none */
  from: string;
  /** disks rebuilt from their files; null when none */
  recovered: RecoveredDisk[] | null;
  /** ids of records no longer listed because their file is gone; null when none */
  unlisted: string[] | null;
  /** where the unreadable catalog's bytes were kept */
  kept?: string;
}

/** What DiskManager.open() found and repaired (docs/browser.md, "Durability"). */
export interface OpenReport {
  recovery?: Recovery;
  /** pending files whose commit had reached the catalog, completed */
  finished?: string[];
  /** unfinished imports of dead tabs, removed */
  swept?: string[];
  /** parts of the catalog that could not be used (left as they are) */
  notes?: string[];
  /** layer files (`.aerolayr`) no record names, not even as garbage: left where they are */
  strayLayers?: string[];
}

export interface VerifyResult {
  ok: boolean;
  /** CRC32 of the logical content now */
  checksum: string;
  /** which definition the recorded checksum matched: this manager's, or Aero's per-block one */
  definition?: "logical" | "aero-blocks";
  /** the disk had no checksum: this one was recorded, not verified */
  recorded?: boolean;
  /** for a disk kept in its container: the container still holds the imported file's bytes */
  sourceOk?: boolean;
}

export interface Progress {
  phase: "import" | "convert" | "checksum" | "export" | "verify" | "merge" | "commit" | "compact";
  processedBytes: number;
  totalBytes: number;
  bytesPerSecond: number;
}

export interface Mounts {
  hddId: string | null;
  cdId: string | null;
}

/** A setMounts change: a drive left out (or undefined) keeps its disk; null unmounts it. */
export interface MountChange {
  hddId?: string | null | undefined;
  cdId?: string | null | undefined;
}

/**
 * The Error.name a rejection carries for each kind of failure; anything
 * else rejects with name "Error" (or, in exportDiskToFile, whatever
 * showSaveFilePicker and the stream reject with).
 */
export type DiskErrorName =
  | "AbortError"
  | "QuotaExceededError"
  | "NotFoundError"
  | "InUseError"
  | "UnsupportedFormatError"
  | "CorruptImageError"
  | "InvalidArgumentError"
  | "ReadOnlyError";

export interface OpenOptions {
  /** "auto" (the default): OPFS where sync access handles exist, IndexedDB otherwise */
  backend?: "auto" | Backend | undefined;
}

export interface LongOptions {
  /** called at most ~10 times a second */
  onProgress?: ((p: Progress) => void) | undefined;
  /**
   * Aborting an import before its promise settles rejects it with AbortError
   * and stores nothing (docs/browser.md, "What a resolved promise guarantees").
   */
  signal?: AbortSignal | undefined;
}

export interface ImportOptions extends LongOptions {
  /** default: the file's name without its extension (required for a Blob that is not a File) */
  name?: string | undefined;
  /** default: from the content */
  kind?: DiskKind | undefined;
}

export interface BlankDiskOptions {
  name: string;
  /** a positive multiple of 512 up to Limits.maxDiskBytes */
  sizeBytes: number;
  /** default "hdd" */
  kind?: DiskKind | undefined;
}

export interface ExportOptions extends LongOptions {
  /** a gzip of the logical content instead of the raw bytes */
  gzip?: boolean | undefined;
  /** the disk as it was at this checkpoint (allowed while a device writes the disk) */
  checkpointId?: string | undefined;
}

export interface DeltaOptions extends LongOptions {
  /** the changes up to this checkpoint; default: up to now */
  checkpointId?: string | undefined;
}

export interface ImportDeltaOptions extends LongOptions {
  /** the disk the delta was made from: refused with InvalidArgumentError for another */
  baseId: string;
  name?: string | undefined;
}

export interface ExportToFileOptions extends ExportOptions {
  /** the suggested file name; default `${disk.name}.img` (`.img.gz` with gzip, `.aerodelta` for a delta) */
  fileName?: string | undefined;
  /** save a delta (exportDelta) instead of the disk */
  delta?: boolean | undefined;
}

/** What importing a file would make of it (DiskManager.probeFile). */
export interface ProbeResult {
  /** detected from the content, never the name */
  format: DiskFormat;
  kind: DiskKind;
  /** logical size */
  sizeBytes: number;
  fileBytes: number;
  /** the name an import gives it unless told otherwise */
  name: string;
  /** importDiskConverted stores it converted (every format but ISO) */
  convertible: boolean;
  /** importDisk can store it as it is (not an overlay) */
  keepAsIs: boolean;
  /** the default: convert containers, keep raw and ISO */
  convert: boolean;
  backingFile?: string;
  warnings: string[];
}

/** The engine's rules a page shows before it asks (DiskManager.limits). */
export interface Limits {
  maxDiskBytes: number;
  sectorBytes: number;
  floppySizes: number[];
  hddFormats: DiskFormat[];
  hddKinds: DiskKind[];
  cdFormats: DiskFormat[];
  /** unit (upper case) → bytes: the size rule of docs/units.md */
  sizeUnits: Record<string, number>;
}

/** DiskManager.parseSize's answer. */
export interface ParsedSize {
  /** what was typed, rounded to a byte */
  requestedBytes: number;
  /** requestedBytes rounded up to whole 512-byte sectors */
  bytes: number;
}

/** DiskManager.storageInfo's answer (navigator.storage). */
export interface StorageInfo {
  usage: number;
  quota: number;
  persisted: boolean;
}

/**
 * How a disk is opened for block I/O: "direct" (the default) reads the disk
 * as it is stored and writes raw and AEROSPAR disks in place; "overlay"
 * keeps writes apart in a copy-on-write layer (not available yet:
 * UnsupportedFormatError).
 */
export type DeviceMode = "direct" | "overlay";

export interface OpenDiskOptions {
  /**
   * default false. A writable open of a CD is ReadOnlyError; of a qcow2,
   * VHD, DiskCopy or ISO disk in mode "direct", InvalidArgumentError; of a
   * disk open for writing anywhere (this page, another tab), InUseError.
   */
  writable?: boolean | undefined;
  /** default "direct" */
  mode?: DeviceMode | undefined;
}

/**
 * A disk open for 512-byte sector I/O (DiskManager.openDisk). Every offset
 * and length is a multiple of sectorSize inside the disk, else the call
 * rejects with InvalidArgumentError; requests run in the order they are
 * made. While a writable device is open the disk cannot be deleted,
 * renamed, exported or verified (InUseError), and its first write marks
 * DiskMeta.checksum stale.
 */
export interface BlockDevice {
  /** the disk's size in bytes */
  readonly sizeBytes: number;
  readonly sectorSize: 512;
  /** writes and discards reject with ReadOnlyError */
  readonly readOnly: boolean;
  readonly diskId: string;
  /** the bytes [offset, offset + length), in an ArrayBuffer of their own */
  read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
  /** fills target (its whole length) with the bytes from offset on */
  readInto(offset: number, target: Uint8Array): Promise<void>;
  /** the bytes are copied before write() returns: the caller may reuse them at once */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /** the range reads as zeros afterwards; AEROSPAR disks free whole blocks */
  discard(offset: number, length: number): Promise<void>;
  /** once it resolves, every write before it survives a killed tab */
  flush(): Promise<void>;
  /**
   * A synchronous channel for an emulator in a worker of its own
   * (docs/browser.md, "Synchronous channel"): post it to that worker with
   * the port in the transfer list, and there `new BlockChannel(ch)`
   * (block_channel.js). Rejects with UnsupportedFormatError, saying why, when
   * the page is not cross-origin isolated. Closing the device ends it.
   */
  channel(): Promise<BlockChannelInit>;
  /** flushes and releases the disk; closing again does nothing */
  close(): Promise<void>;
}

export interface CompactResult {
  /** how much smaller the disk's files are */
  reclaimedBytes: number;
  /** how many files were compacted */
  files: number;
}

/** What BlockDevice.channel() gives: the shared request buffer and its control port. */
export interface BlockChannelInit {
  readonly sab: SharedArrayBuffer;
  readonly port: MessagePort;
}

export declare class DiskManager {
  /** Managers come from DiskManager.open(). */
  private constructor();
  static open(options?: OpenOptions): Promise<DiskManager>;
  /** the backend chosen by open() */
  readonly backend: Backend;
  /** what open() found and repaired */
  readonly openReport: OpenReport;
  /** the open report, with any recovery since */
  recoveryReport(): Promise<OpenReport>;
  /** reads only the file's headers; rejects as importDisk would, storing nothing */
  probeFile(file: Blob): Promise<ProbeResult>;
  limits(): Promise<Limits>;
  /** reads a typed size by docs/units.md; bytes are rounded up to 512-byte sectors */
  parseSize(text: string): Promise<ParsedSize>;
  /** newest lastUsedAtMs first */
  listDisks(): Promise<DiskMeta[]>;
  getDisk(id: string): Promise<DiskMeta>;
  createBlankDisk(options: BlankDiskOptions): Promise<DiskMeta>;
  /** stores the file as it is (a File, or any Blob given options.name) */
  importDisk(file: Blob, options?: ImportOptions): Promise<DiskMeta>;
  /** converts the file into AEROSPAR (ISO images stay ISO) */
  importDiskConverted(file: Blob, options?: ImportOptions): Promise<DiskMeta>;
  /** the logical content (or its gzip); each chunk owns its own ArrayBuffer */
  exportDisk(id: string, options?: ExportOptions): Promise<ReadableStream<Uint8Array<ArrayBuffer>>>;
  /** saves an export through showSaveFilePicker, or a download where that is missing */
  exportDiskToFile(id: string, options?: ExportToFileOptions): Promise<void>;
  /** overlays, checkpoints and deltas (docs/overlays.md) */
  createOverlay(baseId: string, options?: { name?: string | undefined }): Promise<DiskMeta>;
  /** O(1); allowed while a device writes the disk (it has every write before it) */
  checkpoint(id: string, options?: { name?: string | undefined }): Promise<Checkpoint>;
  listCheckpoints(id: string): Promise<Checkpoint[]>;
  /** O(1); the writes since are dropped, every checkpoint stays; InUseError while a device writes the disk */
  restoreCheckpoint(id: string, checkpointId: string): Promise<DiskMeta>;
  /** merges the checkpoint's layer into the one above (progress phase "merge") */
  deleteCheckpoint(id: string, checkpointId: string, options?: LongOptions): Promise<void>;
  /** O(1): drops every write kept apart from the base */
  revertDisk(id: string): Promise<DiskMeta>;
  /** writes an overlay's changes into its raw or AEROSPAR base (progress phase "commit") */
  commitOverlay(id: string, options?: LongOptions): Promise<void>;
  /** a standalone copy of the disk as it reads now */
  flattenDisk(id: string, options?: LongOptions & { name?: string | undefined }): Promise<DiskMeta>;
  /**
   * gives back the space the disk's files hold for nothing (an AEROSPAR disk's
   * freed blocks, layers' unnamed clusters), in ~5 ms steps; layers a writer
   * holds are left as they are; what the disk reads never changes
   */
  compactDisk(id: string, options?: LongOptions): Promise<CompactResult>;
  /** the blocks changed since the base as a self-contained, verified delta file */
  exportDelta(id: string, options?: DeltaOptions): Promise<ReadableStream<Uint8Array<ArrayBuffer>>>;
  importDelta(file: Blob, options: ImportDeltaOptions): Promise<DiskMeta>;
  /** a disk open for writing is InUseError; a stale checksum is recomputed and recorded */
  verifyDisk(id: string, options?: LongOptions): Promise<VerifyResult>;
  renameDisk(id: string, name: string): Promise<DiskMeta>;
  deleteDisk(id: string): Promise<void>;
  /** opens a disk for block I/O; read-only unless options.writable */
  openDisk(id: string, options?: OpenDiskOptions): Promise<BlockDevice>;
  getMounts(): Promise<Mounts>;
  /** a drive left out keeps its disk; null unmounts it */
  setMounts(mounts: MountChange): Promise<Mounts>;
  storageInfo(): Promise<StorageInfo>;
  requestPersistence(): Promise<boolean>;
  /**
   * ends the worker: pending calls reject with AbortError, later calls to the
   * worker (and to its devices) with InvalidArgumentError. Open devices are
   * closed first, their writes flushed; resolves once the worker is gone.
   */
  close(): Promise<void>;
}
