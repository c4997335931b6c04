// A page's use of the whole DiskManager API, as TypeScript: every method
// with every option, every field of every answer. `make test` compiles it
// (tsc --noEmit -p tsconfig.json) against web/disk_manager.d.ts, which
// "../disk_manager.js" resolves to. It is never run.

import { DiskManager } from "../disk_manager.js";
import { BlockChannel } from "../block_channel.js";
import type {
  Backend,
  BlankDiskOptions,
  BlockChannelInit,
  BlockDevice,
  Checkpoint,
  CompactResult,
  Checksum,
  DeviceMode,
  DiskErrorName,
  DiskFormat,
  DiskKind,
  DiskMeta,
  ExportOptions,
  ExportToFileOptions,
  ImportOptions,
  Limits,
  Layers,
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

const log: string[] = [];
const say = (...parts: unknown[]): void => { log.push(parts.map(String).join(" ")); };

// --- the unions, exhaustively: a value added to one fails the `never` ---

function never(x: never): never { throw new Error(`unexpected ${String(x)}`); }

export function backendLabel(b: Backend): string {
  switch (b) {
    case "opfs": return "Origin Private File System";
    case "idb": return "IndexedDB";
    default: return never(b);
  }
}

export function kindLabel(k: DiskKind): string {
  switch (k) {
    case "hdd": return "Hard disk";
    case "cd": return "CD";
    case "floppy": return "Floppy";
    default: return never(k);
  }
}

export function formatLabel(f: DiskFormat): string {
  switch (f) {
    case "raw": return "raw";
    case "iso": return "ISO 9660";
    case "qcow2": return "qcow2";
    case "vhd": return "VHD";
    case "dc42": return "DiskCopy 4.2";
    case "aerospar": return "AEROSPAR";
    case "aerolayr": return "AEROLAYR";
    case "overlay": return "overlay";
    default: return never(f);
  }
}

export function phaseLabel(p: Progress["phase"]): string {
  switch (p) {
    case "import": return "Copying";
    case "convert": return "Converting";
    case "checksum": return "Checking";
    case "export": return "Exporting";
    case "verify": return "Verifying";
    case "merge": return "Merging";
    case "commit": return "Committing";
    case "compact": return "Compacting";
    default: return never(p);
  }
}

// --- the error names ---

export function errorAdvice(name: DiskErrorName): string {
  switch (name) {
    case "AbortError": return "cancelled";
    case "QuotaExceededError": return "free some space";
    case "NotFoundError": return "deleted elsewhere";
    case "InUseError": return "close the other tab";
    case "UnsupportedFormatError": return "not readable here";
    case "CorruptImageError": return "damaged";
    case "InvalidArgumentError": return "fix the input";
    case "ReadOnlyError": return "open it writable";
    default: return never(name);
  }
}

// The page's own list (disk_manager.js exports none); `satisfies` keeps it
// to the union.
const DISK_ERROR_NAMES: ReadonlySet<string> = new Set([
  "AbortError", "QuotaExceededError", "NotFoundError", "InUseError",
  "UnsupportedFormatError", "CorruptImageError", "InvalidArgumentError", "ReadOnlyError",
] satisfies DiskErrorName[]);

function isDiskErrorName(name: string): name is DiskErrorName {
  return DISK_ERROR_NAMES.has(name);
}

// A rejection is an Error whose name is a DiskErrorName, or "Error" (or,
// from exportDiskToFile, a DOMException of the file picker or the stream).
export function explain(e: unknown): string {
  if (e instanceof Error) {
    return isDiskErrorName(e.name) ? `${e.message} (${errorAdvice(e.name)})` : e.message;
  }
  return String(e);
}

// --- every field of every answer ---

function checksumText(c: Checksum): string {
  const algorithm: "crc32" = c.algorithm;
  const value: string = c.value;
  const stale: boolean = c.stale ?? false;
  return `${algorithm.toUpperCase()} ${value}${stale ? " (changed since)" : ""}`;
}

export function modeLabel(m: DeviceMode): string {
  switch (m) {
    case "direct": return "in place";
    case "overlay": return "copy-on-write";
    default: return never(m);
  }
}

function describeDevice(d: BlockDevice): string {
  const sizeBytes: number = d.sizeBytes;
  const sectorSize: 512 = d.sectorSize;
  const readOnly: boolean = d.readOnly;
  const diskId: string = d.diskId;
  return `${diskId}: ${sizeBytes / sectorSize} sectors${readOnly ? ", read-only" : ""}`;
}

// An emulator's use of a block device: sector reads into its own memory,
// writes from it, discards, a flush per guest sync, and the close.
export async function emulate(dm: DiskManager, id: string, mode: DeviceMode): Promise<void> {
  const options: OpenDiskOptions = { writable: true, mode };
  const dev: BlockDevice = await dm.openDisk(id, options);
  say(describeDevice(dev), modeLabel(mode));
  await dm.openDisk(id); // read-only, direct
  await dm.openDisk(id, {});
  await dm.openDisk(id, { writable: false });
  await dm.openDisk(id, { writable: undefined, mode: undefined });
  await dm.openDisk(id, { mode: "overlay" });

  const sector: Uint8Array<ArrayBuffer> = await dev.read(0, dev.sectorSize);
  say("boot signature", sector[510], sector[511]);
  const guestMemory = new Uint8Array(new SharedArrayBuffer(1 << 20));
  const done: void = await dev.readInto(4096, guestMemory.subarray(0, 8 * dev.sectorSize));
  void done;
  await dev.readInto(0, new Uint8Array(dev.sectorSize));
  await dev.write(0, sector);
  await dev.write(8192, guestMemory.subarray(0, 4096)); // copied before write() returns
  guestMemory.fill(0);
  await dev.discard(1 << 20, 1 << 20);
  await dev.flush();
  try {
    const ro = await dm.openDisk(id);
    await ro.write(0, sector);
  } catch (e) {
    say(explain(e)); // ReadOnlyError
  }
  // The synchronous channel: made here, used in the emulator's worker.
  const ch: BlockChannelInit = await dev.channel();
  const emulator = new Worker("emulator.js", { type: "module" });
  emulator.postMessage({ ch }, [ch.port]);
  const closed: void = await dev.close();
  void closed;
  await dev.close(); // closing again does nothing
}

// The emulator's worker: blocking sector I/O on the channel it was sent.
export function emulatorSide(ch: BlockChannelInit): number {
  const disk = new BlockChannel(ch);
  const sector = new Uint8Array(disk.sectorSize);
  disk.readSync(0, sector);
  if (!disk.readOnly) {
    disk.writeSync(disk.sizeBytes - disk.sectorSize, sector);
    disk.discardSync(1 << 20, 1 << 20);
    disk.flushSync();
  }
  disk.close();
  return sector[510] ?? 0;
}

export function describeDisk(d: DiskMeta): string {
  const source: "local" | "remote" = d.source ?? "local";
  const id: string = d.id;
  const name: string = d.name;
  const backend: Backend = d.backend;
  const kind: DiskKind = d.kind;
  const format: DiskFormat = d.format;
  const fileName: string = d.fileName;
  const sizeBytes: number = d.sizeBytes;
  const createdAtMs: number = d.createdAtMs;
  const lastUsedAtMs: number = d.lastUsedAtMs;
  const checksum: string = d.checksum === null ? "not recorded yet" : checksumText(d.checksum);
  const sourceFileName: string | undefined = d.sourceFileName;
  const sourceFormat: DiskFormat | undefined = d.sourceFormat;
  const sourceChecksum: string = d.sourceChecksum ? checksumText(d.sourceChecksum) : "—";
  const fileSizeBytes: number = d.fileSizeBytes ?? sizeBytes;
  const storedBytes: number = d.storedBytes ?? fileSizeBytes;
  const warnings: readonly string[] = d.warnings ?? [];
  let recovered = "";
  if (d.recovered) {
    const atMs: number = d.recovered.atMs;
    const from: string = d.recovered.from;
    recovered = ` recovered from ${from} at ${new Date(atMs).toISOString()}`;
  }
  return [
    source, id, name, backendLabel(backend), kindLabel(kind), formatLabel(format), fileName,
    sizeBytes, new Date(createdAtMs).toISOString(), new Date(lastUsedAtMs).toISOString(), checksum,
    sourceFileName ?? "—", sourceFormat ? formatLabel(sourceFormat) : "—", sourceChecksum,
    fileSizeBytes, storedBytes, warnings.join("; "), recovered,
  ].join(" | ");
}

function describeRecoveredDisk(r: RecoveredDisk): string {
  const id: string = r.id;
  const name: string = r.name;
  const fileName: string = r.fileName;
  const format: string = r.format;
  const problem: string | undefined = r.problem;
  return `${id} “${name}” ${fileName} (${format || "unknown format"})${problem ? `: ${problem}` : ""}`;
}

function describeRecovery(r: Recovery): string[] {
  const reason: string = r.reason;
  const from: string = r.from;
  const recovered: RecoveredDisk[] = r.recovered ?? [];
  const unlisted: string[] = r.unlisted ?? [];
  const kept: string | undefined = r.kept;
  return [
    `catalog recovered: ${reason}; disks taken from ${from || "no catalog"}`,
    ...recovered.map(describeRecoveredDisk),
    ...unlisted.map((id) => `${id} is no longer listed: its file is gone`),
    ...(kept !== undefined ? [`the damaged catalog was kept as ${kept}`] : []),
  ];
}

export function describeReport(r: OpenReport): string[] {
  const lines: string[] = r.recovery ? describeRecovery(r.recovery) : [];
  const finished: string[] = r.finished ?? [];
  const swept: string[] = r.swept ?? [];
  const notes: string[] = r.notes ?? [];
  for (const f of finished) lines.push(`finished ${f}`);
  for (const s of swept) lines.push(`removed ${s}`);
  lines.push(...notes);
  return lines;
}

export function describeVerify(disk: DiskMeta, v: VerifyResult): string {
  const ok: boolean = v.ok;
  const checksum: string = v.checksum;
  const definition: "logical" | "aero-blocks" | undefined = v.definition;
  const recorded: boolean = v.recorded ?? false;
  const sourceOk: boolean | undefined = v.sourceOk;
  if (recorded) return `${disk.name}: checksum ${checksum} recorded`;
  const was = disk.checksum?.value ?? "unknown";
  const by = definition === "aero-blocks" ? "Aero's per-block definition" : definition === "logical" ? "the logical content" : "no definition";
  const container = sourceOk === undefined ? "" : sourceOk ? "; the container is intact" : "; the container changed";
  return `${disk.name}: ${ok ? "intact" : `was ${was}, now ${checksum}`} (${by})${container}`;
}

export function describeProgress(p: Progress): string {
  const phase: string = phaseLabel(p.phase);
  const processedBytes: number = p.processedBytes;
  const totalBytes: number = p.totalBytes;
  const bytesPerSecond: number = p.bytesPerSecond;
  const left = bytesPerSecond > 0 ? (totalBytes - processedBytes) / bytesPerSecond : Infinity;
  return `${phase} ${Math.floor((100 * processedBytes) / Math.max(totalBytes, 1))}%, ${left.toFixed(0)} s left`;
}

export function describeProbe(p: ProbeResult): string {
  const format: DiskFormat = p.format;
  const kind: DiskKind = p.kind;
  const sizeBytes: number = p.sizeBytes;
  const fileBytes: number = p.fileBytes;
  const name: string = p.name;
  const convertible: boolean = p.convertible;
  const keepAsIs: boolean = p.keepAsIs;
  const convert: boolean = p.convert;
  const backingFile: string | undefined = p.backingFile;
  const warnings: string[] = p.warnings;
  return [
    formatLabel(format), kindLabel(kind), sizeBytes, fileBytes, name,
    convertible ? "can convert" : "stays as it is", keepAsIs ? "can keep" : "must convert",
    convert ? "converting by default" : "keeping by default",
    backingFile ? `needs ${backingFile}` : "", ...warnings,
  ].join(" | ");
}

export function describeLimits(l: Limits): string {
  const maxDiskBytes: number = l.maxDiskBytes;
  const sectorBytes: number = l.sectorBytes;
  const floppySizes: number[] = l.floppySizes;
  const hddFormats: DiskFormat[] = l.hddFormats;
  const hddKinds: DiskKind[] = l.hddKinds;
  const cdFormats: DiskFormat[] = l.cdFormats;
  const sizeUnits: Record<string, number> = l.sizeUnits;
  const gib: number | undefined = sizeUnits["GIB"]; // noUncheckedIndexedAccess: a unit may be missing
  return [
    `up to ${maxDiskBytes} bytes in ${sectorBytes}-byte sectors`,
    `floppies: ${floppySizes.join(", ")}`,
    `HDD: ${hddKinds.map(kindLabel).join(", ")} as ${hddFormats.map(formatLabel).join(", ")}`,
    `CD: ${cdFormats.map(formatLabel).join(", ")}`,
    `1 GiB = ${gib ?? "?"} bytes; units ${Object.keys(sizeUnits).join(" ")}`,
  ].join("\n");
}

function describeMounts(m: Mounts, disks: DiskMeta[]): string {
  const hddId: string | null = m.hddId;
  const cdId: string | null = m.cdId;
  const nameOf = (id: string | null): string => (id === null ? "none" : disks.find((d) => d.id === id)?.name ?? id);
  return `HDD: ${nameOf(hddId)}, CD: ${nameOf(cdId)}`;
}

function describeStorage(s: StorageInfo): string {
  const usage: number = s.usage;
  const quota: number = s.quota;
  const persisted: boolean = s.persisted;
  return `${usage} of ${quota} bytes used${persisted ? ", kept by the browser" : ""}`;
}

// --- every method, with every option ---

export async function page(input: HTMLInputElement, backend: OpenOptions["backend"]): Promise<void> {
  const dm: DiskManager = await DiskManager.open({ backend });
  await DiskManager.open(); // no options
  await DiskManager.open({}); // backend left out: "auto"
  await DiskManager.open({ backend: "auto" });
  await DiskManager.open({ backend: "opfs" });
  await DiskManager.open({ backend: "idb" });
  await DiskManager.open({ backend: undefined });

  const chosen: Backend = dm.backend;
  say("stored in", backendLabel(chosen));
  describeReport(dm.openReport).forEach((l) => say(l));
  const again: OpenReport = await dm.recoveryReport();
  describeReport(again).forEach((l) => say(l));

  const limits: Limits = await dm.limits();
  say(describeLimits(limits));
  const size: ParsedSize = await dm.parseSize("20 GB");
  const requestedBytes: number = size.requestedBytes;
  const bytes: number = size.bytes;
  say("20 GB is", requestedBytes, "→", bytes);

  const storage: StorageInfo = await dm.storageInfo();
  say(describeStorage(storage));
  const persisted: boolean = await dm.requestPersistence();
  say(persisted ? "kept" : "may be evicted");

  // Blank disks: every kind, and the kind left out or undefined.
  const blankOptions: BlankDiskOptions = { name: "Blank", sizeBytes: bytes };
  const hdd: DiskMeta = await dm.createBlankDisk(blankOptions);
  await dm.createBlankDisk({ name: "Floppy", sizeBytes: 1474560, kind: "floppy" });
  await dm.createBlankDisk({ name: "HDD", sizeBytes: 512, kind: "hdd" });
  await dm.createBlankDisk({ name: "CD", sizeBytes: 2048, kind: "cd" });
  await dm.createBlankDisk({ name: "Default", sizeBytes: 512, kind: undefined });
  say(describeDisk(hdd));

  // Imports: a picked File, or a Blob with a name; every option.
  const file: File | undefined = input.files?.[0];
  if (!file) return;
  const probe: ProbeResult = await dm.probeFile(file);
  say(describeProbe(probe));
  await dm.probeFile(new Blob([new Uint8Array(512)]));

  const controller = new AbortController();
  const onProgress = (p: Progress): void => say(describeProgress(p));
  const importOptions: ImportOptions = { name: probe.name, kind: probe.kind, onProgress, signal: controller.signal };
  const imported: DiskMeta = probe.convert
    ? await dm.importDiskConverted(file, importOptions)
    : await dm.importDisk(file, importOptions);
  await dm.importDisk(file);
  await dm.importDisk(file, {});
  await dm.importDiskConverted(file);
  await dm.importDiskConverted(new Blob([new Uint8Array(512)]), { name: "From a Blob" });
  // ui.js's way: options that may be undefined, spread.
  const name: string | undefined = undefined;
  const kind: DiskKind | undefined = undefined;
  const job: LongOptions = { onProgress, signal: AbortSignal.timeout(60_000) };
  await dm.importDisk(file, { name, kind, ...job });
  await dm.importDiskConverted(file, { name: undefined, kind: undefined, onProgress: undefined, signal: undefined });
  try {
    const pending = dm.importDiskConverted(file, { signal: controller.signal });
    controller.abort();
    await pending;
  } catch (e) {
    say(explain(e));
  }

  // Listing and reading.
  const disks: DiskMeta[] = await dm.listDisks();
  disks.forEach((d) => say(describeDisk(d)));
  const one: DiskMeta = await dm.getDisk(imported.id);
  say(describeDisk(one));

  // Exports: a stream of bytes, every option.
  const exportOptions: ExportOptions = { gzip: true, onProgress, signal: controller.signal };
  const stream: ReadableStream<Uint8Array<ArrayBuffer>> = await dm.exportDisk(one.id, exportOptions);
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  const blob = new Blob(chunks, { type: "application/gzip" }); // chunks are BlobParts
  say("exported", blob.size, "bytes");
  const raw = await dm.exportDisk(one.id);
  const reader = raw.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    const chunk: Uint8Array<ArrayBuffer> = r.value;
    say("chunk", chunk.byteLength);
  }
  await dm.exportDisk(one.id, {});
  await dm.exportDisk(one.id, { gzip: false });
  await dm.exportDisk(one.id, { gzip: undefined, onProgress: undefined, signal: undefined });
  const saved = await new Response(await dm.exportDisk(one.id, { gzip: true })).blob();
  say("as a blob", saved.size);
  const opfsFile = await (await navigator.storage.getDirectory()).getFileHandle("copy.img", { create: true });
  await (await dm.exportDisk(one.id)).pipeTo(await opfsFile.createWritable());

  const toFile: ExportToFileOptions = { gzip: true, fileName: `${one.name}.img.gz`, onProgress, signal: controller.signal };
  const done: void = await dm.exportDiskToFile(one.id, toFile);
  void done;
  await dm.exportDiskToFile(one.id);
  await dm.exportDiskToFile(one.id, { fileName: undefined, gzip: undefined });

  // Verify, rename, mounts, delete.
  const verified: VerifyResult = await dm.verifyDisk(one.id, { onProgress, signal: controller.signal });
  say(describeVerify(one, verified));
  await dm.verifyDisk(one.id);
  await dm.verifyDisk(one.id, {});
  const renamed: DiskMeta = await dm.renameDisk(one.id, "Renamed");
  say(describeDisk(renamed));

  const mounts: Mounts = await dm.getMounts();
  say(describeMounts(mounts, disks));
  const change: MountChange = { hddId: hdd.id };
  const after: Mounts = await dm.setMounts(change);
  say(describeMounts(after, disks));
  await dm.setMounts({ hddId: hdd.id, cdId: null });
  await dm.setMounts({ cdId: null }); // the HDD keeps its disk
  await dm.setMounts({});
  await dm.setMounts({ hddId: undefined, cdId: undefined });
  await dm.setMounts({ ...mounts });

  await emulate(dm, hdd.id, "direct");

  const deleted: void = await dm.deleteDisk(renamed.id);
  void deleted;
  const ended: void = await dm.close();
  void ended;
  dm.close(); // as a page leaving does, without waiting
}

// Overlays, checkpoints and deltas (docs/overlays.md).
export async function layers(dm: DiskManager, base: DiskMeta, file: File): Promise<number> {
  const ov: DiskMeta = await dm.createOverlay(base.id, { name: "work" });
  const parent: string | undefined = ov.parentId;
  const cp: Checkpoint = await dm.checkpoint(ov.id, { name: "before" });
  const all: Checkpoint[] = await dm.listCheckpoints(ov.id);
  const restored: DiskMeta = await dm.restoreCheckpoint(ov.id, cp.id);
  await dm.deleteCheckpoint(ov.id, cp.id, { onProgress: (p) => void p.phase });
  const reverted: DiskMeta = await dm.revertDisk(ov.id);
  await dm.commitOverlay(ov.id, { signal: new AbortController().signal });
  const flat: DiskMeta = await dm.flattenDisk(ov.id, { name: "flat" });
  const compacted: CompactResult = await dm.compactDisk(ov.id, { onProgress: (p) => say(p.phase === "compact" ? p.processedBytes : 0) });
  say(compacted.reclaimedBytes, compacted.files);
  const delta: ReadableStream<Uint8Array> = await dm.exportDelta(ov.id, { checkpointId: cp.id });
  const imported: DiskMeta = await dm.importDelta(file, { baseId: base.id });
  await dm.exportDiskToFile(ov.id, { checkpointId: cp.id, delta: true });
  const atCp = await dm.exportDisk(ov.id, { checkpointId: cp.id });
  const layersOf: Layers | undefined = restored.layers;
  void [parent, all, reverted, flat, delta, imported, atCp, layersOf];
  return all.length;
}
