// The exact shape of every type in web/disk_manager.d.ts, written out again:
// a field or method added, removed or retyped there fails here until this
// file (and web/disk_manager.js, which these shapes were checked against)
// agree. Equal is true only for identical types (optional, readonly and
// undefined all count).

import type { BlockChannel } from "../block_channel.js";
import type {
  Backend,
  BlankDiskOptions,
  BlockChannelInit,
  BlockDevice,
  Checkpoint,
  ImportDeltaOptions,
  Layers,
  Checksum,
  DeviceMode,
  DiskErrorName,
  DiskFormat,
  DiskKind,
  DiskManager,
  DiskMeta,
  ExportOptions,
  ExportToFileOptions,
  ImportOptions,
  Limits,
  LongOptions,
  MountChange,
  Mounts,
  OpenDiskOptions,
  OpenOptions,
  OpenReport,
  ParsedSize,
  ProbeResult,
  Progress,
  RecoveredDisk,
  Recovery,
  StorageInfo,
  VerifyResult,
} from "../disk_manager.js";

export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
export type Expect<T extends true> = T;

export type Unions = [
  Expect<Equal<Backend, "opfs" | "idb">>,
  Expect<Equal<DiskKind, "hdd" | "cd" | "floppy">>,
  Expect<Equal<DiskFormat, "raw" | "iso" | "qcow2" | "vhd" | "dc42" | "aerospar" | "aerolayr" | "overlay">>,
  Expect<Equal<Progress["phase"], "import" | "convert" | "checksum" | "export" | "verify" | "merge" | "commit" | "compact">>,
  Expect<Equal<
    DiskErrorName,
    | "AbortError" | "QuotaExceededError" | "NotFoundError" | "InUseError"
    | "UnsupportedFormatError" | "CorruptImageError" | "InvalidArgumentError" | "ReadOnlyError"
  >>,
  Expect<Equal<DeviceMode, "direct" | "overlay">>,
];

export type Answers = [
  Expect<Equal<Checksum, { algorithm: "crc32"; value: string; stale?: boolean }>>,
  Expect<Equal<DiskMeta, {
    source?: "local" | "remote";
    id: string;
    name: string;
    backend: Backend;
    kind: DiskKind;
    format: DiskFormat;
    fileName: string;
    sizeBytes: number;
    createdAtMs: number;
    lastUsedAtMs: number;
    checksum: Checksum | null;
    sourceFileName?: string;
    sourceFormat?: DiskFormat;
    sourceChecksum?: Checksum;
    fileSizeBytes?: number;
    storedBytes?: number;
    warnings?: string[];
    recovered?: { atMs: number; from: string };
    parentId?: string;
    defaultOverlay?: boolean;
    layers?: Layers;
    checkpoints?: Checkpoint[];
    garbage?: string[];
    pending?: { op: "merge-up" | "commit"; from?: string; into?: string; startedAtMs: number };
  }>>,
  Expect<Equal<Checkpoint, { id: string; name: string; createdAtMs: number; layer: string }>>,
  Expect<Equal<Layers, { blockSize: number; head: string; nodes: { id: string; fileName: string; parent: string; createdAtMs: number }[] }>>,
  Expect<Equal<RecoveredDisk, { id: string; name: string; fileName: string; format: string; problem?: string }>>,
  Expect<Equal<Recovery, {
    reason: string;
    from: string;
    recovered: RecoveredDisk[] | null;
    unlisted: string[] | null;
    kept?: string;
  }>>,
  Expect<Equal<OpenReport, { recovery?: Recovery; finished?: string[]; swept?: string[]; notes?: string[]; strayLayers?: string[] }>>,
  Expect<Equal<VerifyResult, {
    ok: boolean;
    checksum: string;
    definition?: "logical" | "aero-blocks";
    recorded?: boolean;
    sourceOk?: boolean;
  }>>,
  Expect<Equal<Progress, {
    phase: "import" | "convert" | "checksum" | "export" | "verify" | "merge" | "commit" | "compact";
    processedBytes: number;
    totalBytes: number;
    bytesPerSecond: number;
  }>>,
  Expect<Equal<Mounts, { hddId: string | null; cdId: string | null }>>,
  Expect<Equal<ProbeResult, {
    format: DiskFormat;
    kind: DiskKind;
    sizeBytes: number;
    fileBytes: number;
    name: string;
    convertible: boolean;
    keepAsIs: boolean;
    convert: boolean;
    backingFile?: string;
    warnings: string[];
  }>>,
  Expect<Equal<Limits, {
    maxDiskBytes: number;
    sectorBytes: number;
    floppySizes: number[];
    hddFormats: DiskFormat[];
    hddKinds: DiskKind[];
    cdFormats: DiskFormat[];
    sizeUnits: Record<string, number>;
  }>>,
  Expect<Equal<ParsedSize, { requestedBytes: number; bytes: number }>>,
  Expect<Equal<StorageInfo, { usage: number; quota: number; persisted: boolean }>>,
];

// Options: the JS reads each with destructuring, so undefined is "left out".
export type Options = [
  Expect<Equal<OpenOptions, { backend?: "auto" | Backend | undefined }>>,
  Expect<Equal<LongOptions, { onProgress?: ((p: Progress) => void) | undefined; signal?: AbortSignal | undefined }>>,
  Expect<Equal<Required<ImportOptions>, {
    name: string | undefined;
    kind: DiskKind | undefined;
    onProgress: ((p: Progress) => void) | undefined;
    signal: AbortSignal | undefined;
  }>>,
  Expect<Equal<BlankDiskOptions, { name: string; sizeBytes: number; kind?: DiskKind | undefined }>>,
  Expect<Equal<Required<ExportOptions>, {
    gzip: boolean | undefined;
    checkpointId: string | undefined;
    onProgress: ((p: Progress) => void) | undefined;
    signal: AbortSignal | undefined;
  }>>,
  Expect<Equal<Required<ExportToFileOptions>, {
    gzip: boolean | undefined;
    checkpointId: string | undefined;
    fileName: string | undefined;
    delta: boolean | undefined;
    onProgress: ((p: Progress) => void) | undefined;
    signal: AbortSignal | undefined;
  }>>,
  Expect<Equal<MountChange, { hddId?: string | null | undefined; cdId?: string | null | undefined }>>,
  Expect<Equal<OpenDiskOptions, { writable?: boolean | undefined; mode?: DeviceMode | undefined }>>,
];

// BlockDevice: exactly these members, each with exactly this signature.
export type Device = [
  Expect<Equal<
    keyof BlockDevice,
    "sizeBytes" | "sectorSize" | "readOnly" | "diskId" | "read" | "readInto" | "write" | "discard" | "flush" | "channel" | "close"
  >>,
  Expect<Equal<
    Pick<BlockDevice, "sizeBytes" | "sectorSize" | "readOnly" | "diskId">,
    { readonly sizeBytes: number; readonly sectorSize: 512; readonly readOnly: boolean; readonly diskId: string }
  >>,
  Expect<Equal<BlockDevice["read"], (offset: number, length: number) => Promise<Uint8Array<ArrayBuffer>>>>,
  Expect<Equal<BlockDevice["readInto"], (offset: number, target: Uint8Array) => Promise<void>>>,
  Expect<Equal<BlockDevice["write"], (offset: number, bytes: Uint8Array) => Promise<void>>>,
  Expect<Equal<BlockDevice["discard"], (offset: number, length: number) => Promise<void>>>,
  Expect<Equal<BlockDevice["flush"], () => Promise<void>>>,
  Expect<Equal<BlockDevice["channel"], () => Promise<BlockChannelInit>>>,
  Expect<Equal<BlockChannelInit, { readonly sab: SharedArrayBuffer; readonly port: MessagePort }>>,
  Expect<Equal<keyof BlockChannel, "sizeBytes" | "sectorSize" | "readOnly" | "readSync" | "writeSync" | "discardSync" | "flushSync" | "close">>,
  Expect<Equal<BlockChannel["readSync"], (offset: number, target: Uint8Array) => void>>,
  Expect<Equal<BlockChannel["writeSync"], (offset: number, bytes: Uint8Array) => void>>,
  Expect<Equal<BlockChannel["discardSync"], (offset: number, length: number) => void>>,
  Expect<Equal<BlockChannel["flushSync"], () => void>>,
  Expect<Equal<BlockDevice["close"], () => Promise<void>>>,
];

// DiskManager: exactly these public members (the JS class's, less its
// underscore test hooks), each with exactly this signature.
export type Members = [
  Expect<Equal<
    keyof DiskManager,
    | "backend" | "openReport" | "recoveryReport" | "probeFile" | "limits" | "parseSize"
    | "listDisks" | "getDisk" | "createBlankDisk" | "importDisk" | "importDiskConverted"
    | "exportDisk" | "exportDiskToFile" | "verifyDisk" | "renameDisk" | "deleteDisk"
    | "openDisk" | "getMounts" | "setMounts" | "storageInfo" | "requestPersistence" | "close"
    | "createOverlay" | "checkpoint" | "listCheckpoints" | "restoreCheckpoint" | "deleteCheckpoint"
    | "revertDisk" | "commitOverlay" | "compactDisk" | "flattenDisk" | "exportDelta" | "importDelta"
  >>,
  Expect<Equal<keyof typeof DiskManager, "prototype" | "open">>,
  Expect<Equal<typeof DiskManager.open, (options?: OpenOptions) => Promise<DiskManager>>>,
  Expect<Equal<Pick<DiskManager, "backend" | "openReport">, { readonly backend: Backend; readonly openReport: OpenReport }>>,
  Expect<Equal<DiskManager["recoveryReport"], () => Promise<OpenReport>>>,
  Expect<Equal<DiskManager["probeFile"], (file: Blob) => Promise<ProbeResult>>>,
  Expect<Equal<DiskManager["limits"], () => Promise<Limits>>>,
  Expect<Equal<DiskManager["parseSize"], (text: string) => Promise<ParsedSize>>>,
  Expect<Equal<DiskManager["listDisks"], () => Promise<DiskMeta[]>>>,
  Expect<Equal<DiskManager["getDisk"], (id: string) => Promise<DiskMeta>>>,
  Expect<Equal<DiskManager["createBlankDisk"], (options: BlankDiskOptions) => Promise<DiskMeta>>>,
  Expect<Equal<DiskManager["importDisk"], (file: Blob, options?: ImportOptions) => Promise<DiskMeta>>>,
  Expect<Equal<DiskManager["importDiskConverted"], (file: Blob, options?: ImportOptions) => Promise<DiskMeta>>>,
  Expect<Equal<DiskManager["exportDisk"], (id: string, options?: ExportOptions) => Promise<ReadableStream<Uint8Array<ArrayBuffer>>>>>,
  Expect<Equal<DiskManager["exportDiskToFile"], (id: string, options?: ExportToFileOptions) => Promise<void>>>,
  Expect<Equal<DiskManager["verifyDisk"], (id: string, options?: LongOptions) => Promise<VerifyResult>>>,
  Expect<Equal<DiskManager["renameDisk"], (id: string, name: string) => Promise<DiskMeta>>>,
  Expect<Equal<DiskManager["deleteDisk"], (id: string) => Promise<void>>>,
  Expect<Equal<DiskManager["openDisk"], (id: string, options?: OpenDiskOptions) => Promise<BlockDevice>>>,
  Expect<Equal<DiskManager["getMounts"], () => Promise<Mounts>>>,
  Expect<Equal<DiskManager["setMounts"], (mounts: MountChange) => Promise<Mounts>>>,
  Expect<Equal<DiskManager["storageInfo"], () => Promise<StorageInfo>>>,
  Expect<Equal<DiskManager["requestPersistence"], () => Promise<boolean>>>,
  Expect<Equal<DiskManager["close"], () => Promise<void>>>,
  Expect<Equal<DiskManager["checkpoint"], (id: string, options?: { name?: string | undefined }) => Promise<Checkpoint>>>,
  Expect<Equal<DiskManager["restoreCheckpoint"], (id: string, checkpointId: string) => Promise<DiskMeta>>>,
  Expect<Equal<DiskManager["importDelta"], (file: Blob, options: ImportDeltaOptions) => Promise<DiskMeta>>>,
];
