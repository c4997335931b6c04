package gzipx

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"aerodisk/internal/testutil"
)

func parallelCompress(t *testing.T, comps int, ops []op) []byte {
	t.Helper()
	var buf bytes.Buffer
	z, err := NewWriter(&buf, DefaultLevel)
	if err != nil {
		t.Fatal(err)
	}
	var cs []Compressor
	for range comps {
		c, err := NewSegmentCompressor(DefaultLevel)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	p := NewParallelWriter(z, cs)
	for _, o := range ops {
		if o.data != nil {
			if n, err := p.Write(o.data); err != nil || n != len(o.data) {
				t.Fatalf("Write: %d, %v", n, err)
			}
		} else if err := p.WriteZeros(o.zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	want := summarize(t, &expected{ops: ops})
	if z.CRC32() != want.crc || z.Size() != uint64(want.n) {
		t.Fatalf("%v: CRC %08x size %d, want %08x %d", ops, z.CRC32(), z.Size(), want.crc, want.n)
	}
	r, err := gzip.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got := summarize(t, r); got != want {
		t.Fatalf("%v: decoded %+v, want %+v", ops, got, want)
	}
	return buf.Bytes()
}

// TestParallelRoundTrip: chunks compressed independently and written in
// order decode to the input, around zero runs too, with 1–3 compressors.
func TestParallelRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(99, 1))
	mixed := testutil.MixedData(6<<20, 12)
	big := testutil.MixedData(3*ParallelChunk+12345, 13)
	fixed := [][]op{
		nil,
		{data(big)},
		{data(big[:ParallelChunk])},
		{data(big), zeros(K + 5), data(big[:100]), zeros(10), data(big[:ParallelChunk+1])},
	}
	for i, ops := range fixed {
		for comps := 1; comps <= 3; comps++ {
			t.Run(fmt.Sprint("fixed", i, "x", comps), func(t *testing.T) { parallelCompress(t, comps, ops) })
		}
	}
	for i := range 15 {
		ops := randomOps(r, mixed)
		t.Run(fmt.Sprint("random", i), func(t *testing.T) { parallelCompress(t, 1+i%3, ops) })
	}
}

// TestParallelRatio: independent 4 MiB chunks cost well under 1 % of size.
func TestParallelRatio(t *testing.T) {
	d := testutil.MixedData(16<<20, 3)
	par := parallelCompress(t, 2, []op{data(d)})
	var seq bytes.Buffer
	compress(t, &seq, DefaultLevel, []op{data(d)})
	if ratio := float64(len(par)) / float64(seq.Len()); ratio > 1.01 {
		t.Fatalf("parallel output is %.4f× the sequential one", ratio)
	}
}

type failingCompressor struct{}

func (failingCompressor) Start(p []byte) func() ([]byte, uint32, error) {
	return func() ([]byte, uint32, error) { return nil, 0, errors.New("worker gone") }
}

func TestParallelError(t *testing.T) {
	z, _ := NewWriter(&bytes.Buffer{}, DefaultLevel)
	p := NewParallelWriter(z, []Compressor{failingCompressor{}})
	p.Write(make([]byte, ParallelChunk+1))
	if err := p.Close(); err == nil || err.Error() != "worker gone" {
		t.Fatalf("got %v", err)
	}
}
