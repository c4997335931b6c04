package zero

import "testing"

func TestIs(t *testing.T) {
	b := make([]byte, 1000)
	if !Is(b) {
		t.Fatal("zeros")
	}
	for _, i := range []int{0, 31, 32, 999} {
		b[i] = 1
		if Is(b) {
			t.Fatalf("byte %d", i)
		}
		b[i] = 0
	}
}

func BenchmarkIs(b *testing.B) {
	buf := make([]byte, 4<<20)
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		Is(buf)
	}
}
