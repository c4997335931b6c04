package browsertest

import (
	"crypto/rand"
	"path/filepath"
	"sort"
	"testing"

	"aerodisk/internal/checksum"
)

// maxWasmMemory is the flat-memory promise: importing any size of file keeps
// the worker's WebAssembly.Memory under this.
const maxWasmMemory = 64 << 20

// sparseCRC is the CRC32 of a file of size bytes holding writes over zeros.
func sparseCRC(size int64, writes map[int64][]byte) string {
	offs := make([]int64, 0, len(writes))
	for o := range writes {
		offs = append(offs, o)
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	var crc uint32
	var at int64
	for _, o := range offs {
		crc = checksum.ExtendZeros(crc, o-at)
		crc = checksum.Update(crc, writes[o])
		at = o + int64(len(writes[o]))
	}
	return crcHex(checksum.ExtendZeros(crc, size-at))
}

// TestLargeImportFlatMemory imports a multi-GB file (sparse on the host, a
// real disk-backed File in the page) as is and converted, and checks the
// checksums, the progress rate, and that wasm memory stays flat. It
// measures memory, so it has a browser of its own.
func TestLargeImportFlatMemory(t *testing.T) { eachBackend(t, testLargeImportFlatMemory) }

func testLargeImportFlatMemory(t *testing.T, be string) {
	p := openDMIn(t, ownSession(t), be, nil)
	const size = 3 << 30
	writes := map[int64][]byte{}
	for _, off := range []int64{0, 1<<30 + 12345, 2<<30 - 4096, size - 1<<20} {
		b := make([]byte, 1<<20)
		rand.Read(b)
		writes[off] = b
	}
	big := filepath.Join(t.TempDir(), "big.img")
	writeSparse(t, big, size, writes)
	want := sparseCRC(size, writes)
	if err := p.SetFiles("#file", big); err != nil {
		t.Fatal(err)
	}
	var stats0 map[string]float64
	mustEval(t, p, `return dm._debugStats();`, &stats0)
	t.Logf("wasm memory before: %.1f MiB", stats0["wasmMemoryBytes"]/(1<<20))

	for _, method := range []string{"importDisk", "importDiskConverted"} {
		t.Run(method, func(t *testing.T) {
			var r struct {
				Disk  diskMeta           `json:"disk"`
				Ms    float64            `json:"ms"`
				Stats map[string]float64 `json:"stats"`
				Calls []struct {
					Phase     string  `json:"phase"`
					Processed float64 `json:"processedBytes"`
					Total     float64 `json:"totalBytes"`
					T         float64 `json:"t"`
				} `json:"calls"`
			}
			mustEval(t, p, `const pr = H.progress(); const t0 = performance.now();
				const disk = await dm[args[0]](H.inputFile(), { name: args[0], onProgress: pr.onProgress });
				return { disk, ms: performance.now() - t0, calls: pr.calls, stats: await dm._debugStats() };`, &r, method)
			format := "raw"
			if method == "importDiskConverted" {
				format = sparseFormat(be, "aerospar")
			}
			checkMeta(t, be, r.Disk, method, "hdd", format, size, want)
			if r.Disk.SourceChecksum == nil || r.Disk.SourceChecksum.Value != want {
				t.Errorf("sourceChecksum %+v, want %s", r.Disk.SourceChecksum, want)
			}
			peak := r.Stats["peakWasmMemoryBytes"]
			t.Logf("%s of %d GiB: %.1f s (%.0f MB/s), %d progress calls, peak wasm memory %.1f MiB",
				method, size>>30, r.Ms/1000, size/r.Ms/1000, len(r.Calls), peak/(1<<20))
			if peak <= 0 || peak > maxWasmMemory {
				t.Errorf("peak WebAssembly.Memory %.1f MiB, want ≤ %d MiB (stats %v)", peak/(1<<20), maxWasmMemory>>20, r.Stats)
			}
			// Progress: ~10 calls a second at most, monotonic within a phase, ends complete.
			if max := int(r.Ms/1000*10) + 5; len(r.Calls) > max {
				t.Errorf("%d progress calls in %.1f s", len(r.Calls), r.Ms/1000)
			}
			if len(r.Calls) == 0 {
				t.Fatal("no progress")
			}
			for i := 1; i < len(r.Calls); i++ {
				a, b := r.Calls[i-1], r.Calls[i]
				if a.Phase == b.Phase && b.Processed < a.Processed {
					t.Errorf("progress went back: %+v then %+v", a, b)
				}
			}
			if last := r.Calls[len(r.Calls)-1]; last.Processed != last.Total || last.Total <= 0 {
				t.Errorf("last progress %+v", last)
			}
		})
	}
	var v struct {
		OK       bool   `json:"ok"`
		Checksum string `json:"checksum"`
	}
	mustEval(t, p, `const d = (await dm.listDisks()).find((d) => d.name === "importDiskConverted"); return dm.verifyDisk(d.id);`, &v)
	if !v.OK || v.Checksum != want {
		t.Errorf("verifyDisk of the converted disk: %+v, want %s", v, want)
	}
}
