package layer

import (
	"bytes"
	"io"
	"testing"

	"aerodisk/internal/storage"
)

func layerSeed(f *testing.F, size int64, bs uint32, writes map[int64]int) []byte {
	st := storage.NewMem(nil)
	l, err := Create(st, size, Options{BlockSize: bs, ParentName: "base"})
	if err != nil {
		f.Fatal(err)
	}
	for off, n := range writes {
		p := bytes.Repeat([]byte{byte(off) | 1}, n)
		if _, err := l.WriteAt(p, off); err != nil {
			f.Fatal(err)
		}
	}
	l.Discard(0, int64(bs))
	return append([]byte(nil), st.Bytes()...)
}

// FuzzLayer opens arbitrary bytes as a layer, reads the whole view, checks
// it and writes through a copy: named errors, never a panic, memory bounded
// by the input (the L1 and every table lie inside the file).
func FuzzLayer(f *testing.F) {
	f.Add(layerSeed(f, 64<<10, MinBlockSize, map[int64]int{5000: 3, 40000: 9000}))
	f.Add(layerSeed(f, 3<<20, MinBlockSize, map[int64]int{2 << 20: 4096, 100: 1}))
	f.Add(layerSeed(f, 1<<20, DefaultBlockSize, map[int64]int{70000: 10}))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := OpenReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		if l.Size() > 64<<20 {
			return // the view of a huge disk: Check alone
		}
		l.Check()
		buf := make([]byte, 256<<10)
		for off := int64(0); off < l.Size(); off += int64(len(buf)) {
			if _, err := l.ReadAt(buf, off); err != nil && err != io.EOF {
				break
			}
		}
		w, err := Open(storage.NewMem(b), true)
		if err != nil {
			return
		}
		w.WriteAt(make([]byte, 1000), l.Size()/2)
		w.Discard(0, min(l.Size(), 8192))
		w.Check()
	})
}

// FuzzDelta checks arbitrary bytes as a delta.
func FuzzDelta(f *testing.F) {
	var out bytes.Buffer
	l, _ := Create(storage.NewMem(nil), 1<<20, Options{BlockSize: MinBlockSize})
	l.WriteAt(bytes.Repeat([]byte{7}, 9000), 3000)
	l.Discard(64<<10, 8192)
	if _, err := WriteDelta(&out, DeltaInfo{DiskSize: 1 << 20, BlockSize: MinBlockSize, BaseName: "b"}, layerSource{l}); err != nil {
		f.Fatal(err)
	}
	f.Add(out.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		VerifyDelta(bytes.NewReader(b), int64(len(b)))
		c := NewFooterCheck()
		c.Write(b)
		c.Verify()
	})
}
