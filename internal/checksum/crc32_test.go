package checksum

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func TestExtendZerosMatchesTable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int64{0, 1, 2, 3, 7, 512, 4095, 65536, 1<<20 + 3} {
		prefix := make([]byte, r.IntN(100))
		for i := range prefix {
			prefix[i] = byte(r.Uint32())
		}
		want := crc32.ChecksumIEEE(append(prefix, make([]byte, n)...))
		if got := ExtendZeros(crc32.ChecksumIEEE(prefix), n); got != want {
			t.Errorf("ExtendZeros(len %d prefix, %d) = %08x, want %08x", len(prefix), n, got, want)
		}
	}
}

func TestCombine(t *testing.T) {
	a, b := []byte("hello, "), []byte("world of disks")
	want := crc32.ChecksumIEEE(append(append([]byte{}, a...), b...))
	if got := Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), int64(len(b))); got != want {
		t.Fatalf("Combine = %08x, want %08x", got, want)
	}
}

func TestDigestZeros60GB(t *testing.T) {
	// 60 GB of zeros: compare against composing 1 MiB zero CRCs by Combine,
	// an independent path through the arithmetic, plus a small direct check.
	var d Digest
	d.Zeros(60 << 30)
	mib := crc32.ChecksumIEEE(make([]byte, 1<<20))
	var c uint32
	for i := 0; i < 60<<10; i++ {
		c = Combine(c, mib, 1<<20)
	}
	if d.Sum32() != c || d.Len() != 60<<30 {
		t.Fatalf("60 GB zeros: %08x vs combined %08x", d.Sum32(), c)
	}
	if Hex(0xab) != "000000ab" {
		t.Fatal(Hex(0xab))
	}
}

func BenchmarkZeros60GB(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var d Digest
		d.Zeros(60 << 30)
	}
}
