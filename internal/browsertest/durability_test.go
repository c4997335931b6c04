package browsertest

// The durability rules (docs/browser.md, "Durability") in the real browser,
// on both backends: two tabs racing, tabs crashed by CDP, tampered
// catalogs, aborts at random moments. Every test checks the one rule —
// nothing is deleted on absence of evidence, and every acknowledged disk
// reads back right.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"aerodisk/internal/testutil"
)

// libraryJS makes three disks in dm — a raw disk kept as is, one imported
// converted (AEROSPAR on OPFS) and a blank one — and returns
// [{id, name, fileName, crc}], crc being what each must export.
const libraryJS = `const out = [];
	const a = await dm.importDisk(new File([H.randomBytes(1 << 20, 1)], "alpha.img"));
	const b = await dm.importDiskConverted(new File([H.randomBytes(3 << 19, 2)], "beta.img"));
	const c = await dm.createBlankDisk({ name: "gamma", sizeBytes: 1 << 20 });
	for (const d of [a, b, c]) out.push({ id: d.id, name: d.name, fileName: d.fileName, crc: d.checksum.value });
	return out;`

type libDisk struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	FileName string `json:"fileName"`
	CRC      string `json:"crc"`
}

// checkLibrary fails unless every disk of lib is listed in p and exports
// its content.
func checkLibrary(t *testing.T, p *Page, lib []libDisk) {
	t.Helper()
	var got []struct {
		ID  string `json:"id"`
		CRC string `json:"crc"`
	}
	mustEval(t, p, `const listed = new Set((await dm.listDisks()).map((d) => d.id));
		const out = [];
		for (const d of args[0]) out.push({ id: d.id, crc: listed.has(d.id) ? await H.crc32Of(dm, d.id) : "not listed" });
		return out;`, &got, lib)
	for i, g := range got {
		if g.CRC != lib[i].CRC {
			t.Errorf("disk %s (%s): %s, want CRC %s", lib[i].Name, g.ID, g.CRC, lib[i].CRC)
		}
	}
}

// storedNames are the names of what the backend stores per disk.
func storedNames(t *testing.T, p *Page) []string {
	t.Helper()
	var names []string
	for _, e := range storedFiles(t, p) {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names
}

// checkKept fails if a stored file of before is gone.
func checkKept(t *testing.T, p *Page, before []string) {
	t.Helper()
	now := storedNames(t, p)
	for _, n := range before {
		if !slices.Contains(now, n) {
			t.Errorf("stored file %s is gone (store now holds %q)", n, now)
		}
	}
}

type openReport struct {
	Recovery *struct {
		Reason    string `json:"reason"`
		From      string `json:"from"`
		Recovered []struct {
			ID string `json:"id"`
		} `json:"recovered"`
		Unlisted []string `json:"unlisted"`
	} `json:"recovery"`
	Finished []string `json:"finished"`
	Swept    []string `json:"swept"`
	Notes    []string `json:"notes"`
}

// TestTwoTabsOpenDuringRenames: tab A renames its disks as fast as it can
// while tab B opens a DiskManager 100 times. Every open lists every disk
// and recovers nothing; no file is lost. Tab B starts once A's renames are
// under way, and between two opens at least one rename has completed
// (B waits for one if need be: A tells B of each over a BroadcastChannel),
// whatever the two tabs' speeds.
func TestTwoTabsOpenDuringRenames(t *testing.T) { eachBackend(t, testTwoTabsOpenDuringRenames) }

func testTwoTabsOpenDuringRenames(t *testing.T, be string) {
	s, pa := openDMOn(t, be)
	var lib []libDisk
	mustEval(t, pa, libraryJS, &lib)
	before := storedNames(t, pa)
	pb := newPage(t, s, "tab-b")
	// B listens before A starts, so it hears A's first rename.
	mustEval(t, pb, `globalThis.renamed = 0; globalThis.renamedWaiters = [];
		new BroadcastChannel("renamed").onmessage = (e) => { renamed = e.data; for (const w of renamedWaiters.splice(0)) w(); };`, nil)
	var wg sync.WaitGroup
	var renames int
	var renameErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		renameErr = pa.Eval(`const stop = new BroadcastChannel("stop-renames"); let stopped = false;
			stop.onmessage = () => { stopped = true; };
			const renamed = new BroadcastChannel("renamed");
			let i = 0;
			while (!stopped) { await dm.renameDisk(args[0][i % 3].id, "renamed " + i); i++; renamed.postMessage(i); }
			return i;`, &renames, lib)
	}()
	var res struct {
		Opens    int      `json:"opens"`
		Problems []string `json:"problems"`
	}
	mustEval(t, pb, `const { DiskManager } = await import("/web/disk_manager.js");
		const problems = [];
		let opens = 0;
		// A rename after the one seen last: tab A is renaming (a generous
		// deadline for what must happen).
		const renamedAfter = async (n) => {
			const deadline = Date.now() + 60000;
			while (renamed <= n) {
				if (Date.now() > deadline) throw new Error("tab A did no rename in 60 s (after " + n + ")");
				await Promise.race([new Promise((r) => renamedWaiters.push(r)), H.sleep(1000)]);
			}
			return renamed;
		};
		try {
			let seen = await renamedAfter(0);
			for (; opens < 100; opens++) {
				if (opens > 0) seen = await renamedAfter(seen);
				let d;
				try {
					d = await DiskManager.open({ backend: H.backend });
					if ((d.openReport || {}).recovery) problems.push("open " + opens + " recovered: " + JSON.stringify(d.openReport.recovery));
					const l = await d.listDisks();
					if (l.length !== 3) problems.push("open " + opens + " lists " + l.length + " disks");
					for (const x of args[0]) await d.getDisk(x.id);
				} catch (e) {
					problems.push("open " + opens + ": " + e.name + ": " + e.message);
				} finally {
					if (d) d.close();
				}
			}
		} finally {
			new BroadcastChannel("stop-renames").postMessage(1);
		}
		return { opens, problems };`, &res, lib)
	wg.Wait()
	if renameErr != nil {
		t.Fatal(renameErr)
	}
	t.Logf("%d opens against %d renames", res.Opens, renames)
	for _, p := range res.Problems {
		t.Error(p)
	}
	if res.Opens != 100 || renames < res.Opens {
		t.Errorf("%d opens against %d renames: want 100 opens, a rename between each two", res.Opens, renames)
	}
	checkKept(t, pa, before)
	checkLibrary(t, pa, lib)
}

// TestTwoTabsImportsAgainstOpens: tab B imports 40 files while tab A opens
// a DiskManager 40 times (each open sweeps). Every import B was told about
// is listed with its file and reads back right.
func TestTwoTabsImportsAgainstOpens(t *testing.T) { eachBackend(t, testTwoTabsImportsAgainstOpens) }

func testTwoTabsImportsAgainstOpens(t *testing.T, be string) {
	s, pb := openDMOn(t, be)
	pa := newPage(t, s, "tab-a")
	var wg sync.WaitGroup
	var openErr error
	var opens struct {
		Opens int      `json:"opens"`
		Swept []string `json:"swept"`
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		openErr = pa.Eval(`const { DiskManager } = await import("/web/disk_manager.js");
			const swept = [];
			let n = 0;
			for (; n < 40; n++) {
				const d = await DiskManager.open({ backend: H.backend });
				swept.push(...((d.openReport || {}).swept || []));
				d.close();
			}
			return { opens: n, swept };`, &opens)
	}()
	var imported []libDisk
	mustEval(t, pb, `const out = [];
		for (let i = 0; i < 40; i++) {
			const bytes = H.randomBytes((256 << 10) + 512 * i, 100 + i);
			const f = new File([bytes], "file-" + i + ".img");
			const d = await (i % 2 ? dm.importDiskConverted(f) : dm.importDisk(f));
			out.push({ id: d.id, name: d.name, fileName: d.fileName, crc: H.crc32(bytes) });
		}
		return out;`, &imported)
	wg.Wait()
	if openErr != nil {
		t.Fatal(openErr)
	}
	t.Logf("40 imports against %d opens (swept %q)", opens.Opens, opens.Swept)
	if len(opens.Swept) > 0 {
		t.Errorf("the opens swept %q while the imports ran in a live tab", opens.Swept)
	}
	pc := newPage(t, s, "tab-c")
	mustEval(t, pc, `await H.open();`, nil)
	checkLibrary(t, pc, imported)
	if n := len(listDisks(t, pc)); n != 40 {
		t.Errorf("%d disks listed after 40 imports", n)
	}
	stored := map[string]bool{}
	for _, s := range diskFiles(t, pc) {
		stored[s] = true
	}
	for _, d := range imported {
		if !stored[d.ID] {
			t.Errorf("import %s is listed without its file", d.Name)
		}
	}
}

// TestTwoTabsDeletesAgainstExports: tab A deletes disks while tab B exports
// and verifies them. B reads either the right bytes or a NotFoundError or
// InUseError, never wrong data; A's deletes are refused only as InUseError.
func TestTwoTabsDeletesAgainstExports(t *testing.T) { eachBackend(t, testTwoTabsDeletesAgainstExports) }

func testTwoTabsDeletesAgainstExports(t *testing.T, be string) {
	s, pa := openDMOn(t, be)
	var lib []libDisk
	mustEval(t, pa, `const out = [];
		for (let i = 0; i < 8; i++) {
			const bytes = H.randomBytes(2 << 20, 200 + i);
			const f = new File([bytes], "d" + i + ".img");
			const d = await (i % 2 ? dm.importDiskConverted(f) : dm.importDisk(f));
			out.push({ id: d.id, name: d.name, fileName: d.fileName, crc: H.crc32(bytes) });
		}
		return out;`, &lib)
	pb := newPage(t, s, "tab-b")
	mustEval(t, pb, `await H.open();`, nil)
	var wg sync.WaitGroup
	var readErr error
	var reads []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		readErr = pb.Eval(`const out = [];
			for (let round = 0; round < 6; round++) {
				for (const d of args[0]) {
					const crc = await H.crc32Of(dm, d.id);
					out.push(crc === d.crc ? "ok" : crc === "NotFoundError" || crc === "InUseError" ? crc : "WRONG " + d.name + " " + crc);
					try {
						const v = await dm.verifyDisk(d.id);
						out.push(v.ok ? "ok" : "WRONG verify " + d.name + " " + JSON.stringify(v));
					} catch (e) {
						out.push(e.name === "NotFoundError" || e.name === "InUseError" ? e.name : "WRONG " + e.name + ": " + e.message);
					}
				}
			}
			return out;`, &reads, lib)
	}()
	var dels []string
	mustEval(t, pa, `const out = [];
		await H.sleep(30);
		for (const d of args[0]) {
			for (;;) {
				try { await dm.deleteDisk(d.id); out.push("deleted"); break; }
				catch (e) { if (e.name !== "InUseError") { out.push(e.name + ": " + e.message); break; } out.push("in use"); await H.sleep(5); }
			}
			await H.sleep(20);
		}
		return out;`, &dels, lib)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	counts := map[string]int{}
	for _, r := range append(reads, dels...) {
		counts[r]++
		if strings.HasPrefix(r, "WRONG") || strings.Contains(r, ":") {
			t.Error(r)
		}
	}
	t.Logf("outcomes: %v", counts)
	if n := len(listDisks(t, pa)); n != 0 {
		t.Errorf("%d disks left after deleting them all", n)
	}
}

// TestTabCrashes crashes the tab (CDP Page.crash, which kills its renderer
// and its workers without cleanup) at random moments while it imports,
// renames, deletes and creates disks; after each crash a new tab carries
// on. At the end every disk whose operation the tab had acknowledged is
// listed and reads back right, deleted ones are gone, and nothing is left
// pending. Its tabs crash in a browser of its own: each tab has a renderer
// process of its own today (a crash leaves the other tabs running, those
// of its origin too), but chromium puts tabs of one site (127.0.0.1, any
// port) into one process once it reaches its process limit, which is
// lower on smaller machines.
func TestTabCrashes(t *testing.T) { eachBackend(t, testTabCrashes) }

func testTabCrashes(t *testing.T, be string) {
	requireWasm(t)
	s := ownSession(t)
	s.Backend = be
	rng := rand.New(rand.NewPCG(uint64(len(be)), 7))
	acked := map[string]libDisk{} // id → the disk as last acknowledged
	deleted := map[string]bool{}
	crashes, ops, interrupted, swept, finished := 0, 0, 0, 0, 0
	// The crash comes 50–950 ms into a round, times scale: a round in which
	// no operation was acknowledged (a busy machine) doubles scale, so that
	// both outcomes keep occurring however fast the machine is.
	scale := 1.0
	for round := range 10 {
		opsBefore := ops
		p := newPage(t, s, fmt.Sprint("tab-", round))
		var rep openReport
		mustEval(t, p, `return (await H.open()).openReport;`, &rep)
		swept += len(rep.Swept)
		finished += len(rep.Finished)
		delay := time.Duration(float64(50+rng.IntN(900))*scale) * time.Millisecond
		crashed := make(chan struct{})
		go func() {
			time.Sleep(delay)
			p.Crash()
			close(crashed)
		}()
		for i := 0; ; i++ {
			select {
			case <-crashed:
			default:
				var d libDisk
				seed := round*100 + i
				var err error
				switch i % 4 {
				case 0, 1:
					err = p.Eval(`const bytes = H.randomBytes(args[0], args[1]);
						const f = new File([bytes], "crash-" + args[1] + ".img");
						const d = await (args[2] ? dm.importDiskConverted(f) : dm.importDisk(f));
						return { id: d.id, name: d.name, fileName: d.fileName, crc: H.crc32(bytes) };`, &d, (4<<20)+512*seed, seed, i%4 == 1)
				case 2:
					for id, x := range acked {
						x.Name = fmt.Sprint("renamed ", seed)
						if err = p.Eval(`await dm.renameDisk(args[0], args[1]);`, nil, id, x.Name); err == nil {
							d = x
						}
						break
					}
				case 3:
					for id := range acked {
						// Deleted or not, a disk whose delete was cut short
						// is no longer required to be there.
						delete(acked, id)
						if err = p.Eval(`await dm.deleteDisk(args[0]);`, nil, id); err == nil {
							deleted[id] = true
						}
						break
					}
				}
				if err == nil {
					ops++
					if d.ID != "" {
						acked[d.ID] = d
					}
					continue
				}
				if je, ok := err.(*JSError); ok {
					t.Fatalf("round %d op %d: %v", round, i, je) // a real failure, not the crash
				}
				interrupted++
			}
			break
		}
		<-crashed
		crashes++
		if ops == opsBefore {
			scale = min(scale*2, 16)
		}
	}
	p := newPage(t, s, "after")
	var rep openReport
	mustEval(t, p, `return (await H.open()).openReport;`, &rep)
	swept += len(rep.Swept)
	finished += len(rep.Finished)
	t.Logf("%d crashes, %d acknowledged operations, %d cut short; the opens after them swept %d pending imports and finished %d commits",
		crashes, ops, interrupted, swept, finished)
	if interrupted == 0 {
		t.Error("no crash cut an operation short")
	}
	want := []libDisk{}
	for _, d := range acked {
		want = append(want, d)
	}
	checkLibrary(t, p, want)
	for _, d := range listDisks(t, p) {
		if deleted[d.ID] {
			t.Errorf("a deleted disk is listed again: %+v", d)
		}
	}
	var pending []string
	mustEval(t, p, `return H.pendingLeft();`, &pending)
	if len(pending) > 0 {
		t.Errorf("pending files left after an open: %q", pending)
	}
}

// TestAbortRace aborts 50 imports at random moments from before the first
// byte to after the last: each either rejects with AbortError and leaves
// nothing, or resolved before abort() was called; the catalog holds exactly
// the resolved ones. The range of abort moments follows how long an import
// takes at the time, so both outcomes occur however fast the machine is.
func TestAbortRace(t *testing.T) { eachBackend(t, testAbortRace) }

func testAbortRace(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	var res struct {
		Typical  float64  `json:"typical"`
		Outcomes []string `json:"outcomes"`
		Problems []string `json:"problems"`
		Resolved []string `json:"resolved"`
	}
	mustEval(t, p, `const bytes = H.randomBytes(8 << 20, 9); // two 4 MiB chunks
		const files = [0, 1].map((i) => new File([bytes], "race-" + i + ".img"));
		// The time one import takes here sets the range of abort times.
		let t0 = performance.now();
		await dm.deleteDisk((await dm.importDisk(files[0])).id);
		t0 = performance.now();
		await dm.deleteDisk((await dm.importDiskConverted(files[1])).id);
		const first = performance.now() - t0;
		// It follows the machine's load as the imports go: each resolved
		// import's time counts for half, and four aborted in a row (all
		// cut short: the imports got slower) stretch it by half.
		let typical = first, abortedInARow = 0;
		let seed = 12345;
		const rand = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32; };
		const outcomes = [], problems = [], resolved = [];
		for (let i = 0; i < 50; i++) {
			const ac = new AbortController();
			let abortedAt = Infinity, settledAt = 0;
			const startedAt = performance.now();
			const timer = setTimeout(() => { abortedAt = performance.now(); ac.abort(); }, rand() * typical * 1.3);
			const method = i % 2 ? "importDiskConverted" : "importDisk";
			try {
				const d = await dm[method](files[i % 2], { name: "race " + i, signal: ac.signal });
				settledAt = performance.now();
				if (settledAt > abortedAt) problems.push("import " + i + " resolved after abort()");
				resolved.push(d.id);
				outcomes.push("resolved");
				typical = (typical + settledAt - startedAt) / 2;
				abortedInARow = 0;
			} catch (e) {
				settledAt = performance.now();
				if (e.name !== "AbortError") problems.push("import " + i + ": " + e.name + ": " + e.message);
				outcomes.push(e.name);
				if (++abortedInARow === 4) { typical *= 1.5; abortedInARow = 0; }
			}
			clearTimeout(timer);
		}
		const listed = (await dm.listDisks()).map((d) => d.id).sort();
		if (JSON.stringify(listed) !== JSON.stringify([...resolved].sort()))
			problems.push("listed " + JSON.stringify(listed) + " but resolved " + JSON.stringify(resolved));
		return { typical: first, outcomes, problems, resolved };`, &res)
	counts := map[string]int{}
	for _, o := range res.Outcomes {
		counts[o]++
	}
	t.Logf("one import takes %.0f ms; outcomes %v", res.Typical, counts)
	for _, pr := range res.Problems {
		t.Error(pr)
	}
	if counts["AbortError"] == 0 || counts["resolved"] == 0 {
		t.Errorf("the abort times did not cover both outcomes: %v", counts)
	}
	// Nothing else is stored: exactly the resolved disks' files, nothing pending.
	var pending []string
	mustEval(t, p, `return H.pendingLeft();`, &pending)
	if len(pending) > 0 {
		t.Errorf("pending files after the race: %q", pending)
	}
	ids := diskFiles(t, p)
	sort.Strings(ids)
	want := slices.Clone(res.Resolved)
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		t.Errorf("stored %q, want exactly the resolved %q", ids, want)
	}
}

// tamperCase damages the stored catalog of a library (JS with args[0] =
// the library, args[1] = the metadata.json text) and says what the next
// open must do.
type tamperCase struct {
	name    string
	be      string // "" both backends
	js      string
	errName string // the open fails with this name and changes nothing
	recover bool   // the open reports a recovery
	notes   bool   // the open reports notes (parts it could not use)
	deletes []string
}

var tamperCases = []tamperCase{
	{name: "zero bytes", be: "opfs", js: `await H.setCatalogFile("metadata.json", "");`, recover: true},
	{name: "whitespace", be: "opfs", js: `await H.setCatalogFile("metadata.json", " \n ");`, recover: true},
	{name: "empty object", be: "opfs", js: `await H.setCatalogFile("metadata.json", "{}");`, recover: true},
	{name: "null", be: "opfs", js: `await H.setCatalogFile("metadata.json", "null");`, recover: true},
	{name: "disks null", be: "opfs", js: `await H.setCatalogFile("metadata.json", '{"version":2,"disks":null}');`, recover: true},
	{name: "truncated JSON", be: "opfs", js: `await H.setCatalogFile("metadata.json", args[1].slice(0, args[1].length >> 1));`, recover: true},
	{name: "missing", be: "opfs", js: `await H.setCatalogFile("metadata.json", null);`, recover: true},
	{name: "missing with an empty tmp, no previous", be: "opfs", js: `await H.setCatalogFile("metadata.json", null);
		await H.setCatalogFile("metadata.json.prev", null); await H.setCatalogFile("metadata.json.tmp", "");`, recover: true},
	{name: "missing with a stale tmp", be: "opfs", js: `const c = JSON.parse(args[1]); delete c.disks[args[0][1].id]; delete c.disks[args[0][2].id];
		await H.setCatalogFile("metadata.json", null); await H.setCatalogFile("metadata.json.prev", null);
		await H.setCatalogFile("metadata.json.tmp", JSON.stringify(c));`, recover: true},
	{name: "newer version", be: "opfs", js: `const c = JSON.parse(args[1]); c.version = 3; await H.setCatalogFile("metadata.json", JSON.stringify(c));`, errName: "UnsupportedFormatError"},
	{name: "wrong types in a record", be: "opfs", js: `const c = JSON.parse(args[1]); Object.assign(c.disks[args[0][0].id], { name: 42, sizeBytes: "big" });
		await H.setCatalogFile("metadata.json", JSON.stringify(c));`},
	{name: "a record that is not an object", be: "opfs", js: `const c = JSON.parse(args[1]); c.disks.junk = 5; await H.setCatalogFile("metadata.json", JSON.stringify(c));`, notes: true},
	{name: "mounts of the wrong type", be: "opfs", js: `const c = JSON.parse(args[1]); c.mounts = { hddId: 7, cdId: ["x"] }; await H.setCatalogFile("metadata.json", JSON.stringify(c));`, notes: true},
	{name: "bad file names and a twin", be: "opfs", js: `const c = JSON.parse(args[1]);
		const rec = (id, fileName) => ({ id, name: id, backend: "opfs", kind: "hdd", format: "raw", fileName, sizeBytes: 1 << 20, checksum: null });
		c.disks.meta = rec("meta", "metadata.json"); c.disks.escape = rec("escape", "../../x.img");
		c.disks.twin = rec("twin", args[0][0].fileName); c.disks.ghost = rec("ghost", "ghost.img");
		await H.setCatalogFile("metadata.json", JSON.stringify(c));`, deletes: []string{"meta", "escape", "twin", "ghost"}},
	{name: "records gone", be: "idb", js: `await H.idbSetRecords([]);`, recover: true},
	{name: "wrong types in a record", be: "idb", js: `const r = await H.idbRecords(); Object.assign(r.find((x) => x.id === args[0][0].id), { name: 42, sizeBytes: "big" });
		await H.idbSetRecords(r);`},
	{name: "mounts of the wrong type", be: "idb", js: `await H.idbSetMounts({ hddId: 7, cdId: ["x"] });`, notes: true},
	{name: "bad file names and a twin", be: "idb", js: `const r = await H.idbRecords();
		const rec = (id, fileName) => ({ id, name: id, backend: "idb", kind: "hdd", format: "raw", fileName, sizeBytes: 1 << 20, checksum: null });
		r.push(rec("meta", "metadata.json"), rec("escape", "../../x.img"), rec("twin", args[0][0].fileName), rec("ghost", "ghost.img"));
		await H.idbSetRecords(r);`, deletes: []string{"meta", "escape", "twin", "ghost"}},
}

// TestTamperedCatalogs damages the stored catalog every way the issue
// lists and opens a new manager: nothing is deleted; the disks are listed
// and read back (recovered where the catalog was unusable, and the page
// is told), or the open is refused by name; bad records can be deleted
// without touching any other file.
func TestTamperedCatalogs(t *testing.T) { eachBackend(t, testTamperedCatalogs) }

func testTamperedCatalogs(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	for _, tc := range tamperCases {
		if tc.be != be {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			var lib []libDisk
			mustEval(t, p, `if (globalThis.dm) dm.close(); await H.resetStorage(); await H.open();`+libraryJS, &lib)
			var meta string
			mustEval(t, p, `dm.close(); return H.backend === "idb" ? "" : await H.opfsRead("aero/disks", "metadata.json");`, &meta)
			mustEval(t, p, tc.js, nil, lib, meta)
			before := storedNames(t, p)
			var tree0 []string
			mustEval(t, p, `return H.storeTree();`, &tree0)
			var r struct {
				Err    *JSError   `json:"err"`
				Report openReport `json:"report"`
			}
			mustEval(t, p, `try { return { report: (await H.open()).openReport }; }
				catch (e) { return { err: { name: e.name, message: e.message } }; }`, &r)
			checkKept(t, p, before)
			if tc.errName != "" {
				if r.Err == nil || r.Err.Name != tc.errName {
					t.Fatalf("open: %+v, want %s", r.Err, tc.errName)
				}
				t.Logf("refused: %s", r.Err.Message)
				var tree []string
				mustEval(t, p, `return H.storeTree();`, &tree)
				var now string
				mustEval(t, p, `return H.opfsRead("aero/disks", "metadata.json");`, &now)
				if !slices.Equal(tree, tree0) {
					t.Errorf("a refused open changed the store: %q, was %q", tree, tree0)
				}
				return
			}
			if r.Err != nil {
				t.Fatalf("open: %+v", r.Err)
			}
			if tc.recover != (r.Report.Recovery != nil) {
				t.Errorf("recovery %+v, want one: %v", r.Report.Recovery, tc.recover)
			}
			if tc.notes != (len(r.Report.Notes) > 0) {
				t.Errorf("notes %q, want some: %v", r.Report.Notes, tc.notes)
			}
			t.Logf("report %+v", r.Report)
			want := lib
			if be == "idb" && tc.recover {
				want = lib[:2] // a blank disk on IndexedDB is a record and nothing else
			}
			checkLibrary(t, p, want)
			for _, id := range tc.deletes {
				mustEval(t, p, `await dm.deleteDisk(args[0]);`, nil, id)
			}
			checkKept(t, p, before)
			checkLibrary(t, p, want)
			if len(tc.deletes) > 0 {
				if n := len(listDisks(t, p)); n != len(lib) {
					t.Errorf("%d disks listed after deleting the bad records, want %d", n, len(lib))
				}
			}
		})
	}
}

// TestSweepOnlyOwnGarbage: opening removes a dead tab's pending import and
// nothing else — not files no record names (another tool's, or a lost
// catalog's, which are recovered as disks when there is no catalog), not
// an import running in another tab.
func TestSweepOnlyOwnGarbage(t *testing.T) { eachBackend(t, testSweepOnlyOwnGarbage) }

func testSweepOnlyOwnGarbage(t *testing.T, be string) {
	requireWasm(t)
	s := sharedSession(t)
	s.Backend = be
	p := newPage(t, s, "page1")
	// Files with no catalog at all: a lost catalog's disks.
	var rep openReport
	mustEval(t, p, `await H.plantOrphan("0b1e9f3c-dead-4bad-8bad-000000000001", "img", new Uint8Array(1 << 20).fill(7));
		await H.plantOrphan("0b1e9f3c-dead-4bad-8bad-000000000002", "aerospar", "not a real header");
		return (await H.open()).openReport;`, &rep)
	if rep.Recovery == nil || len(rep.Recovery.Recovered) != 2 {
		t.Errorf("files without a catalog: report %+v, want both recovered", rep)
	}
	if l := listDisks(t, p); len(l) != 2 {
		t.Errorf("%d recovered disks listed", len(l))
	}
	before := storedNames(t, p)

	// With a catalog: an unnamed file stays, unlisted; a dead tab's pending
	// import goes.
	var d diskMeta
	mustEval(t, p, `return dm.createBlankDisk({ name: "kept", sizeBytes: 1 << 20 });`, &d)
	mustEval(t, p, `await H.plantOrphan("0b1e9f3c-dead-4bad-8bad-000000000003", "qcow2", "another tool's");
		await H.plantPending("0b1e9f3c-dead-4bad-8bad-000000000004", "img", new Uint8Array(4096).fill(9));`, nil)
	p2 := newPage(t, s, "page2")
	mustEval(t, p2, `return (await H.open()).openReport;`, &rep)
	if len(rep.Swept) != 1 || !strings.HasPrefix(rep.Swept[0], "0b1e9f3c-dead-4bad-8bad-000000000004") {
		t.Errorf("report %+v: want the dead tab's pending import swept", rep)
	}
	checkKept(t, p2, before)
	if !slices.Contains(diskFiles(t, p2), "0b1e9f3c-dead-4bad-8bad-000000000003") {
		t.Error("a file no record names was deleted")
	}
	var pending []string
	mustEval(t, p2, `return H.pendingLeft();`, &pending)
	if len(pending) > 0 {
		t.Errorf("pending left: %q", pending)
	}
	if l := listDisks(t, p2); len(l) != 3 {
		t.Errorf("%d disks listed, want 3", len(l))
	}

	// An import running in one tab is neither listed nor swept by a tab
	// that opens meanwhile.
	big := filepath.Join(t.TempDir(), "big.img")
	writeSparse(t, big, 1<<30, map[int64][]byte{0: testutil.MixedData(1<<20, 3)})
	if err := p.SetFiles("#file", big); err != nil {
		t.Fatal(err)
	}
	mustEval(t, p, `globalThis.started = new Promise((ok) => {
			globalThis.running = dm.importDisk(H.inputFile(), { name: "running", onProgress: (pr) => pr.processedBytes > 0 && ok() });
			globalThis.running.then(ok, ok);
		});
		await started;`, nil)
	p3 := newPage(t, s, "page3")
	var during []diskMeta
	mustEval(t, p3, `const r = (await H.open()).openReport; if ((r.swept || []).length) throw new Error("swept " + r.swept); return dm.listDisks();`, &during)
	for _, x := range during {
		if x.Name == "running" {
			t.Errorf("a running import is listed in another tab: %+v", x)
		}
	}
	var done diskMeta
	mustEval(t, p, `return running;`, &done)
	checkMeta(t, be, done, "running", "hdd", "raw", 1<<30, crcFile(t, big))
	if l := listDisks(t, p3); len(l) != 4 {
		t.Errorf("after the import the other tab lists %d disks", len(l))
	}
}

// TestArgumentErrors: the API's smaller defects — a name that is not a
// string, setMounts with one drive or none, uncloneable arguments — are
// named errors that change nothing, and a partial setMounts keeps the
// other drive.
func TestArgumentErrors(t *testing.T) { eachBackend(t, testArgumentErrors) }

func testArgumentErrors(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs := referenceFixtures(t)
	iso := importFixture(t, p, fs, "disc.iso", "cd", false)
	var hdd diskMeta
	mustEval(t, p, `return dm.createBlankDisk({ name: "hdd", sizeBytes: 1 << 20 });`, &hdd)
	for _, body := range []string{
		`return dm.createBlankDisk({ name: 42, sizeBytes: 1 << 20 });`,
		`return dm.createBlankDisk({ name: () => 1, sizeBytes: 1 << 20 });`,
		`return dm.createBlankDisk(null);`,
		`return dm.renameDisk(args[0], 42);`,
		`return dm.setMounts(null);`,
		`return dm.setMounts({ hddId: 42 });`,
		`return dm.importDisk(new File([new Uint8Array(512)], "x.img"), { name: 7 });`,
	} {
		wantErrName(t, p, "InvalidArgumentError", body, hdd.ID)
	}
	if l := listDisks(t, p); len(l) != 2 || (l[0].Name != "hdd" && l[1].Name != "hdd") {
		t.Errorf("refused calls changed the disks: %+v", l)
	}
	var m mounts
	mustEval(t, p, `await dm.setMounts({ hddId: args[0] }); return dm.setMounts({ cdId: args[1] });`, &m, hdd.ID, iso.ID)
	if m.HddID == nil || *m.HddID != hdd.ID || m.CdID == nil || *m.CdID != iso.ID {
		t.Errorf("setMounts({cdId}) after setMounts({hddId}): %+v", m)
	}
	mustEval(t, p, `return dm.setMounts({ hddId: null });`, &m)
	if m.HddID != nil || m.CdID == nil {
		t.Errorf("setMounts({hddId: null}): %+v", m)
	}
}

// TestBackingOverConvertedBase: a qcow2 overlay whose backing file is a raw
// disk imported converted (stored as AEROSPAR on OPFS) reads that disk's
// content, never its container bytes: the checksum qemu-img gives, and a
// verify that passes.
func TestBackingOverConvertedBase(t *testing.T) { eachBackend(t, testBackingOverConvertedBase) }

func testBackingOverConvertedBase(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs := newFixtures(t)
	base := testutil.BaseDisk(t, fs.Dir, "m64.img", 4<<20, 64)
	top := filepath.Join(fs.Dir, "m64-top.qcow2")
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-b", "m64.img", "-F", "raw", top)
	testutil.QemuIO(t, "qcow2", top, "write -P 0x5a 1M 64k", "write -P 0x6b 3M 4k")
	want := crcFile(t, testutil.QemuRaw(t, "qcow2", top))
	bd := importFixture(t, p, fs, filepath.Base(base), "m64.img", true)
	if bd.Format != sparseFormat(be, "aerospar") {
		t.Fatalf("the base is stored as %s", bd.Format)
	}
	d := importFixture(t, p, fs, filepath.Base(top), "top", true)
	if d.Checksum == nil || d.Checksum.Value != want {
		t.Fatalf("overlay over a converted base: %+v, want checksum %s", d.Checksum, want)
	}
	if s := exportSum(t, p, d.ID, false); s.CRC32 != want {
		t.Errorf("export %s, want %s", s.CRC32, want)
	}
	var v struct {
		OK bool `json:"ok"`
	}
	mustEval(t, p, `return dm.verifyDisk(args[0]);`, &v, d.ID)
	if !v.OK {
		t.Error("verify failed")
	}
	os.Remove(top)
}

// TestFirstImportCrash: a tab dies importing the first disk of an empty
// origin, leaving nothing but its unfinished import. The next tab opens
// (its catalog rebuilt with nothing to list, or found fresh), removes the
// unfinished import, and the tab after it opens as well — on IndexedDB a
// store without any record used to read as "no catalog" again and again,
// and the manager refused to open.
func TestFirstImportCrash(t *testing.T) { eachBackend(t, testFirstImportCrash) }

func testFirstImportCrash(t *testing.T, be string) {
	requireWasm(t)
	s := ownSession(t)
	s.Backend = be
	p := newPage(t, s, "importing")
	mustEval(t, p, `await H.open();
		globalThis.importing = dm.importDisk(new File([H.randomBytes(48 << 20, 5)], "first.img")).catch(() => {});
		for (let i = 0; i < 2000 && !(await H.pendingLeft()).length; i++) await H.sleep(2);
		if (!(await H.pendingLeft()).length) throw new Error("the import never became pending");`, nil)
	p.Crash()
	for i, name := range []string{"after", "after that"} {
		q := newPage(t, s, name)
		var r struct {
			Report  openReport `json:"report"`
			Disks   int        `json:"disks"`
			Pending []string   `json:"pending"`
		}
		mustEval(t, q, `const d = await H.open();
			return { report: d.openReport, disks: (await dm.listDisks()).length, pending: await H.pendingLeft() };`, &r)
		if r.Disks != 0 || len(r.Pending) != 0 {
			t.Errorf("open %d: %d disks listed, pending %q", i+1, r.Disks, r.Pending)
		}
		if i == 0 && len(r.Report.Swept) != 1 {
			t.Errorf("the first open after the crash swept %q, want the unfinished import", r.Report.Swept)
		}
		if i == 1 && (r.Report.Recovery != nil || len(r.Report.Swept) != 0) {
			t.Errorf("the second open found more to repair: %+v", r.Report)
		}
		mustEval(t, q, `const d = await dm.createBlankDisk({ name: "works", sizeBytes: 1 << 20 }); await dm.deleteDisk(d.id);`, nil)
	}
}
