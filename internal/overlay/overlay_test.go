package overlay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"aerodisk/internal/diskerr"
	"aerodisk/internal/layer"
	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
)

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// scribble writes and discards at random through dev and into m.
func scribble(t *testing.T, r *rand.Rand, dev *Device, m []byte, ops int) {
	t.Helper()
	size := int64(len(m))
	for range ops {
		off := r.Int64N(size/512) * 512
		n := min(size-off, 512*(1+r.Int64N(300)))
		if r.IntN(5) == 0 {
			if err := dev.Discard(off, n); err != nil {
				t.Fatal(err)
			}
			clear(m[off : off+n])
			continue
		}
		p := randomBytes(r, int(n))
		if _, err := dev.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		copy(m[off:], p)
	}
}

func view(t *testing.T, r io.ReaderAt, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	if n, err := r.ReadAt(b, 0); n != size || (err != nil && err != io.EOF) {
		t.Fatalf("read %d of %d: %v", n, size, err)
	}
	return b
}

func newLayer(t *testing.T, size int64, below io.ReaderAt) *layer.Layer {
	t.Helper()
	l, err := layer.Create(storage.NewMem(nil), size, layer.Options{BlockSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	l.SetBelow(below)
	return l
}

func TestDeviceRules(t *testing.T) {
	const size = 1 << 20
	base := make([]byte, size)
	dev := NewDevice(newLayer(t, size, bytes.NewReader(base)), false)
	for _, c := range []struct{ off, n int64 }{{1, 512}, {0, 100}, {size, 512}, {size - 512, 1024}, {-512, 512}} {
		if _, err := dev.WriteAt(make([]byte, c.n), c.off); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("write [%d,+%d): %v", c.off, c.n, err)
		}
		if _, err := dev.ReadAt(make([]byte, c.n), c.off); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("read [%d,+%d): %v", c.off, c.n, err)
		}
	}
	ro := NewDevice(dev.Layer(), true)
	if _, err := ro.WriteAt(make([]byte, 512), 0); !errors.Is(err, diskerr.ErrReadOnly) {
		t.Fatalf("read-only write: %v", err)
	}
	if err := ro.Discard(0, 512); !errors.Is(err, diskerr.ErrReadOnly) {
		t.Fatalf("read-only discard: %v", err)
	}
}

// TestCommitDown commits a layer into a raw and an AEROSPAR base,
// stopped at every few blocks and run again: the base ends as the chain
// read.
func TestCommitDown(t *testing.T) {
	for _, kind := range []string{"raw", "aerospar"} {
		t.Run(kind, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(kind))))
			const size = 3 << 20
			pristine := randomBytes(r, size)
			var base io.ReaderAt
			var dst Target
			switch kind {
			case "raw":
				st := storage.NewMem(pristine)
				base, dst = st, &RawTarget{W: st}
			case "aerospar":
				d, err := sparse.Create(storage.NewMem(nil), size, 64<<10)
				if err != nil {
					t.Fatal(err)
				}
				d.WriteAt(pristine, 0)
				base, dst = d, d
			}
			top := newLayer(t, size, base)
			m := append([]byte(nil), pristine...)
			scribble(t, r, NewDevice(top, false), m, 80)
			// Stopped after k steps, for growing k, then run to the end.
			for k := 1; ; k *= 3 {
				ctx, cancel := context.WithCancel(context.Background())
				steps := 0
				p := &Pacer{Ctx: ctx, Budget: 1, Yield: func() {
					if steps++; steps == k {
						cancel()
					}
				}}
				err := CommitDown(top, dst, p)
				cancel()
				// Whatever moment it stopped, the chain reads the same.
				if got := view(t, top, size); !bytes.Equal(got, m) {
					t.Fatalf("after %d steps the chain reads differently", k)
				}
				if err == nil {
					break
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
			}
			if got := view(t, base, size); !bytes.Equal(got, m) {
				t.Fatal("the base after the commit is not what the chain read")
			}
		})
	}
}

// TestMergeUp merges the middle layer of three into the top one: the top
// reads the same at every step, and then straight over the bottom layer.
func TestMergeUp(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	const size = 2<<20 + 512
	base := randomBytes(r, size)
	m := append([]byte(nil), base...)
	l1 := newLayer(t, size, bytes.NewReader(base))
	scribble(t, r, NewDevice(l1, false), m, 60)
	l2 := newLayer(t, size, l1)
	scribble(t, r, NewDevice(l2, false), m, 60)
	atL1 := view(t, l1, size)
	for k := 1; ; k *= 2 {
		ctx, cancel := context.WithCancel(context.Background())
		steps := 0
		err := MergeUp(l1, l2, &Pacer{Ctx: ctx, Budget: 1, Yield: func() {
			if steps++; steps == k {
				cancel()
			}
		}})
		cancel()
		if got := view(t, l2, size); !bytes.Equal(got, m) {
			t.Fatalf("after %d steps the top reads differently", k)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	l2.SetBelow(bytes.NewReader(base))
	if got := view(t, l2, size); !bytes.Equal(got, m) {
		t.Fatal("the merged layer over the base reads differently")
	}
	if got := view(t, l1, size); !bytes.Equal(got, atL1) {
		t.Fatal("the lower layer changed")
	}
}

// TestDeltaOfChain: the changes of two layers, as a delta, applied to the
// pristine base give the top's view.
func TestDeltaOfChain(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	const size = 2 << 20
	base := randomBytes(r, size)
	m := append([]byte(nil), base...)
	l1 := newLayer(t, size, bytes.NewReader(base))
	scribble(t, r, NewDevice(l1, false), m, 50)
	l2 := newLayer(t, size, l1)
	scribble(t, r, NewDevice(l2, false), m, 50)
	var out bytes.Buffer
	if _, err := layer.WriteDelta(&out, layer.DeltaInfo{DiskSize: size, BlockSize: 16 << 10}, Changes{Layers: []*layer.Layer{l1, l2}}); err != nil {
		t.Fatal(err)
	}
	d, err := layer.OpenReader(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	d.SetBelow(bytes.NewReader(base))
	if got := view(t, d, size); !bytes.Equal(got, m) {
		t.Fatal("the delta over the base reads differently from the chain")
	}
}
