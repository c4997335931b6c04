package browsertest

// The page (index.html + web/ui.js) driven as a person uses it: clicks,
// files put into its file input, dialogs, reloads. Expected values come from
// Go (file bytes, CRC32s computed here), never from the page. Every test
// saves a screenshot of the final page to test-output/page/<TestName>.png
// (see ScreenshotPath), even when it fails.

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"aerodisk/internal/checksum"
	"aerodisk/internal/sizefmt"
	"aerodisk/internal/testutil"
)

// pageRow is one row of the page's disk table, as the page shows it.
type pageRow struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Format    string `json:"format"`
	Size      string `json:"size"`
	SizeTitle string `json:"sizeTitle"`
	Stored    string `json:"stored"`
	LastUsed  string `json:"lastUsed"`
	Checksum  string `json:"checksum"`
	Verify    string `json:"verify"`
	Backend   string `json:"backend"`
	HDDRadio  bool   `json:"hddRadio"`
	CDRadio   bool   `json:"cdRadio"`
	HDDOn     bool   `json:"hddOn"`
	CDOn      bool   `json:"cdOn"`
}

const readRowsJS = `[...document.querySelectorAll("#disks tbody tr")].map((tr) => {
	const t = (c) => { const e = tr.querySelector(c); return e ? e.textContent.trim() : ""; };
	const hdd = tr.querySelector(".mount-hdd input[type=radio]"), cd = tr.querySelector(".mount-cd input[type=radio]");
	return { id: tr.dataset.id, name: tr.dataset.name, kind: t(".kind"), format: t(".format"), size: t(".size"),
		sizeTitle: tr.querySelector(".size").title, stored: t(".stored"), lastUsed: t(".last-used"),
		checksum: t(".checksum-value"), verify: t(".verify-result"), backend: t(".backend"),
		hddRadio: !!hdd, cdRadio: !!cd, hddOn: !!(hdd && hdd.checked), cdOn: !!(cd && cd.checked) };
})`

// openApp opens the page at 1280×800 in the shared browser, at the test's own origin, and waits until the disk
// engine is ready. The final screenshot is saved when the test ends.
func openApp(t *testing.T) (*session, *Page) {
	t.Helper()
	return openAppAt(t, PagePath)
}

// openAppAt is openApp at path (PagePath with a query).
func openAppAt(t *testing.T, path string) (*session, *Page) {
	t.Helper()
	requireWasm(t)
	s := sharedSession(t)
	return s, openAppIn(t, s, path)
}

// openAppIn opens the page at path in the session's browser, at its
// origin (for a test with a browser of its own: ownSession).
func openAppIn(t *testing.T, s *session, path string) *Page {
	t.Helper()
	requireWasm(t)
	p, err := s.b.NewPageLog("page", s.URL+path, s.logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	t.Cleanup(func() { shot(t, p, "") })
	if err := p.SetViewport(1280, 800); err != nil {
		t.Fatal(err)
	}
	waitReady(t, p)
	return p
}

func waitReady(t *testing.T, p *Page) {
	t.Helper()
	var state string
	if err := p.WaitFor(`document.documentElement.dataset.state`, 60*time.Second, &state); err != nil {
		t.Fatal(err)
	}
	if state != "ready" {
		msg, _ := p.Text("#messages")
		t.Fatalf("the page did not start: state %q, messages %q", state, msg)
	}
}

// shot saves a screenshot under test-output/page/.
func shot(t *testing.T, p *Page, suffix string) {
	t.Helper()
	path := ScreenshotPath(env.root, t.Name(), suffix)
	if err := p.Screenshot(path); err != nil {
		t.Errorf("saving the screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		if je, ok := err.(*JSError); ok && je.Stack != "" {
			t.Fatalf("%v\n%s", err, je.Stack)
		}
		t.Fatal(err)
	}
}

func pageRows(t *testing.T, p *Page) []pageRow {
	t.Helper()
	var rows []pageRow
	mustEval(t, p, "return "+readRowsJS+";", &rows)
	return rows
}

// waitRow waits until the table has a row named name and returns it.
func waitRow(t *testing.T, p *Page, name string, timeout time.Duration) pageRow {
	t.Helper()
	var r pageRow
	err := p.WaitFor(fmt.Sprintf(`(%s).find((r) => r.name === %q)`, readRowsJS, name), timeout, &r)
	if err != nil {
		msgs, _ := p.Text("#messages")
		t.Fatalf("no row %q: %v (messages: %q)", name, err, msgs)
	}
	return r
}

// waitText waits until the element's text contains want and returns the text.
func waitText(t *testing.T, p *Page, selector, want string, timeout time.Duration) string {
	t.Helper()
	var s string
	err := p.WaitFor(fmt.Sprintf(`((e) => e && e.textContent.includes(%q) && e.textContent)(document.querySelector(%q))`, want, selector), timeout, &s)
	if err != nil {
		got, _ := p.Text(selector)
		msgs, _ := p.Text("#messages")
		t.Fatalf("%s never said %q: it says %q (messages: %q)", selector, want, got, msgs)
	}
	return s
}

// waitNoJobs waits until no job is running.
func waitNoJobs(t *testing.T, p *Page, timeout time.Duration) {
	t.Helper()
	must(t, p.WaitFor(`document.querySelectorAll("#jobs .job").length === 0 && !document.querySelector("#no-jobs").hidden`, timeout, nil))
}

// chooseFile puts a host file into the page's file input.
func chooseFile(t *testing.T, p *Page, path string) {
	t.Helper()
	must(t, p.SetFiles("#import-file", path))
	waitText(t, p, "#import-chosen", filepath.Base(path), 30*time.Second)
}

func rowSel(name, inner string) string { return fmt.Sprintf(`#disks tr[data-name=%q] %s`, name, inner) }

// watchJobs records every state of the job rows the page shows.
const watchJobsJS = `window.__jobs = [];
	const rec = () => { for (const li of document.querySelectorAll("#jobs .job")) {
		const bar = li.querySelector("progress");
		window.__jobs.push({ title: li.querySelector(".job-title").textContent, max: bar.max, value: bar.value,
			role: bar.getAttribute("role") || "progressbar", text: li.querySelector(".job-text").textContent,
			cancel: !!li.querySelector("button.cancel") });
	} };
	new MutationObserver(rec).observe(document.querySelector("#jobs"), { subtree: true, childList: true, characterData: true, attributes: true });`

type jobState struct {
	Title  string  `json:"title"`
	Max    float64 `json:"max"`
	Value  float64 `json:"value"`
	Role   string  `json:"role"`
	Text   string  `json:"text"`
	Cancel bool    `json:"cancel"`
}

// progressText is what a job row says while data moves:
// "Copying: 12.3 MB of 268 MB · 80.1 MB/s · 3 s left".
var progressText = regexp.MustCompile(`^(Copying|Converting|Checking|Exporting|Verifying): [\d.]+ (B|KB|MB|GB) of [\d.]+ (B|KB|MB|GB) · ([\d.]+ (B|KB|MB|GB)/s|—) · (.+) left$`)

// TestPageImportWithProgress imports a 256 MiB image through the file input
// as is and checks the progress row (a real <progress> with bytes, rate,
// time left and Cancel) and the table row against values computed in Go.
func TestPageImportWithProgress(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	waitText(t, p, "#storage-backend", "Storage backend: OPFS", 30*time.Second)
	fx := newFixtures(t)
	const size = 256 << 20
	writes := map[int64][]byte{}
	for _, off := range []int64{0, 100<<20 + 777, size - 1<<20} {
		b := make([]byte, 1<<20)
		rand.Read(b)
		writes[off] = b
	}
	path := filepath.Join(fx.Dir, "system disk.img")
	writeSparse(t, path, size, writes)
	want := sparseCRC(size, writes)

	chooseFile(t, p, path)
	var form struct {
		Name, Kind string
		Keep       bool
	}
	mustEval(t, p, `return { Name: document.querySelector("#import-name").value, Kind: document.querySelector("#import-kind").value,
		Keep: document.querySelector("#mode-keep").checked };`, &form)
	if form.Name != "system disk" || form.Kind != "hdd" || !form.Keep {
		t.Errorf("form prefilled with %+v, want name %q, kind hdd, keep as-is for a .img", form, "system disk")
	}
	mustEval(t, p, watchJobsJS, nil)
	must(t, p.Click("#import-button"))
	r := waitRow(t, p, "system disk", 3*time.Minute)
	waitNoJobs(t, p, 30*time.Second)

	var seen []jobState
	mustEval(t, p, `return window.__jobs;`, &seen)
	var moving int
	for _, j := range seen {
		if !strings.Contains(j.Title, "system disk.img") || !j.Cancel || j.Role != "progressbar" {
			t.Errorf("job row %+v", j)
		}
		if j.Max == size && j.Value > 0 {
			moving++
			if !progressText.MatchString(j.Text) || !strings.Contains(j.Text, "of 268 MB") {
				t.Errorf("progress text %q", j.Text)
			}
		}
	}
	if moving == 0 {
		t.Errorf("no progress with max = %d shown; job states: %+v", size, seen)
	}
	t.Logf("%d job states recorded, %d with bytes moving; last %+v", len(seen), moving, seen[len(seen)-1])

	if r.Kind != "HDD" || r.Format != "raw" || r.Size != "268 MB" || r.SizeTitle != "268,435,456 bytes" ||
		r.Checksum != want || r.Backend != "OPFS" || r.LastUsed == "—" || r.LastUsed == "" || !r.HDDRadio || r.CDRadio {
		t.Errorf("row %+v, want HDD raw 268 MB checksum %s on OPFS", r, want)
	}
	if r.Stored != "—" && !regexp.MustCompile(`^[\d.]+ (B|KB|MB|GB)$`).MatchString(r.Stored) {
		t.Errorf("stored size shown as %q", r.Stored)
	}
	waitText(t, p, "#status", "Imported “system disk”", 30*time.Second)
}

// TestPageConvertQcow2 imports a qcow2 made by qemu-img: the page proposes
// conversion, the disk ends up AEROSPAR with the raw content's checksum, and
// Verify reports ok.
func TestPageConvertQcow2(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	fx := newFixtures(t)
	base := testutil.BaseDisk(t, fx.Dir, "base.raw", 12<<20, 5)
	qcow := filepath.Join(fx.Dir, "win98.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=65536", base, qcow)
	want := crcFile(t, base)

	chooseFile(t, p, qcow)
	var convert bool
	mustEval(t, p, `return document.querySelector("#mode-convert").checked;`, &convert)
	if !convert {
		t.Error("a qcow2 is not proposed for conversion")
	}
	must(t, p.Click("#import-button"))
	r := waitRow(t, p, "win98", 2*time.Minute)
	if r.Format != "AEROSPAR" || r.Kind != "HDD" || r.Checksum != want || r.SizeTitle != "12,582,912 bytes" || !r.HDDRadio {
		t.Errorf("row %+v, want AEROSPAR HDD of 12,582,912 bytes, checksum %s", r, want)
	}
	must(t, p.Click(rowSel("win98", `button[data-action="verify"]`)))
	waitText(t, p, rowSel("win98", ".verify-result"), "ok", time.Minute)
	waitText(t, p, "#status", "is intact: its checksum "+want+" matches", 30*time.Second)
}

// TestPageIndexedDB runs the page on IndexedDB (?backend=idb): it says so,
// converts a qcow2 into a sparse raw disk there, shows the backend in the
// table, and verifies the disk.
func TestPageIndexedDB(t *testing.T) {
	parallel(t)
	_, p := openAppAt(t, PagePath+"?backend=idb")
	waitText(t, p, "#status", "IndexedDB", 30*time.Second)
	waitText(t, p, "#storage-backend", "Storage backend: IndexedDB", 30*time.Second)
	fx := newFixtures(t)
	base := testutil.BaseDisk(t, fx.Dir, "base.raw", 12<<20, 6)
	qcow := filepath.Join(fx.Dir, "dos.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", base, qcow)
	want := crcFile(t, base)
	chooseFile(t, p, qcow)
	must(t, p.Click("#import-button"))
	r := waitRow(t, p, "dos", 2*time.Minute)
	if r.Format != "raw" || r.Backend != "IndexedDB" || r.Checksum != want || r.SizeTitle != "12,582,912 bytes" || !r.HDDRadio {
		t.Errorf("row %+v, want raw on IndexedDB, 12,582,912 bytes, checksum %s", r, want)
	}
	// base.raw has a hole of 1 MiB every 4 MiB, but every 4 MiB chunk holds
	// data: the disk stores all 12 MiB.
	if r.Stored != "12.6 MB" {
		t.Errorf("stored size shown as %q, want 12.6 MB", r.Stored)
	}
	must(t, p.Click(rowSel("dos", `button[data-action="verify"]`)))
	waitText(t, p, rowSel("dos", ".verify-result"), "ok", time.Minute)
}

// TestPageCancelImport first chooses a file bigger than the free storage
// (the page warns before importing), then starts a multi-GiB import and
// cancels it from its progress row: the page says so, and nothing is stored.
func TestPageCancelImport(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	fx := newFixtures(t)
	var est struct{ Usage, Quota int64 }
	mustEval(t, p, `const e = await navigator.storage.estimate(); return { Usage: e.usage, Quota: e.quota };`, &est)
	free := est.Quota - est.Usage
	if free <= 0 {
		t.Fatalf("storage estimate %+v", est)
	}
	tooBig := filepath.Join(fx.Dir, "too big.img")
	writeSparse(t, tooBig, (free/512+1<<21)*512, nil)
	chooseFile(t, p, tooBig)
	warn := waitText(t, p, "#import-warning", "of storage is free, so the import will probably fail", 30*time.Second)
	t.Logf("warning: %q", warn)
	shot(t, p, "warning")

	size := min(int64(4)<<30, free/2/512*512)
	path := filepath.Join(fx.Dir, "huge.img")
	writeSparse(t, path, size, map[int64][]byte{0: []byte("boot")})
	chooseFile(t, p, path)
	var warnHidden bool
	mustEval(t, p, `return document.querySelector("#import-warning").hidden;`, &warnHidden)
	if !warnHidden {
		t.Errorf("a %d-byte file with %d bytes free still warns", size, free)
	}
	must(t, p.Click("#import-button"))
	must(t, p.WaitFor(`(() => { const b = document.querySelector("#jobs .job progress"); return b && b.value > 0; })()`, time.Minute, nil))
	// The page stays usable while it runs: a second import runs beside it
	// and a blank floppy is made.
	small := testutil.MixedData(3<<20, 21)
	chooseFile(t, p, fx.Add(t, "small.img", small))
	must(t, p.Click("#import-button"))
	must(t, p.Click(`button.floppy[data-label="800K"]`))
	if r := waitRow(t, p, "small", time.Minute); r.Checksum != crcBytes(small) {
		t.Errorf("second import %+v, want checksum %s", r, crcBytes(small))
	}
	waitRow(t, p, "Blank 800K floppy", time.Minute)
	var running int
	mustEval(t, p, `return document.querySelectorAll("#jobs .job").length;`, &running)
	if running != 1 {
		t.Errorf("%d jobs shown while the big import runs, want 1", running)
	}
	shot(t, p, "running")
	must(t, p.Click("#jobs .job button.cancel"))
	waitText(t, p, "#status", "Import of huge.img cancelled; nothing was stored.", time.Minute)
	waitNoJobs(t, p, 30*time.Second)
	var names []string
	for _, r := range pageRows(t, p) {
		names = append(names, r.Name)
	}
	slices.Sort(names) // either may have finished last
	if strings.Join(names, ",") != "Blank 800K floppy,small" {
		t.Errorf("rows after the cancelled import: %q, want the floppy and small", names)
	}
	if msgs, _ := p.Text("#messages"); msgs != "" {
		t.Errorf("a cancel is not an error, but the page shows %q", msgs)
	}
	var files []opfsEntry
	mustEval(t, p, `return (await H.opfsList("aero/disks")).filter((e) => !e.name.startsWith("metadata.json"));`, &files)
	if len(files) != 2 {
		t.Errorf("files in aero/disks: %+v, want the two disks only", files)
	}
}

// TestPageBlankDisks creates a 60 GB hard disk from the preset, refuses bad
// sizes with a message (and keeps working), rounds 1.5GB up to whole
// sectors, and makes a 1.44M floppy.
func TestPageBlankDisks(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	zeroCRC := func(n int64) string { return checksum.Hex(checksum.ExtendZeros(0, n)) }

	must(t, p.Click(`button.preset[data-size="60 GB"]`))
	waitText(t, p, "#blank-size-help", "60 GB = 60,000,000,000 bytes.", 30*time.Second)
	must(t, p.TypeInto("#blank-name", "Games"))
	must(t, p.Click("#blank-create"))
	r := waitRow(t, p, "Games", time.Minute)
	if r.Size != "60 GB" || r.SizeTitle != "60,000,000,000 bytes" || r.Kind != "HDD" || r.Format != "AEROSPAR" || r.Checksum != zeroCRC(60e9) {
		t.Errorf("60 GB row %+v, want checksum %s", r, zeroCRC(60e9))
	}

	// Bad values: a message in words, no disk, and the form still works.
	for _, bad := range []struct{ in, msg string }{
		{"lots", "“lots” is not a size"},
		{"0 MB", "A disk needs a size above zero."},
		{"3 TB", "That is too big"},
	} {
		must(t, p.TypeInto("#blank-size", bad.in))
		must(t, p.TypeInto("#blank-name", "Bad "+bad.in))
		must(t, p.Click("#blank-create"))
		msg := waitText(t, p, "#messages", bad.msg, 30*time.Second)
		if strings.Contains(msg, "    at ") || strings.Contains(msg, "Error:") {
			t.Errorf("message reads like a stack trace: %q", msg)
		}
		var invalid string
		mustEval(t, p, `return document.querySelector("#blank-size").getAttribute("aria-invalid");`, &invalid)
		if invalid != "true" {
			t.Errorf("%q: aria-invalid=%q", bad.in, invalid)
		}
	}
	if n := len(pageRows(t, p)); n != 1 {
		t.Errorf("%d rows after refused sizes, want 1", n)
	}
	shot(t, p, "refused")

	must(t, p.TypeInto("#blank-size", "1.5GB"))
	waitText(t, p, "#blank-size-help", "rounded up to 1,500,000,256 bytes", 30*time.Second)
	must(t, p.TypeInto("#blank-name", "Scratch"))
	must(t, p.Click("#blank-create"))
	r = waitRow(t, p, "Scratch", time.Minute)
	if r.SizeTitle != "1,500,000,256 bytes" || r.Checksum != zeroCRC(1500000256) {
		t.Errorf("1.5GB row %+v", r)
	}

	must(t, p.Click(`button.floppy[data-label="1.44M"]`))
	r = waitRow(t, p, "Blank 1.44M floppy", time.Minute)
	if r.Kind != "Floppy" || r.SizeTitle != "1,474,560 bytes" || r.HDDRadio || r.CDRadio || r.Checksum != zeroCRC(1474560) {
		t.Errorf("floppy row %+v", r)
	}
}

// TestPageExportGzip exports a disk with the page's buttons, gzipped and
// raw, and compares the downloads' bytes with the imported file.
func TestPageExportGzip(t *testing.T) {
	parallel(t)
	s := ownSession(t) // downloads: the download directory is the browser's
	p := openAppIn(t, s, PagePath)
	fx := newFixtures(t)
	data := testutil.MixedData(6<<20+512*3, 11)
	path := fx.Add(t, "data disk.img", data)
	chooseFile(t, p, path)
	must(t, p.Click("#import-button"))
	r := waitRow(t, p, "data disk", time.Minute)
	if r.Checksum != crcBytes(data) {
		t.Fatalf("row checksum %s, file %s", r.Checksum, crcBytes(data))
	}

	// Headless chromium has showSaveFilePicker but no one to answer it:
	// stand in for a user who picks a file (an OPFS one) ...
	var picked streamSum
	mustEval(t, p, `const dir = await H.opfsDir("picked", true);
		window.__saved = self.showSaveFilePicker;
		self.showSaveFilePicker = async (o) => dir.getFileHandle(o.suggestedName, { create: true });`, nil)
	must(t, p.Click(rowSel("data disk", `button[data-action="export-gz"]`)))
	waitText(t, p, "#status", "Exported “data disk” as data disk.img.gz", time.Minute)
	mustEval(t, p, `const dir = await H.opfsDir("picked");
		return H.crc32Stream(H.gunzip((await (await dir.getFileHandle("data disk.img.gz")).getFile()).stream()));`, &picked)
	if picked.CRC32 != crcBytes(data) || picked.Bytes != int64(len(data)) {
		t.Errorf("export into the picked file: %+v, want crc %s, %d bytes", picked, crcBytes(data), len(data))
	}
	// ... and for a browser without it, where the page's export is a download.
	mustEval(t, p, `delete self.showSaveFilePicker; if (typeof self.showSaveFilePicker === "function") self.showSaveFilePicker = undefined;`, nil)
	must(t, p.Click(rowSel("data disk", `button[data-action="export-gz"]`)))
	gz := s.waitDownload(t, "data disk.img.gz", 2*time.Minute)
	waitText(t, p, "#status", "Exported “data disk” as data disk.img.gz", 30*time.Second)
	f, err := os.Open(gz)
	must(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	must(t, err)
	got, err := io.ReadAll(zr)
	must(t, err)
	if !bytes.Equal(got, data) {
		t.Errorf("gunzipped download: %d bytes, crc %s; want %d bytes, crc %s", len(got), crcBytes(got), len(data), crcBytes(data))
	}
	if crcBytes(got) != r.Checksum {
		t.Errorf("download crc %s, page shows %s", crcBytes(got), r.Checksum)
	}

	must(t, p.Click(rowSel("data disk", `button[data-action="export"]`)))
	raw := s.waitDownload(t, "data disk.img", 2*time.Minute)
	if crcFile(t, raw) != crcBytes(data) || fileSize(t, raw) != int64(len(data)) {
		t.Errorf("raw download: %d bytes crc %s", fileSize(t, raw), crcFile(t, raw))
	}

	// Verify: ok, then one byte changed behind the engine's back: mismatch.
	must(t, p.Click(rowSel("data disk", `button[data-action="verify"]`)))
	waitText(t, p, rowSel("data disk", ".verify-result"), "ok", time.Minute)
	tampered := append([]byte(nil), data...)
	tampered[4096] ^= 0x5a
	mustEval(t, p, `const dir = await H.opfsDir("aero/disks");
		const files = (await H.opfsList("aero/disks")).filter((e) => !e.name.startsWith("metadata.json"));
		if (files.length !== 1) throw new Error("disk files: " + JSON.stringify(files));
		const w = await (await dir.getFileHandle(files[0].name)).createWritable({ keepExistingData: true });
		await w.write({ type: "write", position: 4096, data: new Uint8Array([args[0]]) });
		await w.close();`, nil, tampered[4096])
	must(t, p.Click(rowSel("data disk", `button[data-action="verify"]`)))
	waitText(t, p, rowSel("data disk", ".verify-result"), "mismatch", time.Minute)
	msg := waitText(t, p, "#messages .error", "does not match its checksum", 30*time.Second)
	if !strings.Contains(msg, "it was "+crcBytes(data)+", now it is "+crcBytes(tampered)) {
		t.Errorf("mismatch message %q, want was %s now %s", msg, crcBytes(data), crcBytes(tampered))
	}
}

// TestPageMounts checks that the HDD and CD radios only exist for disks the
// rules allow, that choosing them mounts, and that mounts survive a reload.
func TestPageMounts(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	fx := newFixtures(t)
	content := filepath.Join(fx.Dir, "cd")
	must(t, os.MkdirAll(content, 0o755))
	testutil.WriteFile(t, content, "README.TXT", []byte("aerodisk page test\n"))
	iso := filepath.Join(fx.Dir, "drivers.iso")
	testutil.Run(t, "xorriso", "-as", "mkisofs", "-quiet", "-V", "DRIVERS", "-o", iso, content)
	hdd := fx.Add(t, "dos.img", testutil.MixedData(2<<20, 3))
	base := testutil.BaseDisk(t, fx.Dir, "base.raw", 2<<20, 4)
	qcow := filepath.Join(fx.Dir, "kept.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", base, qcow)

	for _, f := range []string{iso, hdd, qcow} {
		chooseFile(t, p, f)
		if strings.HasSuffix(f, ".qcow2") {
			must(t, p.Click("#mode-keep")) // stored as qcow2: not mountable read-write
		}
		must(t, p.Click("#import-button"))
		waitRow(t, p, strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)), time.Minute)
	}
	byName := func() map[string]pageRow {
		m := map[string]pageRow{}
		for _, r := range pageRows(t, p) {
			m[r.Name] = r
		}
		return m
	}
	rows := byName()
	if r := rows["drivers"]; r.Kind != "CD" || r.Format != "ISO" || r.HDDRadio || !r.CDRadio {
		t.Errorf("ISO row %+v: want a CD radio only", r)
	}
	if r := rows["dos"]; r.Kind != "HDD" || !r.HDDRadio || r.CDRadio {
		t.Errorf("raw HDD row %+v: want an HDD radio only", r)
	}
	if r := rows["kept"]; r.Format != "qcow2" || r.HDDRadio || r.CDRadio {
		t.Errorf("qcow2 row %+v: want no radio", r)
	}

	must(t, p.Click(rowSel("dos", ".mount-hdd input")))
	waitText(t, p, "#mount-hdd", "dos", 30*time.Second)
	must(t, p.Click(rowSel("drivers", ".mount-cd input")))
	waitText(t, p, "#mount-cd", "drivers", 30*time.Second)

	must(t, p.Reload())
	waitReady(t, p)
	rows = byName()
	if !rows["dos"].HDDOn || !rows["drivers"].CDOn {
		t.Errorf("after reload: dos %+v, drivers %+v", rows["dos"], rows["drivers"])
	}
	for sel, want := range map[string]string{"#mount-hdd": "dos", "#mount-cd": "drivers"} {
		if got, _ := p.Text(sel); got != want {
			t.Errorf("after reload %s shows %q, want %q", sel, got, want)
		}
	}
	// Last used follows mounting: the mounted disks come first.
	if l := pageRows(t, p); len(l) != 3 || l[2].Name != "kept" {
		t.Errorf("order by last used: %+v", l)
	}
	shot(t, p, "mounted")

	must(t, p.Click("#hdd-none"))
	waitText(t, p, "#mount-hdd", "none", 30*time.Second)
	must(t, p.Reload())
	waitReady(t, p)
	if got, _ := p.Text("#mount-hdd"); got != "none" {
		t.Errorf("hard disk after unmount and reload: %q", got)
	}
	if got, _ := p.Text("#mount-cd"); got != "drivers" {
		t.Errorf("CD after unmounting the hard disk: %q", got)
	}
	var none bool
	mustEval(t, p, `return document.querySelector("#hdd-none").checked;`, &none)
	if !none {
		t.Error("the 'no hard disk' radio is not checked after reload")
	}
}

// TestPageRenameDelete renames through the page's dialog, and deletes only
// after confirming in the delete dialog (Cancel keeps the disk).
func TestPageRenameDelete(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	must(t, p.Click(`button.floppy[data-label="720K"]`))
	old := waitRow(t, p, "Blank 720K floppy", time.Minute)

	must(t, p.Click(rowSel("Blank 720K floppy", `button[data-action="rename"]`)))
	must(t, p.TypeInto("#rename-input", "Utilities"))
	shot(t, p, "rename-dialog")
	must(t, p.Click("#rename-ok"))
	r := waitRow(t, p, "Utilities", 30*time.Second)
	if r.ID != old.ID || r.SizeTitle != "737,280 bytes" {
		t.Errorf("renamed row %+v (was %+v)", r, old)
	}

	must(t, p.Click(rowSel("Utilities", `button[data-action="delete"]`)))
	waitText(t, p, "#confirm-title", "Delete “Utilities”?", 30*time.Second)
	shot(t, p, "delete-dialog")
	must(t, p.Click("#confirm-cancel"))
	waitText(t, p, "#status", "Kept “Utilities”.", 30*time.Second)
	if n := len(pageRows(t, p)); n != 1 {
		t.Fatalf("%d rows after cancelling the delete", n)
	}

	must(t, p.Click(rowSel("Utilities", `button[data-action="delete"]`)))
	must(t, p.Click("#confirm-ok"))
	waitText(t, p, "#status", "Deleted “Utilities”.", 30*time.Second)
	if rows := pageRows(t, p); len(rows) != 0 {
		t.Errorf("rows after delete: %+v", rows)
	}
	var empty bool
	mustEval(t, p, `return !document.querySelector("#empty").hidden;`, &empty)
	if !empty {
		t.Error("the empty-table note is not shown")
	}
}

// TestPageCorruptImport imports a damaged qcow2: the page explains in words
// and then imports a good file as usual.
func TestPageCorruptImport(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	fx := newFixtures(t)
	bad := make([]byte, 1<<20)
	copy(bad, []byte{'Q', 'F', 'I', 0xfb, 0, 0, 0, 3})
	for i := 8; i < 512; i++ {
		bad[i] = 0xff
	}
	chooseFile(t, p, fx.Add(t, "broken.qcow2", bad))
	must(t, p.Click("#import-button"))
	msg := waitText(t, p, "#messages .error", "broken.qcow2 could not be imported.", time.Minute)
	t.Logf("message: %q", msg)
	// The engine's sentence (wasm/jsapi): "… is damaged or incomplete: …"
	// for a corrupt image, "… cannot be read here: …" for one it does not
	// support (this one's cluster_bits).
	if !strings.Contains(msg, "damaged") && !strings.Contains(msg, "cannot read") && !strings.Contains(msg, "cannot be read") {
		t.Errorf("message does not say what is wrong: %q", msg)
	}
	if strings.Contains(msg, "    at ") || strings.Contains(msg, ".js:") || strings.Contains(msg, "Error:") {
		t.Errorf("message reads like a stack trace: %q", msg)
	}
	waitNoJobs(t, p, 30*time.Second)
	if rows := pageRows(t, p); len(rows) != 0 {
		t.Errorf("a corrupt import left rows %+v", rows)
	}
	shot(t, p, "error")

	good := testutil.MixedData(1<<20, 9)
	chooseFile(t, p, fx.Add(t, "good.img", good))
	must(t, p.Click("#import-button"))
	if r := waitRow(t, p, "good", time.Minute); r.Checksum != crcBytes(good) {
		t.Errorf("import after the error: %+v, want checksum %s", r, crcBytes(good))
	}
	// The message can be dismissed with its button.
	must(t, p.Click("#messages .error button.dismiss"))
	must(t, p.WaitFor(`document.querySelectorAll("#messages .error").length === 0`, 30*time.Second, nil))
}

// watchMainThreadJS counts, from now on, what reaches the page's main
// thread: the messages it receives (window.__msgs) and the bytes of every
// ArrayBuffer, typed array or Blob in them (window.__msgBytes), and every
// read of a Blob or File on the main thread (window.__reads: FileReader,
// arrayBuffer, bytes, text, stream), and records the job list's DOM
// mutations (window.__updates).
const watchMainThreadJS = `window.__msgs = 0; window.__msgBytes = 0; window.__reads = [];
	window.__updates = 0;
	const binBytes = (v, depth) => {
		if (v === null || typeof v !== "object" || depth > 6) return 0;
		if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer === "function" && v instanceof SharedArrayBuffer)) return v.byteLength;
		if (ArrayBuffer.isView(v)) return v.byteLength;
		if (v instanceof Blob) return v.size;
		let n = 0;
		for (const k of Object.keys(v)) n += binBytes(v[k], depth + 1);
		return n;
	};
	const seen = new WeakSet();
	const data = Object.getOwnPropertyDescriptor(MessageEvent.prototype, "data");
	Object.defineProperty(MessageEvent.prototype, "data", { configurable: true, enumerable: data.enumerable,
		get() {
			const d = data.get.call(this);
			if (!seen.has(this)) { seen.add(this); window.__msgs++; window.__msgBytes += binBytes(d, 0); }
			return d;
		} });
	for (const [proto, names] of [[Blob.prototype, ["arrayBuffer", "bytes", "text", "stream"]],
		[FileReader.prototype, ["readAsArrayBuffer", "readAsBinaryString", "readAsDataURL", "readAsText"]]]) {
		for (const name of names) {
			const f = proto[name];
			if (typeof f !== "function") continue;
			proto[name] = function (...a) { window.__reads.push(name + " " + ((this && this.size) ?? (a[0] && a[0].size))); return f.apply(this, a); };
		}
	}
	new MutationObserver(() => window.__updates++).observe(document.querySelector("#jobs"), { subtree: true, childList: true, characterData: true });`

// TestPageImportResponsive imports a 1 GiB file through the page and checks
// what keeps the page responsive whatever the machine's speed: the page's
// main thread receives none of the file's bytes (the worker reads the
// File; only progress and the result come back, and the page never reads
// the file itself), the job row redraws at most ~10 times a second, and the
// page's disk worker answers other requests while the import runs. (How
// long the main thread's tasks take depends on the machine: `make bench`
// prints the long tasks of the same import, with its target.)
func TestPageImportResponsive(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	fx := newFixtures(t)
	const size = 1 << 30
	writes := map[int64][]byte{}
	for _, off := range []int64{0, 300 << 20, size - 4<<20} {
		b := make([]byte, 4<<20)
		rand.Read(b)
		writes[off] = b
	}
	path := filepath.Join(fx.Dir, "gig.img")
	writeSparse(t, path, size, writes)
	chooseFile(t, p, path)
	mustEval(t, p, watchMainThreadJS, nil)
	var t0 float64
	mustEval(t, p, `return performance.now();`, &t0)
	must(t, p.Click("#import-button"))
	// While the import runs (its job row shows bytes moving), the page's
	// DiskManager (window.aerodisk) asks its worker three times; each
	// answer must come back before the import is done.
	var answers []struct {
		Disks   int  `json:"disks"`
		Running bool `json:"running"`
	}
	mustEval(t, p, `const running = () => !!document.querySelector("#jobs .job") &&
			!document.querySelector('#disks tr[data-name="gig"]');
		const deadline = Date.now() + 60000;
		for (;;) {
			const b = document.querySelector("#jobs .job progress");
			if (b && b.value > 0) break;
			if (Date.now() > deadline) throw new Error("the import never showed progress");
			await H.sleep(20);
		}
		const out = [];
		for (let i = 0; i < 3; i++) {
			const l = await window.aerodisk.listDisks();
			out.push({ disks: l.length, running: running() });
		}
		return out;`, &answers)
	// Wait for the table row: that is the end of the import.
	r := waitRow(t, p, "gig", 5*time.Minute)
	var res struct {
		Msgs     int      `json:"msgs"`
		MsgBytes int64    `json:"msgBytes"`
		Reads    []string `json:"reads"`
		Updates  int      `json:"updates"`
		Now      float64  `json:"now"`
	}
	mustEval(t, p, `return { msgs: window.__msgs, msgBytes: window.__msgBytes, reads: window.__reads, updates: window.__updates, now: performance.now() };`, &res)
	secs := (res.Now - t0) / 1000
	t.Logf("1 GiB import: %.1f s, %d messages to the page (%d bytes of binary data), main-thread reads %q, %d DOM mutations in the job list; worker answers during it: %+v",
		secs, res.Msgs, res.MsgBytes, res.Reads, res.Updates, answers)
	if r.Checksum != sparseCRC(size, writes) {
		t.Errorf("checksum %s, want %s", r.Checksum, sparseCRC(size, writes))
	}
	if res.Msgs == 0 {
		t.Error("no message reached the page during the import: the watch saw nothing")
	}
	if res.MsgBytes != 0 || len(res.Reads) != 0 {
		t.Errorf("the page's main thread got file data during the import: %d bytes in messages, reads %q", res.MsgBytes, res.Reads)
	}
	for i, a := range answers {
		if !a.Running || a.Disks != 0 {
			t.Errorf("request %d during the import: %+v, want an answer (no disk yet) while the import still runs", i, a)
		}
	}
	// At most ~10 redraws a second (each redraw touches a few nodes).
	if max := int(secs*10*4) + 20; res.Updates > max {
		t.Errorf("%d DOM mutations in %.1f s: progress redraws too often", res.Updates, secs)
	}
}

// TestPageLayoutAndLabels checks the page at 1280×800 and 400 px wide (no
// sideways scrolling), that every control has an accessible name, and that
// a blank disk can be made with the keyboard alone.
func TestPageLayoutAndLabels(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	must(t, p.Click(`button.floppy[data-label="400K"]`))
	waitRow(t, p, "Blank 400K floppy", time.Minute)
	// Keyboard: focus the size field, type, press Enter to submit.
	must(t, p.TypeInto("#blank-size", "512 MB"))
	must(t, p.TypeInto("#blank-name", "Keyboard"))
	must(t, p.run(30*time.Second, chromedp.KeyEvent("\r")))
	if r := waitRow(t, p, "Keyboard", time.Minute); r.SizeTitle != "512,000,000 bytes" {
		t.Errorf("keyboard-made disk %+v", r)
	}

	var unnamed []string
	mustEval(t, p, `const out = [];
		for (const e of document.querySelectorAll("input, select, button, progress, meter")) {
			if (e.closest("dialog:not([open])")) continue;
			const name = (e.getAttribute("aria-label") || "").trim() || (e.labels && [...e.labels].map((l) => l.textContent).join(" ").trim())
				|| (e.tagName === "BUTTON" && e.textContent.trim());
			if (!name) out.push(e.outerHTML.slice(0, 120));
		}
		return out;`, &unnamed)
	if len(unnamed) != 0 {
		t.Errorf("controls without an accessible name: %q", unnamed)
	}
	for _, w := range []int64{1280, 400} {
		must(t, p.SetViewport(w, 800))
		var sw struct{ Scroll, Client int64 }
		// Two animation frames: the new viewport is laid out and painted.
		mustEval(t, p, `for (let i = 0; i < 2; i++) await new Promise((r) => requestAnimationFrame(r));
			const d = document.documentElement; return { Scroll: d.scrollWidth, Client: d.clientWidth };`, &sw)
		if sw.Scroll > sw.Client || sw.Client > w {
			t.Errorf("at %d px wide the page is %d px wide in a %d px window (sideways scrolling)", w, sw.Scroll, sw.Client)
		}
		shot(t, p, fmt.Sprintf("%dpx", w))
	}
}

// TestPageDragAndDrop drops a file on the import box (a DragEvent carrying
// a File, as a drop from the desktop delivers) and imports it.
func TestPageDragAndDrop(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	fx := newFixtures(t)
	data := testutil.MixedData(2<<20+512, 17)
	fx.Add(t, "dropped.img", data)
	mustEval(t, p, `const f = await H.fixture(args[0], "dropped.img");
		const dt = new DataTransfer(); dt.items.add(f);
		const zone = document.querySelector("#drop-zone");
		const over = new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true });
		zone.dispatchEvent(over);
		if (!over.defaultPrevented) throw new Error("the drop zone does not accept files");
		zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));`, nil, fx.URLPath("dropped.img"))
	waitText(t, p, "#import-chosen", "dropped.img", 30*time.Second)
	must(t, p.Click("#import-button"))
	if r := waitRow(t, p, "dropped", time.Minute); r.Checksum != crcBytes(data) || r.SizeTitle != fmt.Sprintf("%s bytes", "2,097,664") {
		t.Errorf("dropped import %+v, want checksum %s", r, crcBytes(data))
	}
}

// TestPageShowsRecovery: after the catalog was lost, the page says that
// the disks were recovered (and that nothing was deleted), and marks the
// recovered disk in the table.
func TestPageShowsRecovery(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	must(t, p.Click(`button.floppy[data-label="720K"]`))
	old := waitRow(t, p, "Blank 720K floppy", time.Minute)
	var hidden bool
	mustEval(t, p, `return document.querySelector("#recovery").hidden;`, &hidden)
	if !hidden {
		t.Error("a recovery notice on a healthy start")
	}
	mustEval(t, p, `await H.setCatalogFile("metadata.json", ""); await H.setCatalogFile("metadata.json.prev", null);`, nil)
	must(t, p.Reload())
	waitReady(t, p)
	text := waitText(t, p, "#recovery", "Nothing was deleted", 30*time.Second)
	if !strings.Contains(text, "1 disk was recovered from its file") {
		t.Errorf("recovery notice %q", text)
	}
	var badge string
	mustEval(t, p, `const b = document.querySelector("#disks tbody tr .badge.recovered"); return b ? b.closest("tr").dataset.id : "";`, &badge)
	if badge != old.ID {
		t.Errorf("recovered badge on row %q, want %q", badge, old.ID)
	}
	if rows := pageRows(t, p); len(rows) != 1 || rows[0].Size != old.Size {
		t.Errorf("rows after recovery: %+v (was %+v)", rows, old)
	}
}

// TestSizeWordsAgree checks that the page prints a size with the same
// words as the engine's messages and the command line (sizefmt.Human;
// docs/units.md), across every unit and at the rounding edges.
func TestSizeWordsAgree(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	sizes := []int64{0, 1, 512, 999, 1000, 1023, 1024, 1536, 9_995, 99_949, 99_950, 999_499, 999_500,
		1_474_560, 1 << 20, 1_500_000_256, 999_999_999, 1 << 30, 60e9, 60 << 30, 2 << 40, 999_500_000_000_000, 1 << 50}
	for i := int64(1); i < 1<<53; i = i*7 + 3 {
		sizes = append(sizes, i)
	}
	var page []string
	mustEval(t, p, `const ui = await import(new URL("web/ui.js", location.href).href);
		return args[0].map((n) => ui.formatBytes(n));`, &page, sizes)
	if len(page) != len(sizes) {
		t.Fatalf("page printed %d sizes for %d", len(page), len(sizes))
	}
	for i, n := range sizes {
		if want := sizefmt.Human(n); page[i] != want {
			t.Errorf("%d bytes: the page prints %q, the engine %q", n, page[i], want)
		}
	}
}

// TestPageLayers: a person makes an overlay of a disk, sees the chain, takes
// a checkpoint, restores it, reverts, and is told why the base cannot be
// deleted. A second DiskManager in the page plays the machine writing the
// overlay.
func TestPageLayers(t *testing.T) {
	parallel(t)
	_, p := openApp(t)
	must(t, p.Click(`button.floppy[data-label="720K"]`))
	base := waitRow(t, p, "Blank 720K floppy", time.Minute)
	must(t, p.Click(rowSel("Blank 720K floppy", `button[data-action="overlay"]`)))
	ov := waitRow(t, p, "Blank 720K floppy (overlay)", 30*time.Second)
	waitText(t, p, fmt.Sprintf(`#disks tr[data-id=%q] .chain`, ov.ID), "overlay of “Blank 720K floppy” · 1 layer", 30*time.Second)
	waitText(t, p, fmt.Sprintf(`#disks tr[data-id=%q] .chain`, base.ID), "base of 1 overlay", 30*time.Second)

	// The machine writes the overlay.
	machine := func(fill int) {
		t.Helper()
		mustEval(t, p, `const { DiskManager } = await import(new URL("web/disk_manager.js", location.href).href);
			const m = await DiskManager.open();
			const dev = await m.openDisk(args[0], { writable: true });
			await dev.write(0, new Uint8Array(4096).fill(args[1]));
			await dev.close();
			await m.close();`, nil, ov.ID, fill)
	}
	readFirst := func() int {
		t.Helper()
		var b int
		mustEval(t, p, `const { DiskManager } = await import(new URL("web/disk_manager.js", location.href).href);
			const m = await DiskManager.open();
			const dev = await m.openDisk(args[0]);
			const b = (await dev.read(0, 512))[0];
			await dev.close();
			await m.close();
			return b;`, &b, ov.ID)
		return b
	}
	machine(1)

	must(t, p.Click(rowSel("Blank 720K floppy (overlay)", `button[data-action="checkpoints"]`)))
	waitText(t, p, "#checkpoints-title", "Checkpoints of “Blank 720K floppy (overlay)”", 30*time.Second)
	must(t, p.TypeInto("#checkpoint-name", "clean install"))
	must(t, p.Click("#checkpoint-take"))
	waitText(t, p, "#checkpoints-list li .checkpoint-name", "clean install", 30*time.Second)
	shot(t, p, "checkpoints-dialog")
	must(t, p.Click("#checkpoints-close"))
	machine(2)
	if b := readFirst(); b != 2 {
		t.Fatalf("the overlay reads %d after the second write", b)
	}
	// A stale checksum is shown.
	waitText(t, p, fmt.Sprintf(`#disks tr[data-id=%q] .stale`, ov.ID), "changed since checksum", 30*time.Second)

	must(t, p.Click(rowSel("Blank 720K floppy (overlay)", `button[data-action="checkpoints"]`)))
	waitText(t, p, "#checkpoints-list li .checkpoint-name", "clean install", 30*time.Second)
	must(t, p.Click(`#checkpoints-list li button[data-action="cp-restore"]`))
	waitText(t, p, "#status", "“Blank 720K floppy (overlay)” is back at checkpoint “clean install”.", 30*time.Second)
	must(t, p.Click("#checkpoints-close"))
	if b := readFirst(); b != 1 {
		t.Fatalf("the overlay reads %d after restoring the checkpoint, want 1", b)
	}

	must(t, p.Click(rowSel("Blank 720K floppy (overlay)", `button[data-action="revert"]`)))
	waitText(t, p, "#confirm-title", "Revert “Blank 720K floppy (overlay)”?", 30*time.Second)
	must(t, p.Click("#confirm-ok"))
	waitText(t, p, "#status", "Reverted “Blank 720K floppy (overlay)”.", 30*time.Second)
	if b := readFirst(); b != 0 {
		t.Fatalf("the overlay reads %d after revert, want the base's 0", b)
	}

	// Import delta: the checkpoint's changes, exported, come back through
	// the base's row as a new overlay that reads them.
	var delta string
	mustEval(t, p, `const { DiskManager } = await import(new URL("web/disk_manager.js", location.href).href);
		const m = await DiskManager.open();
		const [cp] = await m.listCheckpoints(args[0]);
		const bytes = new Uint8Array(await new Response(await m.exportDelta(args[0], { checkpointId: cp.id })).arrayBuffer());
		await m.close();
		let s = "";
		for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
		return btoa(s);`, &delta, ov.ID)
	raw, err := base64.StdEncoding.DecodeString(delta)
	if err != nil || len(raw) == 0 {
		t.Fatalf("the delta: %d bytes, %v", len(raw), err)
	}
	deltaPath := filepath.Join(t.TempDir(), "clean install.aerodelta")
	if err := os.WriteFile(deltaPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	must(t, p.Click(rowSel("Blank 720K floppy", `button[data-action="import-delta"]`)))
	must(t, p.SetFiles("#delta-file", deltaPath))
	waitText(t, p, "#status", "from the delta “clean install.aerodelta”: an overlay of “Blank 720K floppy”.", 30*time.Second)
	var fromDelta []int
	mustEval(t, p, `const { DiskManager } = await import(new URL("web/disk_manager.js", location.href).href);
		const m = await DiskManager.open();
		const out = [];
		for (const d of await m.listDisks()) {
			if (d.parentId !== args[0] || d.id === args[1]) continue;
			const dev = await m.openDisk(d.id);
			out.push((await dev.read(0, 512))[0]);
			await dev.close();
		}
		await m.close();
		return out;`, &fromDelta, base.ID, ov.ID)
	if len(fromDelta) != 1 || fromDelta[0] != 1 {
		t.Fatalf("overlays made from the delta read %v at byte 0, want one reading 1", fromDelta)
	}

	must(t, p.Click(rowSel("Blank 720K floppy", `button[data-action="delete"]`)))
	must(t, p.Click("#confirm-ok"))
	msg := waitText(t, p, "#messages .error", "is the base of the overlays “clean install” and “Blank 720K floppy (overlay)”", 30*time.Second)
	t.Logf("message: %q", msg)
	if n := len(pageRows(t, p)); n != 3 {
		t.Fatalf("%d rows after a refused delete", n)
	}
}
