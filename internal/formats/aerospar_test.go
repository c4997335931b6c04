package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
)

func aeroSparImage(t *testing.T) ([]byte, []byte) {
	t.Helper()
	const size = 40*4096 + 1024
	st := storage.NewMem(nil)
	d, err := sparse.Create(st, size, 4096)
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]byte, size)
	for _, w := range []struct {
		off int64
		s   string
	}{{0, "boot"}, {5000, "hello"}, {4096 * 7, "x"}, {4096*8 - 1, "yz"}, {size - 3, "end"}} {
		if _, err := d.WriteAt([]byte(w.s), w.off); err != nil {
			t.Fatal(err)
		}
		copy(ref[w.off:], w.s)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), st.Bytes()...), ref
}

func TestAeroSparImage(t *testing.T) {
	img, ref := aeroSparImage(t)
	src := Source{Name: "t.aerospar", R: bytes.NewReader(img), Size: int64(len(img))}
	if f, err := Detect(src.R, src.Size); err != nil || f != AeroSpar {
		t.Fatalf("Detect = %v, %v", f, err)
	}
	for _, forced := range []Format{"", AeroSpar} {
		im, err := Open(src, Options{Format: forced})
		if err != nil {
			t.Fatal(err)
		}
		info := im.Info()
		if info.Format != AeroSpar || info.VirtualSize != int64(len(ref)) || info.FileSize != int64(len(img)) || info.ClusterSize != 4096 {
			t.Fatalf("Info = %+v", info)
		}
		if info.Details["allocated-blocks"] != int64(5) || info.Details["version"] != 1 || info.Details["block-size"] != uint32(4096) {
			t.Fatalf("Details = %v", info.Details)
		}
		got := make([]byte, len(ref))
		if n, err := im.ReadAt(got, 0); n != len(ref) || err != nil || !bytes.Equal(got, ref) {
			t.Fatalf("ReadAt = %d, %v", n, err)
		}
		if n, err := im.ReadAt(make([]byte, 10), int64(len(ref))-4); n != 4 || err != io.EOF {
			t.Fatalf("ReadAt across end = %d, %v", n, err)
		}
		if _, err := im.ReadAt(got, -1); !errors.Is(err, ErrBadSize) {
			t.Fatalf("negative offset: %v", err)
		}
		// extents: [0,8192) data (blocks 0,1), [8192,28672) unallocated, [28672,36864) data (7,8), ...
		var exts []Extent
		for off := int64(0); off < im.Size(); {
			e, err := im.Extent(off, im.Size())
			if err != nil {
				t.Fatal(err)
			}
			exts = append(exts, e)
			off += e.Len
		}
		want := []Extent{
			{0, 8192, Data}, {8192, 7*4096 - 8192, Unallocated}, {7 * 4096, 8192, Data},
			{9 * 4096, 31 * 4096, Unallocated}, {40 * 4096, 1024, Data},
		}
		if len(exts) != len(want) {
			t.Fatalf("extents %v, want %v", exts, want)
		}
		for i := range want {
			if exts[i] != want[i] {
				t.Fatalf("extent %d = %v, want %v", i, exts[i], want[i])
			}
		}
		if e, err := im.Extent(100, 50); err != nil || e != (Extent{100, 50, Data}) {
			t.Fatalf("short extent %v %v", e, err)
		}
		if _, err := im.Extent(im.Size(), 1); !errors.Is(err, ErrBadSize) {
			t.Fatalf("extent past end: %v", err)
		}
		if err := im.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAeroSparCorrupt(t *testing.T) {
	img, _ := aeroSparImage(t)
	bad := append([]byte(nil), img...)
	bad[64] = 1 // entry of block 0 misaligned
	if _, err := Open(Source{R: bytes.NewReader(bad), Size: int64(len(bad))}, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt table: %v", err)
	}
	for _, n := range []int{8, 63, 64, 100, len(img) - 1} {
		if _, err := Open(Source{R: bytes.NewReader(img[:n]), Size: int64(n)}, Options{}); !errors.Is(err, ErrTruncated) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	// not AEROSPAR: forced format gives ErrUnknownFormat, detection falls to raw
	raw := make([]byte, 4096)
	if _, err := Open(Source{R: bytes.NewReader(raw), Size: 4096}, Options{Format: AeroSpar}); !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("forced on raw: %v", err)
	}
	if probeAeroSpar(bytes.NewReader(img[:7]), 7) {
		t.Fatal("probe matched 7 bytes")
	}
}

// TestAeroSparFreedSlot: a file Aero's Rust writer leaves after
// discard_range (AeroSparseDisk::discard_range, crates/aero-storage/src/
// sparse.rs) — allocated_blocks 48, 47 mapped entries, the freed slot below
// the high-water mark — opens and reads right; a duplicate entry is still
// ErrCorrupt.
func TestAeroSparFreedSlot(t *testing.T) {
	const bs = 4096
	st := storage.NewMem(nil)
	d, err := sparse.Create(st, 64*bs, bs)
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]byte, 64*bs)
	for b := range 48 {
		p := bytes.Repeat([]byte{byte(b + 1)}, bs)
		if _, err := d.WriteAt(p, int64(b*bs)); err != nil {
			t.Fatal(err)
		}
		copy(ref[b*bs:], p)
	}
	d.Close()
	img := append([]byte(nil), st.Bytes()...)
	binary.LittleEndian.PutUint64(img[64+8*20:], 0) // Rust: entry cleared, header kept (slot 20 not trailing)
	clear(ref[20*bs : 21*bs])
	im, err := Open(Source{R: bytes.NewReader(img), Size: int64(len(img))}, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if det := im.Info().Details; det["allocated-blocks"] != int64(48) || det["mapped-blocks"] != int64(47) {
		t.Fatalf("Details %v", det)
	}
	got := make([]byte, len(ref))
	if n, err := im.ReadAt(got, 0); n != len(ref) || err != nil || !bytes.Equal(got, ref) {
		t.Fatalf("ReadAt = %d, %v (content equal: %v)", n, err, bytes.Equal(got, ref))
	}
	var data int64
	for off := int64(0); off < im.Size(); {
		e, err := im.Extent(off, im.Size())
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == Data {
			data += e.Len
		}
		off += e.Len
	}
	if data != 47*bs {
		t.Fatalf("%d data bytes, want 47 blocks", data)
	}
	dup := append([]byte(nil), img...)
	binary.LittleEndian.PutUint64(dup[64+8*20:], binary.LittleEndian.Uint64(dup[64+8*21:]))
	if _, err := Open(Source{R: bytes.NewReader(dup), Size: int64(len(dup))}, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("duplicate entry: %v", err)
	}
}
