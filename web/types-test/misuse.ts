// Misuse that must not type-check. Each @ts-expect-error fails the build if
// the line below it ever compiles (the .d.ts got looser than the JS).

import { DiskManager } from "../disk_manager.js";
// @ts-expect-error disk_manager.js exports only DiskManager (and the types)
import { ERROR_NAMES } from "../disk_manager.js";
import type { DiskErrorName, DiskKind, DiskMeta, Limits, OpenReport, ProbeResult, VerifyResult } from "../disk_manager.js";

export async function misuse(dm: DiskManager, file: File, disk: DiskMeta, probe: ProbeResult): Promise<unknown[]> {
  const out: unknown[] = [];

  // Managers come only from DiskManager.open().
  // @ts-expect-error the constructor is private
  out.push(new DiskManager());
  // @ts-expect-error no such backend
  out.push(await DiskManager.open({ backend: "localStorage" }));
  // @ts-expect-error the test hooks (_simulateNoSyncAccessHandles, …) are not API
  out.push(await DiskManager.open({ _simulateNoSyncAccessHandles: true }));
  // @ts-expect-error backend is read-only
  dm.backend = "idb";
  // @ts-expect-error openReport is read-only
  dm.openReport = {};

  // Mounts: disk ids or null, nothing else.
  // @ts-expect-error a number is not a disk id
  out.push(await dm.setMounts({ hddId: 42 }));
  // @ts-expect-error no such drive
  out.push(await dm.setMounts({ floppyId: disk.id }));
  // @ts-expect-error setMounts needs an object
  out.push(await dm.setMounts(disk.id));

  // Blank disks need a name and a size in bytes.
  // @ts-expect-error sizeBytes is missing
  out.push(await dm.createBlankDisk({ name: "x" }));
  // @ts-expect-error name is missing
  out.push(await dm.createBlankDisk({ sizeBytes: 512 }));
  // @ts-expect-error a typed size is parseSize's job, not a number of bytes
  out.push(await dm.createBlankDisk({ name: "x", sizeBytes: "20 GB" }));
  // @ts-expect-error not a kind
  out.push(await dm.createBlankDisk({ name: "x", sizeBytes: 512, kind: "tape" }));
  // @ts-expect-error createBlankDisk needs options
  out.push(await dm.createBlankDisk());

  // Imports take a File (a Blob), not a path or its bytes.
  // @ts-expect-error a path is not a File
  out.push(await dm.importDisk("disk.img"));
  // @ts-expect-error bytes are not a File
  out.push(await dm.importDiskConverted(new Uint8Array(512)));
  // @ts-expect-error not a kind
  out.push(await dm.importDisk(file, { kind: "dvd" }));
  // @ts-expect-error the name is a string
  out.push(await dm.importDisk(file, { name: 7 }));
  // @ts-expect-error whether to convert is which method, not an option
  out.push(await dm.importDisk(file, { convert: true }));
  // @ts-expect-error onProgress receives a Progress
  out.push(await dm.importDiskConverted(file, { onProgress: (p: string) => p.length }));
  // @ts-expect-error a signal is an AbortSignal, not its controller
  out.push(await dm.importDisk(file, { signal: new AbortController() }));
  // @ts-expect-error probeFile takes a File
  out.push(await dm.probeFile(disk.id));

  // Ids and text are strings.
  // @ts-expect-error an id is a string
  out.push(await dm.getDisk(42));
  // @ts-expect-error parseSize reads text
  out.push(await dm.parseSize(20));
  // @ts-expect-error renameDisk needs the new name
  out.push(await dm.renameDisk(disk.id));
  // @ts-expect-error deleteDisk takes an id, not the disk
  out.push(await dm.deleteDisk(disk));

  // Export options belong to their method.
  // @ts-expect-error gzip is a boolean
  out.push(await dm.exportDisk(disk.id, { gzip: "yes" }));
  // @ts-expect-error fileName is exportDiskToFile's
  out.push(await dm.exportDisk(disk.id, { fileName: "x.img" }));
  // @ts-expect-error verifyDisk has no gzip
  out.push(await dm.verifyDisk(disk.id, { gzip: true }));
  const stream = await dm.exportDisk(disk.id);
  // @ts-expect-error the stream yields bytes, not strings
  const text: ReadableStream<string> = stream;
  out.push(text);

  // Fields that do not exist.
  // @ts-expect-error DiskMeta has sizeBytes, not size
  out.push(disk.size);
  // @ts-expect-error DiskMeta has no path
  out.push(disk.path);
  // @ts-expect-error ProbeResult says sizeBytes
  out.push(probe.size);
  const verified: VerifyResult = await dm.verifyDisk(disk.id);
  // @ts-expect-error VerifyResult.checksum is the hex string itself
  out.push(verified.checksum.value);
  const limits: Limits = await dm.limits();
  // @ts-expect-error Limits has maxDiskBytes
  out.push(limits.maxBytes);
  // @ts-expect-error Mounts has no floppy drive
  out.push((await dm.getMounts()).floppyId);
  // @ts-expect-error the test hooks are not API
  out.push(await dm._debugStats());
  // @ts-expect-error nor is the worker
  out.push(dm._worker);

  // Optional and nullable fields must be checked first (strictNullChecks).
  // @ts-expect-error a disk may have no checksum yet (null)
  out.push(disk.checksum.value);
  const report: OpenReport = dm.openReport;
  // @ts-expect-error there may be no recovery
  out.push(report.recovery.reason);
  if (report.recovery) {
    // @ts-expect-error recovered is null when none were
    out.push(report.recovery.recovered.length);
    // @ts-expect-error unlisted is null when none were
    out.push(report.recovery.unlisted.length);
  }
  // @ts-expect-error warnings may be absent
  out.push(disk.warnings.length);
  // @ts-expect-error recoveryReport is a promise, await it
  out.push((dm.recoveryReport()).notes);

  // Values outside the unions.
  // @ts-expect-error not a verify definition
  out.push(verified.definition === "crc32");
  // @ts-expect-error not a phase
  await dm.verifyDisk(disk.id, { onProgress: (p) => out.push(p.phase === "upload") });
  // @ts-expect-error a format is not a kind
  const kind: DiskKind = probe.format;
  out.push(kind);
  // @ts-expect-error not an error name
  const name: DiskErrorName = "TypeError";
  out.push(name);
  out.push(ERROR_NAMES);
  // @ts-expect-error vmdk is no DiskFormat
  limits.hddFormats.push("vmdk");

  // Block devices: options, offsets and bytes as the API takes them.
  // @ts-expect-error no such mode
  out.push(await dm.openDisk(disk.id, { mode: "cow" }));
  // @ts-expect-error writable is a boolean
  out.push(await dm.openDisk(disk.id, { writable: "yes" }));
  // @ts-expect-error openDisk takes an id, not the disk
  out.push(await dm.openDisk(disk));
  const dev = await dm.openDisk(disk.id);
  // @ts-expect-error the bytes are a Uint8Array, not an array of numbers
  out.push(await dev.write(0, [1, 2, 3]));
  // @ts-expect-error read needs a length
  out.push(await dev.read(0));
  // @ts-expect-error readInto fills a Uint8Array, not an ArrayBuffer
  out.push(await dev.readInto(0, new ArrayBuffer(512)));
  // @ts-expect-error readInto fills the caller's array and returns nothing
  out.push((await dev.readInto(0, new Uint8Array(512))).length);
  // @ts-expect-error readOnly is read-only
  dev.readOnly = false;
  // @ts-expect-error the sector size is 512
  const sector: 4096 = dev.sectorSize;
  out.push(sector);
  // @ts-expect-error the handle is not API
  out.push(dev._dev);
  // @ts-expect-error not an error name yet
  const notYet: DiskErrorName = "NotSupportedError";
  out.push(notYet);

  // @ts-expect-error importDelta needs the base it applies to
  out.push(dm.importDelta(file, {}));
  // @ts-expect-error restoreCheckpoint needs a checkpoint id
  out.push(dm.restoreCheckpoint(disk.id));
  // @ts-expect-error a checkpoint's name is a string
  out.push(dm.checkpoint(disk.id, { name: 3 }));
  return out;
}
