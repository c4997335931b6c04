package browsertest

// The synchronous channel (dev.channel(), web/block_channel.js;
// docs/browser.md, "Synchronous channel") in the real browser, on both
// backends: an emulator's worker (web/test/channel_worker.js, a module
// worker) gets the channel by postMessage and blocks on it, reading,
// writing, discarding and flushing against a model; the page checks the
// disk it leaves. Then the refusals, by the engine's names: ranges, a
// read-only device, a closed channel, a closed device (a blocked caller
// included), a closed manager, a dead disk worker, and a page that is not
// cross-origin isolated.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// emuJS defines emu(): a new emulator worker with ask(msg, transfer,
// started), a promise of its answer (started is called when a "loop" has
// made its first read).
const emuJS = `const emu = () => {
		const w = new Worker("/web/test/channel_worker.js", { type: "module" });
		const pending = new Map();
		let next = 1;
		w.onmessage = (e) => {
			const p = pending.get(e.data.id);
			if (!p) return;
			if (e.data.started) { if (p.started) p.started(); return; }
			pending.delete(e.data.id);
			if (e.data.ok) p.resolve(e.data.value);
			else p.reject(Object.assign(new Error(e.data.error.message), { name: e.data.error.name }));
		};
		w.onerror = (e) => { for (const p of pending.values()) p.reject(new Error("the emulator worker failed: " + e.message)); };
		return {
			w,
			ask(msg, transfer = [], started) {
				const id = next++;
				return new Promise((resolve, reject) => { pending.set(id, { resolve, reject, started }); w.postMessage({ ...msg, id }, transfer); });
			},
		};
	};
	const attach = async (dev) => {
		const ch = await dev.channel();
		const e = emu();
		const info = await e.ask({ cmd: "open", ch }, [ch.port]);
		return { e, info, ch };
	};
	`

// misaligned are the emulator worker's calls that break the range rules
// (web/test/channel_worker.js, calls): each must throw InvalidArgumentError
// and change nothing.
var misaligned = []string{
	"read at 1", "read 100 bytes", "read 0 bytes", "read at -512", "read at the end", "read across the end",
	"read 3 MiB across the end", "read at 2^40", "read at 0.5", `read at "0"`, "read at null",
	"write at 1", "write 1000 bytes", "write 3 MiB + 100 bytes", "write 3 MiB across the end",
	"discard at 1", "discard 100 bytes", "discard 0 bytes", "discard across the end", `discard "512" bytes`,
}

// channelOps is how many random requests TestChannelModel's worker makes
// per disk (fewer on IndexedDB, as modelOps).
var channelOps = map[string]int{"opfs": 400, "idb": 120}

type chanCall struct {
	Call    string `json:"call"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

// TestChannelModel: a raw and an AEROSPAR disk driven by an emulator's
// worker through the synchronous channel against a model (reads and
// writes longer than the data area included), after the refusals of
// misaligned and outside ranges (which change nothing); the page's own
// device, the export after closing and verifyDisk all agree with the
// model. Also prints the channel's informal round-trip figures.
func TestChannelModel(t *testing.T) { eachBackend(t, testChannelModel) }

func testChannelModel(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	for _, c := range rawAndSparDisks(t, p) {
		t.Run(c.d.Format, func(t *testing.T) {
			var r struct {
				Info struct {
					SizeBytes  int64 `json:"sizeBytes"`
					SectorSize int   `json:"sectorSize"`
					ReadOnly   bool  `json:"readOnly"`
					Isolated   bool  `json:"isolated"`
				} `json:"info"`
				Refusals []chanCall `json:"refusals"`
				Model    struct {
					Counts   map[string]int `json:"counts"`
					StartCRC string         `json:"startCrc"`
					CRC      string         `json:"crc"`
				} `json:"model"`
				PageCRC   string         `json:"pageCrc"`
				Export    streamSum      `json:"export"`
				Verify    map[string]any `json:"verify"`
				AfterDev  *chanCall      `json:"afterDev"`
				ChannelOf *chanCall      `json:"channelOfClosed"`
			}
			mustEval(t, p, emuJS+`const dev = await dm.openDisk(args[0], { writable: true });
				const { e, info } = await attach(dev);
				const refusals = await e.ask({ cmd: "refusals", only: args[3] });
				const model = await e.ask({ cmd: "model", seed: args[1], ops: args[2] });
				const pageCrc = H.crc32(await dev.read(0, dev.sizeBytes)); // the page's requests see the channel's writes
				await dev.close();
				const afterDev = await e.ask({ cmd: "call", call: "read" });
				const channelOfClosed = await H.errorOf(() => dev.channel());
				e.w.terminate();
				const exp = await H.crc32Stream(await dm.exportDisk(args[0]));
				const verify = await dm.verifyDisk(args[0]);
				return { info, refusals, model, pageCrc, export: exp, verify, afterDev, channelOfClosed };`,
				&r, c.d.ID, len(c.d.Format)+7, channelOps[be], misaligned)
			if r.Info.SizeBytes != devSize || r.Info.SectorSize != 512 || r.Info.ReadOnly || !r.Info.Isolated {
				t.Errorf("BlockChannel: %+v", r.Info)
			}
			if len(r.Refusals) != len(misaligned) {
				t.Errorf("%d refusals reported, want %d", len(r.Refusals), len(misaligned))
			}
			for _, x := range r.Refusals {
				if x.Name != "InvalidArgumentError" || strings.TrimSpace(x.Message) == "" {
					t.Errorf("%s: threw %q (%q), want InvalidArgumentError", x.Call, x.Name, x.Message)
				}
			}
			if len(r.Refusals) > 0 {
				t.Logf("%s: %s", r.Refusals[0].Call, r.Refusals[0].Message)
			}
			if r.Model.StartCRC != c.crc {
				t.Errorf("after the refusals the channel read %s, want the untouched disk's %s", r.Model.StartCRC, c.crc)
			}
			t.Logf("channel ops: %v", r.Model.Counts)
			for _, op := range []string{"write", "discard", "read", "flush", "long"} {
				if r.Model.Counts[op] == 0 {
					t.Errorf("the sequence had no %s", op)
				}
			}
			if r.PageCRC != r.Model.CRC {
				t.Errorf("the page's device read %s, the model is %s", r.PageCRC, r.Model.CRC)
			}
			if r.Export.CRC32 != r.Model.CRC || r.Export.Bytes != devSize {
				t.Errorf("export after the channel's writes: %+v, want the model's %s", r.Export, r.Model.CRC)
			}
			if r.Verify["ok"] != true || r.Verify["checksum"] != r.Model.CRC {
				t.Errorf("verifyDisk: %v, want %s", r.Verify, r.Model.CRC)
			}
			if r.AfterDev == nil || r.AfterDev.Name != "InvalidArgumentError" || !strings.Contains(r.AfterDev.Message, "device is closed") {
				t.Errorf("a read after the device closed threw %+v, want InvalidArgumentError: the device is closed", r.AfterDev)
			}
			if r.ChannelOf == nil || r.ChannelOf.Name != "InvalidArgumentError" {
				t.Errorf("channel() of a closed device: %+v, want InvalidArgumentError", r.ChannelOf)
			}
		})
	}
	// Informal figures (no assertion: the bench has the targets).
	n, mib := 3000, 64
	if be == "idb" {
		n, mib = 200, 16
	}
	var f map[string]float64
	mustEval(t, p, emuJS+`const d = await dm.createBlankDisk({ name: "timing", sizeBytes: 64 << 20 });
		const dev = await dm.openDisk(d.id, { writable: true });
		await dev.write(0, H.randomBytes(64 << 20, 3));
		const { e } = await attach(dev);
		const r = await e.ask({ cmd: "timing", n: args[0], seqMiB: args[1] });
		await dev.close();
		e.w.terminate();
		return r;`, &f, n, mib)
	t.Logf("channel on %s (informal): %.0f random 4 KiB reads/s, median %.0f µs, p99 %.0f µs; 1 MiB sequential read %.0f MB/s, write %.0f MB/s",
		be, f["readsPerSec"], f["medianUs"], f["p99Us"], f["seqReadMBs"], f["seqWriteMBs"])
}

// TestChannelRefusals: a read-only device's channel reads and refuses
// writes and discards (ReadOnlyError); a closed channel refuses
// everything while another channel of the device works on; an argument
// that is not a Uint8Array is a TypeError; a caller blocked in a loop of
// reads gets an error, never hangs, when the device closes, when the
// manager closes, and when the disk worker dies.
func TestChannelRefusals(t *testing.T) { eachBackend(t, testChannelRefusals) }

func testChannelRefusals(t *testing.T, be string) {
	_, p := openDMOn(t, be)
	fs, _, _ := devFixtures(t)
	d := importDevDisks(t, p, fs)

	var ro struct {
		ReadOnly bool       `json:"readOnly"`
		Calls    []chanCall `json:"calls"`
	}
	mustEval(t, p, emuJS+`const dev = await dm.openDisk(args[0]);
		const { e, info } = await attach(dev);
		const calls = await e.ask({ cmd: "refusals", only: ["read", "write", "discard", "flush", "write at 1", "read into an ArrayBuffer"] });
		const q = await dm.openDisk(args[1]); // a qcow2 disk, read-only in direct mode
		const { e: eq } = await attach(q);
		const qcalls = await eq.ask({ cmd: "refusals", only: ["read", "write"] });
		await q.close();
		await dev.close();
		e.w.terminate(); eq.w.terminate();
		return { readOnly: info.readOnly, calls: [...calls, ...qcalls.map((c) => ({ ...c, call: "qcow2 " + c.call }))] };`,
		&ro, d.Raw.ID, d.Qcow.ID)
	if !ro.ReadOnly {
		t.Error("a read-only device's channel says it is writable")
	}
	want := map[string]string{"read": "", "write": "ReadOnlyError", "discard": "ReadOnlyError", "flush": "",
		"write at 1": "InvalidArgumentError", "read into an ArrayBuffer": "TypeError", "qcow2 read": "", "qcow2 write": "ReadOnlyError"}
	for _, c := range ro.Calls {
		if c.Name != want[c.Call] {
			t.Errorf("read-only channel, %s: threw %q (%q), want %q", c.Call, c.Name, c.Message, want[c.Call])
		}
		if c.Name == "ReadOnlyError" {
			t.Logf("%s: %s", c.Call, c.Message)
		}
	}
	if len(ro.Calls) != len(want) {
		t.Errorf("%d calls reported, want %d", len(ro.Calls), len(want))
	}

	// A closed channel; another channel of the same device; a device
	// closed under a blocked caller.
	var cl struct {
		Closed  *chanCall `json:"closed"`
		Other   *chanCall `json:"other"`
		Blocked struct {
			Reads   int    `json:"reads"`
			Name    string `json:"name"`
			Message string `json:"message"`
		} `json:"blocked"`
		Again *chanCall `json:"again"`
	}
	mustEval(t, p, emuJS+`const dev = await dm.openDisk(args[0], { writable: true });
		const a = await attach(dev), b = await attach(dev);
		await a.e.ask({ cmd: "close" });
		const closed = await a.e.ask({ cmd: "call", call: "read" });
		const other = await b.e.ask({ cmd: "call", call: "write" });
		let started;
		const wasStarted = new Promise((r) => { started = r; });
		const loop = b.e.ask({ cmd: "loop" }, [], started);
		await wasStarted;
		await dev.close();
		const blocked = await loop;
		const again = await b.e.ask({ cmd: "call", call: "flush" });
		a.e.w.terminate(); b.e.w.terminate();
		return { closed, other, blocked, again };`, &cl, d.Spar.ID)
	if cl.Closed == nil || cl.Closed.Name != "InvalidArgumentError" || !strings.Contains(cl.Closed.Message, "channel is closed") {
		t.Errorf("a read on a closed channel threw %+v, want InvalidArgumentError: the channel is closed", cl.Closed)
	}
	if cl.Other != nil {
		t.Errorf("another channel of the device, after the first closed: %+v", cl.Other)
	}
	if cl.Blocked.Reads == 0 || cl.Blocked.Name != "InvalidArgumentError" || !strings.Contains(cl.Blocked.Message, "device is closed") {
		t.Errorf("a loop of reads when the device closed: %+v, want InvalidArgumentError: the device is closed", cl.Blocked)
	}
	if cl.Again == nil || cl.Again.Name != "InvalidArgumentError" {
		t.Errorf("a flush after the device closed: %+v", cl.Again)
	}
	t.Logf("closed channel: %s; closed device: %s (after %d reads)", cl.Closed.Message, cl.Blocked.Message, cl.Blocked.Reads)

	// dm.close() ends its devices' channels; a disk worker that dies
	// (terminated: nothing can answer) leaves its waiters the stopped
	// record within seconds.
	type loopEnd struct {
		Reads   int     `json:"reads"`
		Name    string  `json:"name"`
		Message string  `json:"message"`
		Ms      float64 `json:"ms"`
	}
	var ends struct {
		Manager loopEnd `json:"manager"`
		Killed  loopEnd `json:"killed"`
	}
	mustEval(t, p, emuJS+`const end = async (dm, id, kill) => {
			const dev = await dm.openDisk(id, { writable: true });
			const { e } = await attach(dev);
			let started;
			const wasStarted = new Promise((r) => { started = r; });
			const loop = e.ask({ cmd: "loop" }, [], started);
			await wasStarted;
			const t0 = performance.now();
			await kill(dm);
			const r = await loop;
			e.w.terminate();
			return { ...r, ms: performance.now() - t0 };
		};
		const manager = await end(dm, args[0], (dm) => dm.close());
		const dm2 = await H.open();
		const killed = await end(dm2, args[0], async (dm) => { dm._worker.terminate(); });
		return { manager, killed };`, &ends, d.Raw.ID)
	if ends.Manager.Reads == 0 || ends.Manager.Name != "InvalidArgumentError" || !strings.Contains(ends.Manager.Message, "device is closed") {
		t.Errorf("a loop of reads when the manager closed: %+v", ends.Manager)
	}
	if ends.Killed.Reads == 0 || ends.Killed.Name != "Error" || !strings.Contains(ends.Killed.Message, "stopped answering") {
		t.Errorf("a loop of reads when the disk worker died: %+v, want Error: the disk worker stopped answering", ends.Killed)
	}
	t.Logf("manager closed: %s; disk worker killed: %s (after %.1f s)", ends.Manager.Message, ends.Killed.Message, ends.Killed.Ms/1000)
}

// TestChannelNotIsolated: in a page served without cross-origin isolation
// (the same files without COOP/COEP, as a server other than aerodisk's
// might serve them) the DiskManager and its devices work, and channel() is
// refused with a sentence saying that cross-origin isolation is needed.
func TestChannelNotIsolated(t *testing.T) { eachBackend(t, testChannelNotIsolated) }

func testChannelNotIsolated(t *testing.T, be string) {
	requireWasm(t)
	s := sharedSession(t)
	s.URL = unisolatedOrigin(t, s.b)
	s.Backend = be
	p := newPage(t, s, "not-isolated")
	var r struct {
		Isolated bool      `json:"isolated"`
		Backend  string    `json:"backend"`
		Read     int       `json:"read"`
		Refused  *chanCall `json:"refused"`
	}
	mustEval(t, p, `const dm = await H.open({ backend: args[0] });
		const d = await dm.createBlankDisk({ name: "plain", sizeBytes: 1 << 20 });
		const dev = await dm.openDisk(d.id, { writable: true });
		await dev.write(0, new Uint8Array(512).fill(1));
		const read = (await dev.read(0, 512))[0];
		const refused = await H.errorOf(() => dev.channel());
		await dev.write(512, new Uint8Array(512)); // the device works on
		await dev.close();
		return { isolated: crossOriginIsolated, backend: dm.backend, read, refused };`, &r, be)
	if r.Isolated {
		t.Fatal("the page is cross-origin isolated: the server sent COOP/COEP")
	}
	if r.Backend != be || r.Read != 1 {
		t.Errorf("without isolation: backend %q, read %d", r.Backend, r.Read)
	}
	if r.Refused == nil || r.Refused.Name != "UnsupportedFormatError" || !strings.Contains(r.Refused.Message, "cross-origin isolated") {
		t.Errorf("channel() without isolation: %+v, want UnsupportedFormatError saying cross-origin isolation is needed", r.Refused)
	} else {
		t.Logf("refused: %s", r.Refused.Message)
	}
}

// unisolatedOrigin serves the suite's files on an origin of its own
// without the cross-origin isolation headers; the origin's storage is
// cleared when the test ends.
func unisolatedOrigin(t *testing.T, b *Browser) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.srv.h.ServeHTTP(unisolated{w}, r)
	}))
	t.Cleanup(func() {
		if err := b.ClearOrigin(srv.URL); err != nil {
			t.Errorf("clearing %s's storage: %v", srv.URL, err)
		}
		srv.Close()
	})
	return srv.URL
}

// unisolated drops COOP and COEP from a response's headers.
type unisolated struct{ http.ResponseWriter }

func (u unisolated) strip() {
	u.Header().Del("Cross-Origin-Opener-Policy")
	u.Header().Del("Cross-Origin-Embedder-Policy")
}

func (u unisolated) WriteHeader(code int) { u.strip(); u.ResponseWriter.WriteHeader(code) }

func (u unisolated) Write(p []byte) (int, error) { u.strip(); return u.ResponseWriter.Write(p) }
