// The page: a disk manager a person can use. Plain ES module, no framework.
// Every disk operation goes through the DiskManager API (disk_manager.js);
// this file only turns clicks into calls and results into words.
import { DiskManager } from "./disk_manager.js";

const $ = (id) => document.getElementById(id);

// ---------- units and words ----------

const SI = ["B", "KB", "MB", "GB", "TB", "PB"];

/**
 * Sizes are shown in decimal units (1 GB = 10^9 bytes), like disk labels,
 * three significant digits: the engine's messages print them the same way
 * (internal/sizefmt.Human; docs/units.md).
 */
export function formatBytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) return "—";
  if (n < 1000) return `${n} B`;
  let i = 0;
  let v = n;
  while (Math.round(v * 1000) / 1000 >= 999.5 && i < SI.length - 1) { v /= 1000; i++; }
  return `${+v.toPrecision(3)} ${SI[i]}`;
}

const exact = (n) => `${n.toLocaleString("en-US")} bytes`;

export function formatDuration(s) {
  if (!Number.isFinite(s) || s < 0) return "—";
  s = Math.ceil(s);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * sizeNote says how a typed size was read: "60 GB = 60,000,000,000 bytes."
 * or, rounded up to whole 512-byte sectors, "1.5 GB: rounded up to …".
 * The reading itself is the engine's (dm.parseSize; docs/units.md).
 */
function sizeNote({ requestedBytes, bytes }) {
  return bytes === requestedBytes
    ? `${formatBytes(bytes)} = ${exact(bytes)}.`
    : `${formatBytes(requestedBytes)}: rounded up to ${exact(bytes)}, a whole number of 512-byte sectors.`;
}

const KIND = { hdd: "HDD", cd: "CD", floppy: "Floppy" };
const FORMAT = { raw: "raw", iso: "ISO", qcow2: "qcow2", vhd: "VHD", dc42: "DiskCopy 4.2", aerospar: "AEROSPAR", aerolayr: "AEROLAYR", overlay: "overlay" };
const PHASE = { import: "Copying", convert: "Converting", checksum: "Checking", export: "Exporting", verify: "Verifying", merge: "Merging", commit: "Committing", compact: "Compacting" };

// The engine's error names (web/disk_manager.d.ts, DiskErrorName): their
// messages are already sentences written for a person (wasm/jsapi).
const ENGINE_ERRORS = new Set(["QuotaExceededError", "UnsupportedFormatError", "CorruptImageError", "NotFoundError",
  "InUseError", "InvalidArgumentError", "AbortError"]);

/**
 * describe turns an error into a sentence for a person (never a stack): the
 * engine's sentence as it is, or for anything else (a fault of the page or
 * the browser) its message after "Something went wrong."
 */
export function describe(e) {
  let msg = String((e && e.message) || e || "").trim();
  if (msg && !/[.!?]$/.test(msg)) msg += ".";
  if (msg) msg = msg[0].toUpperCase() + msg.slice(1);
  if (e && ENGINE_ERRORS.has(e.name)) return msg || (e.name === "AbortError" ? "Cancelled." : "That is not allowed.");
  return msg ? `Something went wrong. ${msg}` : "Something went wrong.";
}

// ---------- messages ----------

function status(text) { $("status").textContent = text; }

function showError(text) {
  const box = $("messages");
  const p = document.createElement("p");
  p.className = "error";
  const span = document.createElement("span");
  span.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "dismiss";
  close.textContent = "Dismiss";
  close.setAttribute("aria-label", "Dismiss this message");
  close.addEventListener("click", () => p.remove());
  p.append(span, close);
  box.append(p);
  while (box.children.length > 4) box.firstElementChild.remove();
}

window.addEventListener("unhandledrejection", (e) => { e.preventDefault(); showError(describe(e.reason)); });
window.addEventListener("error", (e) => { if (e.error) showError(describe(e.error)); });

// ---------- state ----------

let dm = null;
let disks = [];
let mounts = { hddId: null, cdId: null };
const verified = new Map(); // id → {ok, checksum}
let jobCount = 0;

function needEngine() {
  if (dm) return true;
  showError("The disk engine has not started yet. Wait a moment, or reload the page.");
  return false;
}

// ---------- disks table ----------

// The engine's rules for the drives (dm.limits()), filled at start.
let limits = { hddKinds: [], hddFormats: [], cdFormats: [] };
// A base with overlays stays as it is: its overlay is what gets mounted.
const canHDD = (d) => d.source !== "remote" && limits.hddKinds.includes(d.kind) && limits.hddFormats.includes(d.format) &&
  !disks.some((x) => x.parentId === d.id);
const canCD = (d) => d.source !== "remote" && limits.cdFormats.includes(d.format);

function fmtDate(ms) {
  if (typeof ms !== "number" || !(ms > 0)) return "—";
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// refreshThenSay redraws the table, then announces what changed (if
// anything did): a reader of the status finds the table already current.
async function refreshThenSay(message) {
  await refresh();
  if (message) status(message);
}

async function refresh() {
  if (!dm) return;
  try {
    const [list, m] = await Promise.all([dm.listDisks(), dm.getMounts()]);
    disks = list.slice().sort((a, b) => (b.lastUsedAtMs || 0) - (a.lastUsedAtMs || 0));
    mounts = { hddId: m.hddId ?? null, cdId: m.cdId ?? null };
    renderDisks();
  } catch (e) {
    showError(`The disk list could not be read. ${describe(e)}`);
  }
}

function cell(tr, label, content) {
  const td = tr.insertCell();
  td.dataset.label = label;
  if (content instanceof Node) td.append(content);
  else td.textContent = content;
  return td;
}

function button(text, action, ariaLabel) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.dataset.action = action;
  if (ariaLabel) b.setAttribute("aria-label", ariaLabel);
  return b;
}

function mountRadio(group, d, allowed, what) {
  if (!allowed) {
    const s = document.createElement("span");
    s.className = "na";
    s.textContent = "—";
    s.title = what === "hdd" ? "Only hard disks stored raw or as AEROSPAR can be the hard disk" : "Only ISO images can be the CD";
    return s;
  }
  const label = document.createElement("label");
  label.className = "radio";
  const r = document.createElement("input");
  r.type = "radio";
  r.name = group;
  r.value = d.id;
  r.checked = (what === "hdd" ? mounts.hddId : mounts.cdId) === d.id;
  r.setAttribute("aria-label", `Mount “${d.name}” as the ${what === "hdd" ? "hard disk" : "CD"}`);
  const s = document.createElement("span");
  s.className = "radio-text";
  s.textContent = what === "hdd" ? "HDD" : "CD";
  label.append(r, s);
  return label;
}

function renderDisks() {
  const body = $("disks").tBodies[0];
  const rows = [];
  for (const d of disks) {
    const tr = document.createElement("tr");
    tr.dataset.id = d.id;
    tr.dataset.name = d.name;
    const name = document.createElement("span");
    name.className = "disk-name";
    name.textContent = d.name;
    if (d.sourceFileName && d.sourceFileName !== d.name) name.title = `Imported from ${d.sourceFileName}`;
    const nameCell = cell(tr, "Name", name);
    nameCell.className = "name";
    if (d.recovered) {
      const badge = document.createElement("span");
      badge.className = "badge recovered";
      badge.textContent = "recovered";
      badge.title = "Rebuilt from its file after the disk catalog was lost: check it and give it a name.";
      nameCell.append(" ", badge);
    }
    if (Array.isArray(d.warnings) && d.warnings.length) {
      const badge = document.createElement("span");
      badge.className = "badge warn disk-warnings";
      badge.textContent = d.warnings.length === 1 ? "1 note" : `${d.warnings.length} notes`;
      badge.title = d.warnings.join("\n");
      nameCell.append(" ", badge);
    }
    const chain = chainWords(d);
    if (chain) {
      const note = document.createElement("span");
      note.className = "chain note";
      note.textContent = chain;
      nameCell.append(document.createElement("br"), note);
    }
    cell(tr, "Kind", KIND[d.kind] || d.kind || "—").className = "kind";
    cell(tr, "Format", FORMAT[d.format] || d.format || "—").className = "format";
    const size = cell(tr, "Size", formatBytes(d.sizeBytes));
    size.className = "size";
    if (typeof d.sizeBytes === "number") size.title = exact(d.sizeBytes);
    const stored = cell(tr, "Stored", formatBytes(d.storedBytes));
    stored.className = "stored";
    if (typeof d.storedBytes === "number") stored.title = exact(d.storedBytes);
    cell(tr, "Last used", fmtDate(d.lastUsedAtMs)).className = "last-used";
    const sum = document.createElement("span");
    const code = document.createElement("code");
    code.className = "checksum-value";
    code.textContent = d.checksum && d.checksum.value ? d.checksum.value : "—";
    if (d.checksum && d.checksum.algorithm) code.title = d.checksum.algorithm.toUpperCase();
    sum.append(code);
    if (d.checksum && d.checksum.stale) {
      const badge = document.createElement("span");
      badge.className = "badge warn stale";
      badge.textContent = "changed since checksum";
      badge.title = "The disk was written after this checksum was taken: Verify records a new one.";
      sum.append(" ", badge);
    }
    const v = verified.get(d.id);
    if (v) {
      const badge = document.createElement("span");
      badge.className = v.ok ? "badge ok verify-result" : "badge bad verify-result";
      badge.textContent = v.ok ? "ok" : "mismatch";
      sum.append(" ", badge);
    }
    cell(tr, "Checksum", sum).className = "checksum";
    cell(tr, "Backend", d.backend === "idb" ? "IndexedDB" : d.backend === "opfs" ? "OPFS" : d.backend || "—").className = "backend";
    cell(tr, "HDD", mountRadio("mount-hdd", d, canHDD(d), "hdd")).className = "mount-hdd";
    cell(tr, "CD", mountRadio("mount-cd", d, canCD(d), "cd")).className = "mount-cd";
    const actions = document.createElement("div");
    actions.className = "actions";
    const q = `“${d.name}”`;
    actions.append(
      button("Rename", "rename", `Rename ${q}`),
      button("Verify", "verify", `Verify the checksum of ${q}`),
      button("Export .img", "export", `Export ${q} as .img`),
      button("Export .img.gz", "export-gz", `Export ${q} gzipped as .img.gz`),
      button("New overlay", "overlay", `New overlay of ${q}: its writes are kept apart, ${q} stays as it is`),
      button("Import delta", "import-delta", `Import a delta exported from ${q}'s overlay or checkpoint, as a new overlay of ${q}`),
      button(checkpointLabel(d), "checkpoints", `Checkpoints of ${q}`),
    );
    if (d.layers) actions.append(button("Revert", "revert", d.parentId ? `Revert ${q}: drop every write, back to its base` : `Revert ${q} to before its first checkpoint`));
    if (d.parentId) actions.append(button("Commit", "commit", `Write the changes of ${q} into its base`));
    if (d.layers || d.format === "aerospar") actions.append(button("Compact", "compact", `Give back the space ${q} holds for nothing`));
    actions.append(button("Delete", "delete", `Delete ${q}`));
    actions.lastChild.classList.add("danger");
    cell(tr, "Actions", actions).className = "actions-cell";
    rows.push(tr);
  }
  body.replaceChildren(...rows);
  $("empty").hidden = disks.length > 0;
  $("hdd-none").checked = !mounts.hddId;
  $("cd-none").checked = !mounts.cdId;
  const byId = (id) => disks.find((d) => d.id === id);
  const h = mounts.hddId && byId(mounts.hddId);
  const c = mounts.cdId && byId(mounts.cdId);
  $("mount-hdd").textContent = h ? h.name : "none";
  $("mount-cd").textContent = c ? c.name : "none";
}

$("disks").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-action]");
  if (!b) return;
  const id = b.closest("tr").dataset.id;
  const d = disks.find((x) => x.id === id);
  if (!d || !needEngine()) return;
  switch (b.dataset.action) {
    case "rename": renameDisk(d); break;
    case "verify": verifyDisk(d); break;
    case "export": exportDisk(d, false); break;
    case "export-gz": exportDisk(d, true); break;
    case "delete": deleteDisk(d); break;
    case "overlay": newOverlay(d); break;
    case "checkpoints": showCheckpoints(d); break;
    case "revert": revertDisk(d); break;
    case "commit": commitOverlay(d); break;
    case "compact": compactDisk(d); break;
    case "import-delta": deltaBase = d; $("delta-file").value = ""; $("delta-file").click(); break;
  }
});

// ---------- overlays and checkpoints (docs/overlays.md) ----------

/** chainWords says what a layered disk sits on: "overlay of “Base” · 3 layers". */
function chainWords(d) {
  const parts = [];
  if (d.parentId) {
    const base = disks.find((x) => x.id === d.parentId);
    parts.push(`overlay of “${base ? base.name : "a missing disk"}”`);
  }
  const n = d.layers && Array.isArray(d.layers.nodes) ? d.layers.nodes.length : 0;
  if (n) parts.push(n === 1 ? "1 layer" : `${n} layers`);
  const over = disks.filter((x) => x.parentId === d.id).length;
  if (over) parts.push(over === 1 ? "base of 1 overlay" : `base of ${over} overlays`);
  return parts.join(" · ");
}

function checkpointLabel(d) {
  const n = Array.isArray(d.checkpoints) ? d.checkpoints.length : 0;
  return n ? `Checkpoints (${n})` : "Checkpoint";
}

async function newOverlay(d) {
  let done = "";
  try {
    const o = await dm.createOverlay(d.id);
    done = `Made “${o.name}”: it reads as “${d.name}”, and its writes stay apart from it.`;
  } catch (e) {
    showError(`No overlay of “${d.name}” was made. ${describe(e)}`);
  }
  await refreshThenSay(done);
}

async function revertDisk(d) {
  $("confirm-title").textContent = `Revert “${d.name}”?`;
  $("confirm-text").textContent = d.parentId
    ? `This drops every write made to “${d.name}”: it reads as its base again. Its checkpoints stay.`
    : `This drops every write made to “${d.name}” since its first checkpoint. Its checkpoints stay.`;
  $("confirm-ok").textContent = "Revert";
  const answer = await ask($("confirm-dialog"));
  $("confirm-ok").textContent = "Delete";
  if (answer !== "ok") { status(`Kept “${d.name}” as it is.`); return; }
  let done = "";
  try {
    await dm.revertDisk(d.id);
    done = `Reverted “${d.name}”.`;
  } catch (e) {
    showError(`“${d.name}” could not be reverted. ${describe(e)}`);
  }
  await refreshThenSay(done);
}

async function commitOverlay(d) {
  const base = disks.find((x) => x.id === d.parentId);
  try {
    await runJob(`Writing “${d.name}” into “${base ? base.name : "its base"}”`, (o) => dm.commitOverlay(d.id, o));
    status(`Wrote the changes of “${d.name}” into “${base ? base.name : "its base"}”.`);
  } catch (err) {
    if (err && err.name === "AbortError") status(`Commit of “${d.name}” stopped: run it again to finish.`);
    else showError(`“${d.name}” could not be committed. ${describe(err)}`);
  }
  await refresh();
}

// Import delta: the row's button remembers the base and opens the file
// chooser; the engine checks that the delta was made on that base.
let deltaBase = null;
$("delta-file").addEventListener("change", async () => {
  const file = $("delta-file").files[0];
  const d = deltaBase;
  deltaBase = null;
  if (!file || !d || !needEngine()) return;
  let done = "";
  try {
    const ov = await runJob(`Importing the delta “${file.name}” onto “${d.name}”`, (o) => dm.importDelta(file, { baseId: d.id, ...o }));
    done = `Made “${ov.name}” from the delta “${file.name}”: an overlay of “${d.name}”.`;
  } catch (err) {
    if (err && err.name === "AbortError") status(`The delta “${file.name}” was not imported.`);
    else showError(`The delta “${file.name}” could not be imported onto “${d.name}”. ${describe(err)}`);
  }
  await refreshThenSay(done);
});

async function compactDisk(d) {
  try {
    const r = await runJob(`Compacting “${d.name}”`, (o) => dm.compactDisk(d.id, o));
    status(r.files ? `Compacted “${d.name}”: ${formatBytes(r.reclaimedBytes)} given back.` : `“${d.name}” had nothing to compact.`);
  } catch (err) {
    if (err && err.name === "AbortError") status(`Compaction of “${d.name}” stopped; what it reads is unchanged.`);
    else showError(`“${d.name}” could not be compacted. ${describe(err)}`);
  }
  await refresh();
}

let checkpointsOf = null;
async function showCheckpoints(d) {
  checkpointsOf = d;
  $("checkpoints-title").textContent = `Checkpoints of “${d.name}”`;
  $("checkpoint-name").value = "";
  await drawCheckpoints();
  const p = ask($("checkpoints-dialog"));
  await p;
  checkpointsOf = null;
  await refresh();
}

async function drawCheckpoints() {
  const d = checkpointsOf;
  if (!d) return;
  let list = [];
  try {
    list = await dm.listCheckpoints(d.id);
  } catch (e) {
    showError(`The checkpoints of “${d.name}” could not be read. ${describe(e)}`);
  }
  const items = list.map((c) => {
    const li = document.createElement("li");
    li.dataset.id = c.id;
    const name = document.createElement("span");
    name.className = "checkpoint-name";
    name.textContent = c.name;
    const when = document.createElement("span");
    when.className = "note";
    when.textContent = ` ${fmtDate(c.createdAtMs)} `;
    const act = (text, action, label) => {
      const b = button(text, action, `${label} “${c.name}”`);
      b.type = "button";
      return b;
    };
    li.append(name, when, act("Restore", "cp-restore", "Restore"), act("Export .img", "cp-export", "Export"),
      act("Export delta", "cp-delta", "Export the changes up to"), act("Delete", "cp-delete", "Delete"));
    return li;
  });
  $("checkpoints-list").replaceChildren(...items);
  $("checkpoints-empty").hidden = items.length > 0;
}

$("checkpoint-take").addEventListener("click", async () => {
  const d = checkpointsOf;
  if (!d || !needEngine()) return;
  const name = $("checkpoint-name").value.trim() || `Checkpoint ${new Date().toLocaleString()}`;
  try {
    await dm.checkpoint(d.id, { name });
    status(`Took checkpoint “${name}” of “${d.name}”.`);
    $("checkpoint-name").value = "";
  } catch (e) {
    showError(`No checkpoint of “${d.name}” was taken. ${describe(e)}`);
  }
  await drawCheckpoints();
});

$("checkpoints-list").addEventListener("click", async (e) => {
  const b = e.target.closest("button[data-action]");
  const d = checkpointsOf;
  if (!b || !d || !needEngine()) return;
  const cpId = b.closest("li").dataset.id;
  const cpName = b.closest("li").querySelector(".checkpoint-name").textContent;
  try {
    switch (b.dataset.action) {
      case "cp-restore":
        await dm.restoreCheckpoint(d.id, cpId);
        status(`“${d.name}” is back at checkpoint “${cpName}”.`);
        break;
      case "cp-export": {
        const fileName = `${safeFileName(d.name)}-${safeFileName(cpName)}.img`;
        await runJob(`Export of “${d.name}” at “${cpName}”`, (o) => dm.exportDiskToFile(d.id, { checkpointId: cpId, fileName, ...o }));
        status(`Exported “${d.name}” at “${cpName}” as ${fileName}: look in your downloads.`);
        break;
      }
      case "cp-delta": {
        const fileName = `${safeFileName(d.name)}-${safeFileName(cpName)}.aerodelta`;
        await runJob(`Delta of “${d.name}” at “${cpName}”`, (o) => dm.exportDiskToFile(d.id, { checkpointId: cpId, delta: true, fileName, ...o }));
        status(`Exported the changes of “${d.name}” up to “${cpName}” as ${fileName}.`);
        break;
      }
      case "cp-delete":
        await runJob(`Deleting checkpoint “${cpName}”`, (o) => dm.deleteCheckpoint(d.id, cpId, o));
        status(`Deleted checkpoint “${cpName}” of “${d.name}”.`);
        break;
    }
  } catch (err) {
    if (err && err.name === "AbortError") status("Stopped.");
    else showError(`${describe(err)}`);
  }
  await drawCheckpoints();
});

document.addEventListener("change", async (e) => {
  const r = e.target;
  if (!(r instanceof HTMLInputElement) || r.type !== "radio" || (r.name !== "mount-hdd" && r.name !== "mount-cd")) return;
  if (!needEngine()) return;
  const pick = (name) => {
    const el = document.querySelector(`input[name="${name}"]:checked`);
    return el && el.value ? el.value : null;
  };
  try {
    const m = await dm.setMounts({ hddId: pick("mount-hdd"), cdId: pick("mount-cd") });
    const d = disks.find((x) => x.id === r.value);
    status(r.value ? `Mounted “${d ? d.name : r.value}” as the ${r.name === "mount-hdd" ? "hard disk" : "CD"}.`
      : `No ${r.name === "mount-hdd" ? "hard disk" : "CD"} mounted.`);
    mounts = m;
  } catch (err) {
    showError(`The mounts could not be changed. ${describe(err)}`);
  }
  await refresh();
});

// ---------- dialogs ----------

function ask(dialog) {
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
  });
}

async function renameDisk(d) {
  const input = $("rename-input");
  input.value = d.name;
  $("rename-title").textContent = `Rename “${d.name}”`;
  const p = ask($("rename-dialog"));
  input.select();
  if ((await p) !== "ok") return;
  const name = input.value.trim();
  if (!name) { showError("A disk name cannot be empty."); return; }
  if (name === d.name) return;
  let done = "";
  try {
    await dm.renameDisk(d.id, name);
    done = `Renamed “${d.name}” to “${name}”.`;
  } catch (e) {
    showError(`“${d.name}” could not be renamed. ${describe(e)}`);
  }
  await refreshThenSay(done);
}

async function deleteDisk(d) {
  const mounted = mounts.hddId === d.id || mounts.cdId === d.id;
  $("confirm-title").textContent = `Delete “${d.name}”?`;
  $("confirm-text").textContent = `This removes the disk and its ${formatBytes(d.sizeBytes)} of data from this browser for good.` +
    (mounted ? " It is mounted now and will be unmounted." : "");
  if ((await ask($("confirm-dialog"))) !== "ok") { status(`Kept “${d.name}”.`); return; }
  let done = "";
  try {
    await dm.deleteDisk(d.id);
    verified.delete(d.id);
    done = `Deleted “${d.name}”.`;
  } catch (e) {
    showError(`“${d.name}” could not be deleted. ${describe(e)}`);
  }
  await refreshThenSay(done);
  refreshStorage();
}

// ---------- jobs with progress ----------

/**
 * runJob shows a progress row (a real <progress>, bytes done/total, rate,
 * time left, Cancel) while fn({onProgress, signal}) runs. DOM updates are
 * coalesced into one per animation frame and the API already sends at most
 * ~10 progress events a second, so a long job costs the main thread nothing.
 */
async function runJob(label, fn) {
  const ac = new AbortController();
  const li = document.createElement("li");
  li.className = "job";
  const title = document.createElement("span");
  title.className = "job-title";
  title.textContent = label;
  const bar = document.createElement("progress");
  bar.setAttribute("aria-label", label);
  const text = document.createElement("span");
  text.className = "job-text";
  text.textContent = "Starting…";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "cancel";
  cancel.textContent = "Cancel";
  cancel.setAttribute("aria-label", `Cancel: ${label}`);
  cancel.addEventListener("click", () => {
    ac.abort();
    cancel.disabled = true;
    cancel.textContent = "Cancelling…";
  });
  li.append(title, bar, text, cancel);
  $("jobs").append(li);
  jobCount++;
  $("no-jobs").hidden = true;

  let pending = null;
  let frame = 0;
  const draw = () => {
    frame = 0;
    const p = pending;
    if (!p) return;
    const total = Math.max(p.totalBytes || 0, 0);
    const done = Math.min(Math.max(p.processedBytes || 0, 0), total);
    if (total > 0) { bar.max = total; bar.value = done; }
    const rate = p.bytesPerSecond || 0;
    const left = rate > 0 ? formatDuration((total - done) / rate) : "—";
    text.textContent = `${PHASE[p.phase] || p.phase || ""}: ${formatBytes(done)} of ${formatBytes(total)}` +
      ` · ${rate > 0 ? formatBytes(rate) + "/s" : "—"} · ${left} left`;
  };
  const onProgress = (p) => {
    pending = p;
    if (!frame) frame = requestAnimationFrame(draw);
  };
  try {
    return await fn({ onProgress, signal: ac.signal });
  } finally {
    if (frame) cancelAnimationFrame(frame);
    li.remove();
    jobCount--;
    $("no-jobs").hidden = jobCount > 0;
  }
}

// ---------- import ----------

let chosen = null;
let kindTouched = false; // the person chose a kind: send it; otherwise the engine's default applies
let probing = 0;

// chooseFile asks the engine what an import would make of the file (its
// headers only) and fills the form with that: name, kind, keep or convert,
// and what it cannot do.
async function chooseFile(file) {
  chosen = file || null;
  kindTouched = false;
  const info = $("import-chosen");
  const warn = $("import-warning");
  warn.hidden = true;
  for (const id of ["mode-keep", "mode-convert"]) $(id).disabled = false;
  if (!file) { info.hidden = true; return; }
  // The chosen line appears once the form holds what the engine said.
  const say = (text) => { info.textContent = text; info.hidden = false; };
  if (!dm) { say(`Chosen: ${file.name} (${formatBytes(file.size)})`); return; }
  const seq = ++probing;
  let p;
  try {
    p = await dm.probeFile(file);
  } catch (err) {
    if (seq !== probing) return;
    warn.textContent = `This file cannot be imported. ${describe(err)}`;
    warn.hidden = false;
    say(`Chosen: ${file.name} (${formatBytes(file.size)})`);
    return;
  }
  if (seq !== probing || chosen !== file) return;
  $("import-name").value = p.name || file.name;
  $("import-kind").value = p.kind;
  $("mode-keep").disabled = !p.keepAsIs;
  $("mode-convert").disabled = !p.convertible;
  (p.convert ? $("mode-convert") : $("mode-keep")).checked = true;
  say(`Chosen: ${file.name} (${FORMAT[p.format] || p.format}, ${formatBytes(p.sizeBytes)}${p.fileBytes !== p.sizeBytes ? ` in a ${formatBytes(p.fileBytes)} file` : ""})`);
  const notes = [...(p.warnings || [])];
  if (!p.keepAsIs) notes.push(`It depends on the backing file ${p.backingFile}, so it can only be imported converted.`);
  await checkFits(file, notes);
}

$("import-kind").addEventListener("change", () => { kindTouched = true; });

async function checkFits(file, notes = []) {
  const warn = $("import-warning");
  if (!dm) return;
  const lines = [...notes];
  try {
    const s = await dm.storageInfo();
    if (chosen !== file) return;
    const free = s.quota - s.usage;
    if (s.quota > 0 && file.size > free) {
      lines.push(`This file is ${formatBytes(file.size)} but only ${formatBytes(Math.max(free, 0))} of storage is free, ` +
        "so the import will probably fail. Delete disks you no longer need first" +
        ($("mode-convert").checked ? " (converted it may need less, if it holds much empty space)." : "."));
    }
  } catch { /* the space warning is a courtesy */ }
  warn.textContent = lines.join(" ");
  warn.hidden = lines.length === 0;
}

$("import-file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
for (const r of document.querySelectorAll('input[name="import-mode"]')) {
  r.addEventListener("change", () => { if (chosen) chooseFileNotes(chosen); });
}

// chooseFileNotes redoes the form's notes for the chosen file (the mode changed).
function chooseFileNotes(file) { checkFits(file, []); }

const zone = $("drop-zone");
zone.addEventListener("dragover", (e) => {
  if (!e.dataTransfer || !Array.from(e.dataTransfer.types).includes("Files")) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = "copy";
  zone.classList.add("over");
});
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (e) => {
  e.preventDefault();
  zone.classList.remove("over");
  const f = e.dataTransfer && e.dataTransfer.files[0];
  if (f) chooseFile(f);
});
// A file dropped anywhere else must not make the browser leave the page.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

$("import-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!needEngine()) return;
  const file = chosen;
  if (!file) { showError("Choose a disk image to import first (or drop one on the import box)."); return; }
  const name = $("import-name").value.trim() || file.name;
  const kind = kindTouched ? $("import-kind").value : undefined; // unchanged: the engine decides from the content
  const convert = $("mode-convert").checked;
  // The form is free again at once: several imports may run.
  chosen = null;
  $("import-file").value = "";
  $("import-chosen").hidden = true;
  $("import-warning").hidden = true;
  $("import-name").value = "";
  let done = "";
  try {
    const d = await runJob(`Import of ${file.name}${convert ? " (converting)" : ""}`, (o) =>
      convert ? dm.importDiskConverted(file, { name, kind, ...o }) : dm.importDisk(file, { name, kind, ...o }));
    done = `Imported “${d.name}” (${FORMAT[d.format] || d.format}, ${formatBytes(d.sizeBytes)}).`;
  } catch (err) {
    if (err && err.name === "AbortError") status(`Import of ${file.name} cancelled; nothing was stored.`);
    else showError(`${file.name} could not be imported. ${describe(err)}`);
  }
  await refreshThenSay(done);
  refreshStorage();
});

// ---------- export and verify ----------

const safeFileName = (s) => s.replace(/[\\/:*?"<>|\u0000-\u001f\u007f]/g, "_").trim() || "disk";

async function exportDisk(d, gzip) {
  const fileName = `${safeFileName(d.name)}.img${gzip ? ".gz" : ""}`;
  try {
    await runJob(`Export of “${d.name}” to ${fileName}`, (o) => dm.exportDiskToFile(d.id, { gzip, fileName, ...o }));
    status(`Exported “${d.name}” as ${fileName}: look in your downloads.`);
  } catch (err) {
    if (err && err.name === "AbortError") status(`Export of “${d.name}” cancelled.`);
    else showError(`“${d.name}” could not be exported. ${describe(err)}`);
  }
  await refresh();
}

async function verifyDisk(d) {
  try {
    const r = await runJob(`Checking “${d.name}”`, (o) => dm.verifyDisk(d.id, o));
    verified.set(d.id, r);
    if (r.ok) status(`“${d.name}” is intact: its checksum ${r.checksum} matches.`);
    else showError(`“${d.name}” does not match its checksum: it was ${d.checksum ? d.checksum.value : "unknown"}, now it is ${r.checksum}. The disk has changed or is damaged.`);
  } catch (err) {
    if (err && err.name === "AbortError") status(`Check of “${d.name}” cancelled.`);
    else showError(`“${d.name}” could not be checked. ${describe(err)}`);
  }
  await refresh();
}

// ---------- blank disks ----------

// showSizeHelp asks the engine how the typed size reads and says so under
// the field; it resolves to {bytes} or {error} (a sentence).
let sizeSeq = 0;
async function showSizeHelp() {
  const help = $("blank-size-help");
  const text = $("blank-size").value;
  const seq = ++sizeSeq;
  let r;
  if (!dm) {
    r = { note: "Sizes like 20 GB (10^9 bytes), 60G or 512 MiB (powers of 1024)." };
  } else {
    try {
      const s = await dm.parseSize(text);
      r = { bytes: s.bytes, note: sizeNote(s) };
    } catch (err) {
      r = { error: describe(err) };
    }
  }
  if (seq === sizeSeq) {
    help.textContent = r.error || r.note;
    help.classList.toggle("invalid", !!r.error);
    $("blank-size").setAttribute("aria-invalid", r.error ? "true" : "false");
  }
  return r;
}
$("blank-size").addEventListener("input", showSizeHelp);
for (const b of document.querySelectorAll("button.preset")) {
  b.addEventListener("click", () => { $("blank-size").value = b.dataset.size; showSizeHelp(); });
}

$("blank-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!needEngine()) return;
  const r = await showSizeHelp();
  if (r.error) { showError(`No disk was created. ${r.error}`); $("blank-size").focus(); return; }
  const name = $("blank-name").value.trim();
  if (!name) { showError("No disk was created. Give the disk a name."); $("blank-name").focus(); return; }
  await createBlank(name, r.bytes, "hdd");
});

for (const b of document.querySelectorAll("button.floppy")) {
  b.addEventListener("click", () => {
    if (needEngine()) createBlank(`Blank ${b.dataset.label} floppy`, Number(b.dataset.bytes), "floppy");
  });
}

async function createBlank(name, sizeBytes, kind) {
  let done = "";
  try {
    const d = await dm.createBlankDisk({ name, sizeBytes, kind });
    done = `Created “${d.name}”, a blank ${formatBytes(d.sizeBytes)} ${kind === "floppy" ? "floppy" : "hard disk"}.`;
  } catch (err) {
    showError(`“${name}” could not be created. ${describe(err)}`);
  }
  await refreshThenSay(done);
  refreshStorage();
}

// ---------- storage ----------

async function refreshStorage() {
  if (!dm) return;
  try {
    const s = await dm.storageInfo();
    const pct = s.quota > 0 ? ` (${+(100 * s.usage / s.quota).toFixed(1)}%)` : "";
    $("storage-usage").textContent = `Using ${formatBytes(s.usage)} of ${formatBytes(s.quota)}${pct}; ${formatBytes(Math.max(s.quota - s.usage, 0))} free.`;
    const meter = $("storage-meter");
    meter.max = Math.max(s.quota, 1);
    meter.value = s.usage;
    $("storage-persist").textContent = s.persisted
      ? "Storage is persistent: the browser will not clear your disks on its own."
      : "Storage is not persistent: the browser may clear your disks when it runs short of space.";
    $("persist-button").disabled = s.persisted;
  } catch (e) {
    $("storage-usage").textContent = `Storage figures are not available. ${describe(e)}`;
  }
}

$("persist-button").addEventListener("click", async () => {
  if (!needEngine()) return;
  try {
    const ok = await dm.requestPersistence();
    status(ok ? "Your disks will be kept." : "The browser declined to keep storage persistent. Bookmarking or installing the site can help.");
  } catch (e) {
    showError(`Persistent storage could not be requested. ${describe(e)}`);
  }
  refreshStorage();
});

// ---------- what opening found ----------

// showReport tells a person what the engine repaired when it opened: a
// catalog recovered, unfinished imports of closed tabs removed or
// completed, parts of the catalog it could not use. Nothing is ever
// deleted but those unfinished imports, and the notice says so.
function showReport(r) {
  const lines = [];
  const n = (k, one, many) => (k === 1 ? one : many.replace("%d", k));
  const rec = r && r.recovery;
  if (rec) {
    const rebuilt = (rec.recovered || []).length;
    lines.push(`The disk catalog could not be read (${rec.reason}), so it was rebuilt${rec.from ? ` from its previous copy (${rec.from})` : ""}. Nothing was deleted.`);
    if (rebuilt) lines.push(n(rebuilt, "1 disk was recovered from its file; it is marked “recovered” below: rename it.", "%d disks were recovered from their files; they are marked “recovered” below: rename them."));
    if ((rec.unlisted || []).length) lines.push(n(rec.unlisted.length, "1 disk of the old catalog is no longer listed: its file is gone.", "%d disks of the old catalog are no longer listed: their files are gone."));
    if (rec.kept) lines.push(`The unreadable catalog was kept as ${rec.kept}.`);
  }
  if (r && (r.swept || []).length) lines.push(n(r.swept.length, "1 unfinished import of a closed tab was removed.", "%d unfinished imports of closed tabs were removed."));
  if (r && (r.finished || []).length) lines.push(n(r.finished.length, "1 import that a closed tab had just saved was completed.", "%d imports that closed tabs had just saved were completed."));
  if (r && (r.strayLayers || []).length) lines.push(n(r.strayLayers.length, "1 layer file that no disk uses was found and left as it is (nothing proves it can go).", "%d layer files that no disk uses were found and left as they are (nothing proves they can go)."));
  for (const note of (r && r.notes) || []) lines.push(`Part of the catalog could not be used and was left as it is: ${note}.`);
  $("recovery-list").replaceChildren(...lines.map((text) => { const li = document.createElement("li"); li.textContent = text; return li; }));
  $("recovery").hidden = lines.length === 0;
}

$("recovery-dismiss").addEventListener("click", () => { $("recovery").hidden = true; });

// ---------- start ----------

async function start() {
  showSizeHelp();
  try {
    // ?backend=idb (or opfs) chooses the storage; by default the best one
    // this browser has.
    const wanted = new URLSearchParams(location.search).get("backend");
    dm = await DiskManager.open({ backend: wanted === "idb" || wanted === "opfs" ? wanted : "auto" });
    window.aerodisk = dm; // for the console
    $("storage-backend").textContent = dm.backend === "idb"
      ? "Storage backend: IndexedDB (disks are kept as sparse 4 MiB chunks)."
      : "Storage backend: OPFS, the browser's origin private file system.";
    if (dm.backend === "idb") {
      // IndexedDB's chunks are sparse already: converted disks are stored raw there.
      const label = $("mode-convert").parentElement;
      label.lastChild.textContent = " convert to a sparse raw disk";
    }
    status(`Ready. Disks are stored in ${dm.backend === "idb" ? "IndexedDB" : "the origin private file system (OPFS)"}.`);
    limits = await dm.limits();
    showReport(dm.openReport);
    showSizeHelp();
    await refresh();
    await refreshStorage();
    document.documentElement.dataset.state = "ready";
  } catch (e) {
    document.documentElement.dataset.state = "failed";
    status("The disk engine could not start.");
    showError(`The disk engine could not start. ${describe(e)} Try reloading the page, or another browser.`);
  }
}

start();
