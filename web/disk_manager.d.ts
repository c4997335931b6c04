// Types of web/disk_manager.js, the aerodisk main-thread API.
// Checked by `make test` (tsc over web/types-test/, which uses all of it).

export type Backend = "opfs" | "idb";
export type DiskKind = "hdd" | "cd" | "floppy";
export type DiskFormat = "raw" | "iso" | "qcow2" | "vhd" | "dc42" | "aerospar";

export interface Checksum {
  algorithm: "crc32";
  /** 8 lowercase hex digits */
  value: string;
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
  phase: "import" | "convert" | "checksum" | "export" | "verify";
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
  | "InvalidArgumentError";

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
}

export interface ExportToFileOptions extends ExportOptions {
  /** the suggested file name; default `${disk.name}.img` (`.img.gz` with gzip) */
  fileName?: string | undefined;
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
  verifyDisk(id: string, options?: LongOptions): Promise<VerifyResult>;
  renameDisk(id: string, name: string): Promise<DiskMeta>;
  deleteDisk(id: string): Promise<void>;
  getMounts(): Promise<Mounts>;
  /** a drive left out keeps its disk; null unmounts it */
  setMounts(mounts: MountChange): Promise<Mounts>;
  storageInfo(): Promise<StorageInfo>;
  requestPersistence(): Promise<boolean>;
  /** ends the worker: pending calls reject with AbortError, later calls to the worker with InvalidArgumentError */
  close(): void;
}
