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
  listDisks(): Promise<DiskMeta[]>;
  getDisk(id: string): Promise<DiskMeta>;
  createBlankDisk(options: { name: string; sizeBytes: number; kind?: DiskKind }): Promise<DiskMeta>;
  importDisk(file: File, options?: ImportOptions): Promise<DiskMeta>;
  importDiskConverted(file: File, options?: ImportOptions): Promise<DiskMeta>;
  exportDisk(id: string, options?: LongOptions & { gzip?: boolean }): Promise<ReadableStream<Uint8Array>>;
  exportDiskToFile(id: string, options?: LongOptions & { gzip?: boolean; fileName?: string }): Promise<void>;
  verifyDisk(id: string, options?: LongOptions): Promise<{ ok: boolean; checksum: string }>;
  renameDisk(id: string, name: string): Promise<DiskMeta>;
  deleteDisk(id: string): Promise<void>;
  getMounts(): Promise<Mounts>;
  setMounts(mounts: Partial<Mounts>): Promise<Mounts>;
  storageInfo(): Promise<{ usage: number; quota: number; persisted: boolean }>;
  requestPersistence(): Promise<boolean>;
  close(): void;
}
