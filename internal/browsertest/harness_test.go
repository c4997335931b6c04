package browsertest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aerodisk/internal/testutil"
	"aerodisk/internal/webserve"
)

// TestHarness proves the harness itself, without the disk manager: chromium
// starts, the page runs under the server's CSP and is cross-origin isolated,
// WebAssembly compiles but eval does not, fixtures and disk-backed files
// reach the page, OPFS is shared between tabs, downloads land on the host and
// errors come back with their names. It starts a browser of its own (and
// downloads into its directory).
func TestHarness(t *testing.T) {
	parallel(t)
	s := ownSession(t)
	if v, err := s.b.Version(); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("browser: %s", v)
	}
	p := newPage(t, s, "harness")

	var basics struct {
		Sum         int    `json:"sum"`
		Origin      string `json:"origin"`
		Isolated    bool   `json:"isolated"`
		Eval        any    `json:"eval"`
		Wasm        bool   `json:"wasm"`
		Args        []any  `json:"args"`
		OPFS        bool   `json:"opfs"`
		Locks       bool   `json:"locks"`
		SavePicker  bool   `json:"savePicker"`
		CSPInHeader string `json:"csp"`
	}
	mustEval(t, p, `
		const r = await fetch(location.href);
		return {
			sum: 1 + 1,
			origin: location.origin,
			isolated: crossOriginIsolated,
			eval: await H.errorOf(() => eval("1 + 1")),
			wasm: (await WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]))) instanceof WebAssembly.Module,
			args,
			opfs: typeof navigator.storage.getDirectory === "function",
			locks: typeof navigator.locks?.request === "function",
			savePicker: typeof showSaveFilePicker === "function",
			csp: r.headers.get("content-security-policy"),
		};`, &basics, "x", 2)
	if basics.Sum != 2 || basics.Origin != s.URL || !basics.Isolated || !basics.Wasm || !basics.OPFS || !basics.Locks {
		t.Errorf("basics: %+v", basics)
	}
	if basics.CSPInHeader != webserve.CSP {
		t.Errorf("page CSP %q", basics.CSPInHeader)
	}
	if m, _ := basics.Eval.(map[string]any); m == nil || m["name"] != "EvalError" {
		t.Errorf("eval under the CSP: %v, want EvalError", basics.Eval)
	}
	if len(basics.Args) != 2 || basics.Args[0] != "x" || basics.Args[1] != 2.0 {
		t.Errorf("args %v", basics.Args)
	}
	t.Logf("showSaveFilePicker present: %v (headless: the download fallback is used when absent)", basics.SavePicker)

	// Errors keep their names.
	if e := evalErr(t, p, `throw new DOMException("gone", "NotFoundError");`); e.Name != "NotFoundError" || e.Message != "gone" {
		t.Errorf("DOMException: %+v", e)
	}
	if e := evalErr(t, p, `const e = new Error("bad"); e.name = "CorruptImageError"; throw e;`); e.Name != "CorruptImageError" {
		t.Errorf("named Error: %+v", e)
	}

	// A fixture through fetch, hashed in the page.
	fs := newFixtures(t)
	data := testutil.MixedData(3<<20+123, 5)
	fs.Add(t, "mixed.bin", data)
	var got struct {
		Name string `json:"name"`
		Size int    `json:"size"`
		CRC  string `json:"crc"`
	}
	mustEval(t, p, `const f = await H.fixture(args[0]);
		return { name: f.name, size: f.size, crc: H.crc32(new Uint8Array(await f.arrayBuffer())) };`, &got, fs.URLPath("mixed.bin"))
	if got.Name != "mixed.bin" || got.Size != len(data) || got.CRC != crcBytes(data) {
		t.Errorf("fixture: %+v, want size %d crc %s", got, len(data), crcBytes(data))
	}

	// A disk-backed File from a big sparse host file, streamed and hashed.
	big := filepath.Join(t.TempDir(), "sparse.img")
	writeSparse(t, big, 1<<30, map[int64][]byte{0: []byte("head"), 1<<30 - 4: []byte("tail")})
	if err := p.SetFiles("#file", big); err != nil {
		t.Fatal(err)
	}
	var sparse struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
		Tail string `json:"tail"`
	}
	mustEval(t, p, `const f = H.inputFile("#file");
		return { name: f.name, size: f.size, tail: await f.slice(f.size - 4).text() };`, &sparse)
	if sparse.Name != "sparse.img" || sparse.Size != 1<<30 || sparse.Tail != "tail" {
		t.Errorf("input file: %+v", sparse)
	}

	// OPFS is shared by the tabs of one browser.
	mustEval(t, p, `await H.opfsWrite("harness/dir", "a.txt", "hello");`, nil)
	p2 := newPage(t, s, "harness2")
	var list []struct {
		Name string `json:"name"`
		Size int    `json:"size"`
	}
	mustEval(t, p2, `return H.opfsList("harness/dir");`, &list)
	if len(list) != 1 || list[0].Name != "a.txt" || list[0].Size != 5 {
		t.Errorf("OPFS from the second tab: %+v", list)
	}

	// A download through an object URL lands in the download directory.
	mustEval(t, p, `
		const a = document.createElement("a");
		a.href = URL.createObjectURL(new Blob([new Uint8Array(args[0])]));
		a.download = "harness.bin";
		document.body.append(a);
		a.click();
		a.remove();`, nil, []int{1, 2, 3, 250})
	path := s.waitDownload(t, "harness.bin", 30*time.Second)
	if got, _ := os.ReadFile(path); !bytes.Equal(got, []byte{1, 2, 3, 250}) {
		t.Errorf("download: %v", got)
	}

	// The built wasm is served with its type (when the worker builds).
	if env.wasmErr == nil {
		var ct string
		mustEval(t, p, `const r = await fetch("/web/aerodisk.wasm"); await r.arrayBuffer(); return r.headers.get("content-type");`, &ct)
		if ct != "application/wasm" {
			t.Errorf("wasm Content-Type %q", ct)
		}
	} else {
		t.Logf("wasm not built yet: %v", strings.SplitN(env.wasmErr.Error(), "\n", 2)[0])
	}
}

// writeSparse makes a sparse host file of size bytes holding only the given
// writes: cheap on disk whatever its size.
func writeSparse(t testing.TB, path string, size int64, writes map[int64][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range writes {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
}
