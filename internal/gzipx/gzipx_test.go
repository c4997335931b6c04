package gzipx

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"aerodisk/internal/checksum"
	"aerodisk/internal/testutil"

	kflate "github.com/klauspost/compress/flate"
)

// op is one call: data (Write) or, when data is nil, zeros (WriteZeros).
type op struct {
	data  []byte
	zeros int64
}

func (o op) String() string {
	if o.data != nil {
		return fmt.Sprintf("data(%d)", len(o.data))
	}
	return fmt.Sprintf("zeros(%d)", o.zeros)
}

// expected streams the logical bytes of ops without holding them.
type expected struct {
	ops []op
	i   int
	off int64
}

func (e *expected) Read(p []byte) (int, error) {
	for e.i < len(e.ops) {
		o := e.ops[e.i]
		if o.data != nil && e.off < int64(len(o.data)) {
			n := copy(p, o.data[e.off:])
			e.off += int64(n)
			return n, nil
		}
		if o.data == nil && e.off < o.zeros {
			n := int(min(int64(len(p)), o.zeros-e.off))
			clear(p[:n])
			e.off += int64(n)
			return n, nil
		}
		e.i, e.off = e.i+1, 0
	}
	return 0, io.EOF
}

// summary is the length and CRC32 of a stream.
type summary struct {
	n   int64
	crc uint32
}

func summarize(t testing.TB, r io.Reader) summary {
	t.Helper()
	c := crc32.NewIEEE()
	n, err := io.CopyBuffer(c, r, make([]byte, 1<<20))
	if err != nil {
		t.Fatalf("reading stream: %v", err)
	}
	return summary{n, c.Sum32()}
}

// sha is the length and SHA-256 of a stream, as the node check prints them.
func sha(t testing.TB, r io.Reader) string {
	t.Helper()
	s := sha256.New()
	n, err := io.CopyBuffer(s, r, make([]byte, 1<<20))
	if err != nil {
		t.Fatalf("reading stream: %v", err)
	}
	return fmt.Sprintf("%d %x", n, s.Sum(nil))
}

func compress(t testing.TB, w io.Writer, level int, ops []op) *Writer {
	t.Helper()
	z, err := NewWriter(w, level)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		if o.data != nil {
			if n, err := z.Write(o.data); err != nil || n != len(o.data) {
				t.Fatalf("Write: %d, %v", n, err)
			}
		} else if err := z.WriteZeros(o.zeros); err != nil {
			t.Fatalf("WriteZeros: %v", err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return z
}

func gzipTool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("gzip")
	if err != nil {
		t.Fatalf("gzip is required (Debian package gzip): %v", err)
	}
	return p
}

// check round-trips ops through compress/gzip and `gzip -dc`, and checks the
// trailer against the logical bytes.
func check(t *testing.T, level int, ops []op) []byte {
	t.Helper()
	var buf bytes.Buffer
	z := compress(t, &buf, level, ops)
	out := buf.Bytes()
	want := summarize(t, &expected{ops: ops})

	if z.CRC32() != want.crc || z.Size() != uint64(want.n) {
		t.Fatalf("%v: Writer CRC %08x size %d, want %08x %d", ops, z.CRC32(), z.Size(), want.crc, want.n)
	}
	if !bytes.Equal(out[:10], header[:]) {
		t.Fatalf("header % x", out[:10])
	}
	tr := out[len(out)-8:]
	if c, s := binary.LittleEndian.Uint32(tr), binary.LittleEndian.Uint32(tr[4:]); c != want.crc || s != uint32(want.n) {
		t.Fatalf("trailer CRC %08x ISIZE %d, want %08x %d", c, s, want.crc, uint32(want.n))
	}

	zr, err := gzip.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	if got := summarize(t, zr); got != want {
		t.Fatalf("%v: compress/gzip decoded %+v, want %+v", ops, got, want)
	}
	if rest, _ := io.ReadAll(zr); len(rest) != 0 {
		t.Fatal("trailing data")
	}

	cmd := exec.Command(gzipTool(t), "-dc")
	cmd.Stdin = bytes.NewReader(out)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := summarize(t, stdout)
	if err := cmd.Wait(); err != nil || stderr.Len() != 0 {
		t.Fatalf("%v: gzip -dc: %v %s", ops, err, stderr.String())
	}
	if got != want {
		t.Fatalf("%v: gzip -dc decoded %+v, want %+v", ops, got, want)
	}
	return out
}

func skipWasm(t *testing.T) {
	if runtime.GOOS == "js" {
		t.Skip("needs os/exec")
	}
}

func zeros(n int64) op { return op{zeros: n} }
func data(b []byte) op { return op{data: b} }
func noise(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32()) | 1 // never zero: a wrong match is visible
	}
	return b
}

func TestRoundTripBasic(t *testing.T) {
	skipWasm(t)
	mixed := testutil.MixedData(3<<20+17, 5)
	cases := map[string][]op{
		"empty":        nil,
		"empty-calls":  {data([]byte{}), zeros(0)},
		"data":         {data(mixed)},
		"byte":         {data([]byte{7})},
		"zeros-small":  {zeros(1)},
		"zeros-64K-1":  {zeros(zeroRunMin - 1)},
		"zeros-64K":    {zeros(zeroRunMin)},
		"zeros-K-1":    {zeros(K - 1)},
		"zeros-K":      {zeros(K)},
		"zeros-K+1":    {zeros(K + 1)},
		"zeros-manyK":  {zeros(5*K + 123457)},
		"zeros-split":  {zeros(K), zeros(K + 1), zeros(1), zeros(zeroRunMin)},
		"data-zeros":   {data(noise(100000, 1)), zeros(K + 3)},
		"zeros-data":   {zeros(K + 3), data(noise(100000, 2))},
		"sandwich":     {data(mixed), zeros(200000), data(mixed), zeros(K), data(mixed[:1000])},
		"repeat-after": {data(noise(40000, 3)), zeros(1 << 20), data(noise(40000, 3))},
	}
	for name, ops := range cases {
		t.Run(name, func(t *testing.T) { check(t, DefaultLevel, ops) })
	}
}

// TestReset: data the compressor saw before a zero run repeats right after
// it, the case where a back-reference across the zero segment would be
// tempting (and wrong) without the reset, at every level.
func TestReset(t *testing.T) {
	skipWasm(t)
	a := noise(20000, 9)
	for _, level := range []int{kflate.ConstantCompression, 1, 2, 3, 4, 5, 6, 7, 9} {
		t.Run(fmt.Sprint(level), func(t *testing.T) {
			check(t, level, []op{data(a), zeros(zeroRunMin), data(a), zeros(K + 258*3 + 1), data(a), data(a)})
		})
	}
}

func randomOps(r *rand.Rand, mixed []byte) []op {
	sizes := []int64{1, 2, 3, 257, 258, 259, 4096, zeroRunMin - 1, zeroRunMin, zeroRunMin + 1,
		K - 1, K, K + 1, 2*K + 1031, 1 << 20, 3 << 20}
	var ops []op
	for range 1 + r.IntN(12) {
		switch r.IntN(4) {
		case 0:
			ops = append(ops, zeros(sizes[r.IntN(len(sizes))]))
		case 1:
			ops = append(ops, zeros(1+r.Int64N(2*K)))
		case 2:
			n := r.IntN(200000)
			off := r.IntN(len(mixed) - n)
			ops = append(ops, data(mixed[off:off+n]))
		case 3:
			ops = append(ops, data(noise(1+r.IntN(5000), r.Uint64())))
		}
	}
	return ops
}

func TestRoundTripRandom(t *testing.T) {
	skipWasm(t)
	r := rand.New(rand.NewPCG(2024, 7))
	mixed := testutil.MixedData(4<<20, 11)
	runs := 40
	if testing.Short() {
		runs = 10
	}
	for i := range runs {
		ops := randomOps(r, mixed)
		level := []int{DefaultLevel, 1, 4, 6, 9}[i%5]
		t.Run(fmt.Sprint(i), func(t *testing.T) { check(t, level, ops) })
	}
}

// TestZeroSegment decodes bare zero segments, each after a byte that is not
// zero, with the standard library's and klauspost's inflaters.
func TestZeroSegment(t *testing.T) {
	var ns []int64
	for n := int64(1); n <= 2*258+5; n++ {
		ns = append(ns, n)
	}
	ns = append(ns, 4096, 65535, 1<<20, K-1, K, K+1, 3*K+77)
	for _, n := range ns {
		seg := appendZeroSegment(nil, n)
		// stored block holding 0xAB, the zero segment, then an empty final
		// fixed block (03 00).
		s := append([]byte{0x00, 0x01, 0x00, 0xfe, 0xff, 0xab}, seg...)
		s = append(s, 0x03, 0x00)
		for name, r := range map[string]io.Reader{
			"compress/flate": flate.NewReader(bytes.NewReader(s)),
			"klauspost":      kflate.NewReader(bytes.NewReader(s)),
		} {
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("n=%d %s: %v", n, name, err)
			}
			if int64(len(got)) != n+1 || got[0] != 0xab || bytes.IndexFunc(got[1:], func(r rune) bool { return r != 0 }) >= 0 {
				t.Fatalf("n=%d %s: decoded %d bytes", n, name, len(got))
			}
		}
		if n <= 2*258+5 {
			continue
		}
		if max := n/1032 + 40; int64(len(seg)) > max {
			t.Errorf("n=%d: segment is %d bytes, want ≤ %d", n, len(seg), max)
		}
	}
	t.Logf("K segment: %d bytes for %d zeros (%.1f:1)", len(kSegment()), K, float64(K)/float64(len(kSegment())))
}

// TestDecompressionStream decodes with the DecompressionStream("gzip") of
// Node, the browser API the exports are read back with.
func TestDecompressionStream(t *testing.T) {
	skipWasm(t)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required (it ships on these machines): %v", err)
	}
	dir := t.TempDir()
	mixed := testutil.MixedData(2<<20, 3)
	cases := [][]op{
		nil,
		{data(mixed)},
		{zeros(K - 1)},
		{zeros(3*K + 5)},
		{data(noise(5000, 1)), zeros(zeroRunMin + 1), data(mixed), zeros(K + 259), data(noise(5000, 1))},
	}
	r := rand.New(rand.NewPCG(99, 1))
	for range 6 {
		cases = append(cases, randomOps(r, mixed))
	}
	var files []string
	var wants []string
	for i, ops := range cases {
		var buf bytes.Buffer
		compress(t, &buf, DefaultLevel, ops)
		files = append(files, testutil.WriteFile(t, dir, fmt.Sprintf("%d.gz", i), buf.Bytes()))
		wants = append(wants, sha(t, &expected{ops: ops}))
	}
	script := `
const fs = require('fs'), crypto = require('crypto');
(async () => {
  for (const f of process.argv.slice(2)) {
    const h = crypto.createHash('sha256'); let n = 0;
    const s = new Blob([fs.readFileSync(f)]).stream().pipeThrough(new DecompressionStream('gzip'));
    for await (const c of s) { h.update(c); n += c.length; }
    console.log(n + ' ' + h.digest('hex'));
  }
})().catch(e => { console.error(e); process.exit(1); });
`
	js := testutil.WriteFile(t, dir, "check.js", []byte(script))
	out := testutil.Run(t, node, append([]string{js}, files...)...)
	lines := strings.Fields(strings.TrimSpace(string(out)))
	if len(lines) != 2*len(cases) {
		t.Fatalf("node output: %q", out)
	}
	for i, w := range wants {
		if got := lines[2*i] + " " + lines[2*i+1]; got != w {
			t.Errorf("case %d %v: DecompressionStream %s, want %s", i, cases[i], got, w)
		}
	}
}

// TestISIZEWrap writes more than 4 GiB and decodes it as a stream.
func TestISIZEWrap(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 5 GiB")
	}
	tail := []byte("tail bytes after five gibibytes")
	ops := []op{data([]byte("head")), zeros(5 << 30), data(tail)}
	pr, pw := io.Pipe()
	bw := bufio.NewWriter(pw)
	z, err := NewWriter(bw, DefaultLevel)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := z.Write(ops[0].data)
		if err == nil {
			err = z.WriteZeros(ops[1].zeros)
		}
		if err == nil {
			_, err = z.Write(ops[2].data)
		}
		if err == nil {
			err = z.Close()
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	var out bytes.Buffer
	zr, err := gzip.NewReader(io.TeeReader(pr, &out))
	if err != nil {
		t.Fatal(err)
	}
	got := summarize(t, zr) // compress/gzip also verifies CRC and ISIZE
	wantCRC := checksum.Update(checksum.ExtendZeros(checksum.Update(0, ops[0].data), 5<<30), tail)
	want := int64(4 + 5<<30 + len(tail))
	if got.n != want || got.crc != wantCRC || z.CRC32() != wantCRC {
		t.Fatalf("decoded %d bytes CRC %08x (writer %08x), want %d %08x", got.n, got.crc, z.CRC32(), want, wantCRC)
	}
	b := out.Bytes()
	if isize := binary.LittleEndian.Uint32(b[len(b)-4:]); isize != uint32(want) || int64(isize) == want {
		t.Fatalf("ISIZE %d, want %d mod 2^32 = %d", isize, want, uint32(want))
	}
	t.Logf("%d bytes → %d (%.0f:1)", want, len(b), float64(want)/float64(len(b)))
}

// TestAllocsFlat: zero runs cost no allocation however long they are.
func TestAllocsFlat(t *testing.T) {
	z, err := NewWriter(io.Discard, DefaultLevel)
	if err != nil {
		t.Fatal(err)
	}
	d := noise(100000, 4)
	z.Write(d)
	z.WriteZeros(K + 12345) // warm up: K segment, scratch, flate buffers
	for _, n := range []int64{zeroRunMin + 1, K + 12345, 1 << 34, 1<<34 + K - 1} {
		a := testing.AllocsPerRun(5, func() {
			z.Write(d)
			if err := z.WriteZeros(n); err != nil {
				t.Fatal(err)
			}
		})
		if a != 0 {
			t.Errorf("Write+WriteZeros(%d): %.1f allocations per run", n, a)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	z.WriteZeros(1 << 40)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 0 {
		t.Errorf("WriteZeros(1 TiB) allocated %d bytes", grew)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
}

// failWriter fails once more than limit bytes have been written.
type failWriter struct{ n, limit int }

var errFail = errors.New("full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n+len(p) > f.limit {
		return 0, errFail
	}
	f.n += len(p)
	return len(p), nil
}

// TestErrors: errors from w are returned and stick; bad levels are refused.
func TestErrors(t *testing.T) {
	if _, err := NewWriter(io.Discard, 10); err == nil {
		t.Error("level 10 accepted")
	}
	if z, err := NewWriter(io.Discard, kflate.DefaultCompression); err != nil || z == nil {
		t.Errorf("DefaultCompression: %v", err)
	}
	d := noise(300000, 5)
	for _, limit := range []int{0, 5, 10, 1000, 100000, 300050, 300100} {
		z, _ := NewWriter(&failWriter{limit: limit}, DefaultLevel)
		var err error
		if _, err = z.Write(d); err == nil {
			if err = z.WriteZeros(3 * K); err == nil {
				err = z.Close()
			}
		}
		if !errors.Is(err, errFail) {
			t.Errorf("limit %d: error %v", limit, err)
		}
		if _, err := z.Write([]byte{1}); !errors.Is(err, errFail) {
			t.Errorf("limit %d: Write after failure: %v", limit, err)
		}
		if err := z.WriteZeros(K); !errors.Is(err, errFail) {
			t.Errorf("limit %d: WriteZeros after failure: %v", limit, err)
		}
		if err := z.Close(); !errors.Is(err, errFail) {
			t.Errorf("limit %d: Close after failure: %v", limit, err)
		}
	}
	z, _ := NewWriter(io.Discard, DefaultLevel)
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := z.Write([]byte{1}); err != ErrClosed {
		t.Errorf("Write after Close: %v", err)
	}
	if err := z.WriteZeros(1); err != ErrClosed {
		t.Errorf("WriteZeros after Close: %v", err)
	}
	if err := z.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkZeros60G: an empty 60 GB disk.
func BenchmarkZeros60G(b *testing.B) {
	const n = 60 << 30
	var c countWriter
	for b.Loop() {
		c.n = 0
		z, _ := NewWriter(&c, DefaultLevel)
		if err := z.WriteZeros(n); err != nil {
			b.Fatal(err)
		}
		if err := z.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.n), "out-bytes")
	b.ReportMetric(float64(n)/float64(c.n), "ratio")
}

var benchMixed []byte

// benchData is 32 MiB of testutil.MixedData, built on first use, or the
// file named by $GZIPX_BENCH_FILE (a real disk image, say).
func benchData() []byte {
	if benchMixed == nil {
		if f := os.Getenv("GZIPX_BENCH_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				panic(err)
			}
			benchMixed = b
		} else {
			benchMixed = testutil.MixedData(32<<20, 1)
		}
	}
	return benchMixed
}

// refSize is the zlib level 6 size of the benchmark data (compress/flate 6,
// standing in for CompressionStream("gzip")).
func refSize(b *testing.B, d []byte) int64 {
	var c countWriter
	w, _ := gzip.NewWriterLevel(&c, 6)
	w.Write(d)
	w.Close()
	return c.n
}

func benchLevel(b *testing.B, level int) {
	d := benchData()
	ref := refSize(b, d)
	var c countWriter
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		c.n = 0
		z, err := NewWriter(&c, level)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(d); off += 1 << 20 {
			z.Write(d[off:min(off+1<<20, len(d))])
		}
		z.Close()
	}
	b.ReportMetric(float64(c.n)/float64(ref), "size/zlib6")
	b.ReportMetric(float64(len(d))/float64(c.n), "ratio")
}

// BenchmarkMixed: testutil.MixedData at DefaultLevel.
func BenchmarkMixed(b *testing.B) { benchLevel(b, DefaultLevel) }

// BenchmarkLevels: every klauspost level on MixedData, and the reference.
func BenchmarkLevels(b *testing.B) {
	for _, l := range []int{kflate.ConstantCompression, 1, 2, 3, 4, 5, 6, 7, 9} {
		b.Run(fmt.Sprintf("klauspost-%d", l), func(b *testing.B) { benchLevel(b, l) })
	}
	b.Run("compress-flate-6", func(b *testing.B) {
		d := benchData()
		b.SetBytes(int64(len(d)))
		var c countWriter
		for b.Loop() {
			c.n = 0
			w, _ := gzip.NewWriterLevel(&c, 6)
			w.Write(d)
			w.Close()
		}
		b.ReportMetric(1, "size/zlib6")
		b.ReportMetric(float64(len(d))/float64(c.n), "ratio")
	})
}
