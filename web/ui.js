// Minimal page: lists disks and imports a file. The full page is its own issue.
import { DiskManager } from "./disk_manager.js";

const $ = (id) => document.getElementById(id);
const human = (n) => {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${Math.round(n * 100) / 100} ${u[i]}`;
};

let dm;
async function refresh() {
  const body = $("disks").tBodies[0];
  body.replaceChildren();
  for (const d of await dm.listDisks()) {
    const tr = body.insertRow();
    for (const v of [d.name, d.kind, d.format, human(d.sizeBytes), d.checksum.value]) tr.insertCell().textContent = v;
  }
}

async function start() {
  try {
    dm = await DiskManager.open();
    window.aerodisk = dm; // for the console and tests
    $("status").textContent = `Ready (storage: ${dm.backend}).`;
    await refresh();
  } catch (e) {
    $("status").textContent = `The disk engine could not start: ${e.message}`;
  }
}

$("import").addEventListener("click", async () => {
  const file = $("file").files[0];
  if (!file || !dm) return;
  const bar = $("progress");
  bar.hidden = false;
  try {
    const opts = { onProgress: (p) => { bar.value = p.totalBytes ? p.processedBytes / p.totalBytes : 0; } };
    const d = $("convert").checked ? await dm.importDiskConverted(file, opts) : await dm.importDisk(file, opts);
    $("status").textContent = `Imported ${d.name}.`;
    await refresh();
  } catch (e) {
    $("status").textContent = `Import failed: ${e.message}`;
  } finally {
    bar.hidden = true;
  }
});

start();
