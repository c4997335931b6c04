// Types of web/disk_manager.js, the aerodisk main-thread API.

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
  /** CRC32 of the logical content: what a raw export yields */
  checksum: Checksum;
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
  recovered?: { atMs: number; from: string };
}

/** What DiskManager.open() found and repaired (docs/browser.md, "Durability"). */
export interface OpenReport {
  recovery?: {
    reason: string;
    /** the catalog generation the disks were taken from, "" when none */
    from: string;
    recovered: { id: string; name: string; fileName: string; format: string; problem?: string }[];
    /** records no longer listed because their file is gone */
    unlisted: string[];
    /** where the unreadable catalog's bytes were kept */
    kept?: string;
  };
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

export type DiskErrorName =
  | "AbortError"
  | "QuotaExceededError"
  | "NotFoundError"
  | "InUseError"
  | "UnsupportedFormatError"
  | "CorruptImageError"
  | "InvalidArgumentError";

export interface LongOptions {
  /** called at most ~10 times a second */
  onProgress?: (p: Progress) => void;
  /**
   * Aborting an import before its promise settles rejects it with AbortError
   * and stores nothing (docs/browser.md, "What a resolved promise guarantees").
   */
  signal?: AbortSignal;
}

export interface ImportOptions extends LongOptions {
  name?: string;
  kind?: DiskKind;
}

export declare class DiskManager {
  static open(options?: { backend?: "auto" | Backend }): Promise<DiskManager>;
  /** the backend chosen by open() */
  readonly backend: Backend;
  /** what open() found and repaired */
  readonly openReport: OpenReport;
  /** the open report, with any recovery since */
  recoveryReport(): Promise<OpenReport>;
  listDisks(): Promise<DiskMeta[]>;
  getDisk(id: string): Promise<DiskMeta>;
  createBlankDisk(options: { name: string; sizeBytes: number; kind?: DiskKind }): Promise<DiskMeta>;
  importDisk(file: File, options?: ImportOptions): Promise<DiskMeta>;
  importDiskConverted(file: File, options?: ImportOptions): Promise<DiskMeta>;
  exportDisk(id: string, options?: LongOptions & { gzip?: boolean }): Promise<ReadableStream<Uint8Array>>;
  exportDiskToFile(id: string, options?: LongOptions & { gzip?: boolean; fileName?: string }): Promise<void>;
  verifyDisk(id: string, options?: LongOptions): Promise<VerifyResult>;
  renameDisk(id: string, name: string): Promise<DiskMeta>;
  deleteDisk(id: string): Promise<void>;
  getMounts(): Promise<Mounts>;
  /** a drive left out keeps its disk; null unmounts it */
  setMounts(mounts: Partial<Mounts>): Promise<Mounts>;
  storageInfo(): Promise<{ usage: number; quota: number; persisted: boolean }>;
  requestPersistence(): Promise<boolean>;
  close(): void;
}
