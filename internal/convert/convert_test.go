package convert

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"aerodisk/internal/formats"
	"aerodisk/internal/storage"
	"aerodisk/internal/testutil"
	"aerodisk/internal/zero"
)

// holey is an image whose extents are given explicitly, so the Zero and
// Unallocated paths are exercised with content that is known to be zero.
type holey struct {
	data []byte
	ext  []formats.Extent
}

func (h *holey) Size() int64        { return int64(len(h.data)) }
func (h *holey) Info() formats.Info { return formats.Info{Format: "test"} }
func (h *holey) Close() error       { return nil }
func (h *holey) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(h.data).ReadAt(p, off)
}
func (h *holey) Extent(off, n int64) (formats.Extent, error) {
	for _, e := range h.ext {
		if off >= e.Off && off < e.Off+e.Len {
			return formats.Extent{Off: off, Len: min(n, e.Off+e.Len-off), Kind: e.Kind}, nil
		}
	}
	return formats.Extent{}, io.ErrUnexpectedEOF
}

func newHoley() *holey {
	const mib = 1 << 20
	data := make([]byte, 11*mib+512)
	copy(data[0:], testutil.MixedData(3*mib, 1))
	copy(data[5*mib:], testutil.MixedData(2*mib+512, 2))
	return &holey{data: data, ext: []formats.Extent{
		{Off: 0, Len: 3 * mib, Kind: formats.Data},
		{Off: 3 * mib, Len: mib, Kind: formats.Zero},
		{Off: 4 * mib, Len: mib, Kind: formats.Unallocated},
		{Off: 5 * mib, Len: 4 * mib, Kind: formats.Data}, // ends in 2 MiB of zeros
		{Off: 9 * mib, Len: 2*mib + 512, Kind: formats.Unallocated},
	}}
}

func TestConvertCopiesAndChecksums(t *testing.T) {
	src := newHoley()
	for _, chunk := range []int{0, 64 << 10, 1 << 20, 3<<20 + 12345} {
		dst := storage.NewMem(nil)
		var last Progress
		calls := 0
		res, err := Convert(context.Background(), src, dst, Options{ChunkSize: chunk, ProgressEvery: 1, Progress: func(p Progress) {
			if p.Done < last.Done || p.Total != src.Size() {
				t.Fatalf("progress went from %+v to %+v", last, p)
			}
			last, calls = p, calls+1
		}})
		if err != nil {
			t.Fatal(err)
		}
		if want := crc32.ChecksumIEEE(src.data); res.Checksum != want {
			t.Fatalf("chunk %d: checksum %08x, want %08x", chunk, res.Checksum, want)
		}
		if last.Done != src.Size() || calls < 2 {
			t.Fatalf("final progress %+v after %d calls", last, calls)
		}
		dst.Truncate(src.Size())
		if !bytes.Equal(dst.Bytes(), src.data) {
			t.Fatalf("chunk %d: copy differs", chunk)
		}
		// Zero runs inside Data extents are not written: only non-zero bytes are.
		nonZero := int64(0)
		for i := 0; i < len(src.data); i += zeroGrain {
			if !zero.Is(src.data[i:min(i+zeroGrain, len(src.data))]) {
				nonZero += int64(min(zeroGrain, len(src.data)-i))
			}
		}
		if res.DataBytes != nonZero {
			t.Fatalf("wrote %d bytes, want %d (non-zero grains only)", res.DataBytes, nonZero)
		}
	}
}

func TestConvertChecksumOnly(t *testing.T) {
	src := newHoley()
	res, err := Convert(context.Background(), src, nil, Options{})
	if err != nil || res.Checksum != crc32.ChecksumIEEE(src.data) || res.DataBytes != 0 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestConvertCancel(t *testing.T) {
	src := newHoley()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Convert(ctx, src, storage.NewMem(nil), Options{ChunkSize: 64 << 10, ProgressEvery: 1, Progress: func(p Progress) {
		if p.Done > 1<<20 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

type failingWriter struct{}

func (failingWriter) WriteAt(p []byte, off int64) (int, error) { return 0, errors.New("disk full") }

func TestConvertWriteError(t *testing.T) {
	if _, err := Convert(context.Background(), newHoley(), failingWriter{}, Options{}); err == nil || err.Error() != "disk full" {
		t.Fatalf("got %v", err)
	}
}

// failingImage is newHoley whose content cannot be read from bad on.
type failingImage struct {
	*holey
	bad int64
}

func (f failingImage) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.bad {
		n, _ := f.holey.ReadAt(p[:max(0, f.bad-off)], off)
		return n, errors.New("bad sector")
	}
	return f.holey.ReadAt(p, off)
}

func TestConvertReadError(t *testing.T) {
	src := failingImage{newHoley(), 6<<20 + 100}
	dst := storage.NewMem(nil)
	res, err := Convert(context.Background(), src, dst, Options{ChunkSize: 1 << 20})
	if err == nil || err.Error() != "bad sector" {
		t.Fatalf("got %v, want the read error", err)
	}
	// every chunk before the bad one was written
	if res.DataBytes == 0 || !bytes.Equal(dst.Bytes()[:3<<20], src.data[:3<<20]) {
		t.Fatalf("wrote %d bytes before the error", res.DataBytes)
	}
}

// TestCopyStream: the stream copy runs the same pipeline: every byte
// written in order (zeros too), the CRC of all of them, progress to the end.
func TestCopyStream(t *testing.T) {
	data := newHoley().data
	for _, chunk := range []int{0, 64 << 10, 1<<20 + 3} {
		dst := storage.NewMem(nil)
		var last Progress
		crc, err := CopyStream(context.Background(), bytes.NewReader(data), dst, int64(len(data)), Options{ChunkSize: chunk, ProgressEvery: 1, Progress: func(p Progress) {
			if p.Done < last.Done || p.Total != int64(len(data)) {
				t.Fatalf("progress went from %+v to %+v", last, p)
			}
			last = p
		}})
		if err != nil || crc != crc32.ChecksumIEEE(data) {
			t.Fatalf("chunk %d: crc %08x, %v", chunk, crc, err)
		}
		if !bytes.Equal(dst.Bytes(), data) || last.Done != int64(len(data)) {
			t.Fatalf("chunk %d: copy differs or progress ended at %+v", chunk, last)
		}
	}
	// an empty stream
	if crc, err := CopyStream(context.Background(), bytes.NewReader(nil), storage.NewMem(nil), 0, Options{}); crc != 0 || err != nil {
		t.Fatalf("empty: %08x, %v", crc, err)
	}
}

func TestCopyStreamErrors(t *testing.T) {
	data := newHoley().data
	size := int64(len(data))
	// the input ends before its declared size
	if _, err := CopyStream(context.Background(), bytes.NewReader(data[:size-1]), storage.NewMem(nil), size, Options{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short input: %v, want io.ErrUnexpectedEOF", err)
	}
	// a write error
	if _, err := CopyStream(context.Background(), bytes.NewReader(data), failingWriter{}, size, Options{}); err == nil || err.Error() != "disk full" {
		t.Errorf("write error: %v", err)
	}
	// a read error
	r := io.MultiReader(bytes.NewReader(data[:1<<20]), iotestErr{})
	if _, err := CopyStream(context.Background(), r, storage.NewMem(nil), size, Options{ChunkSize: 64 << 10}); err == nil || err.Error() != "read failed" {
		t.Errorf("read error: %v", err)
	}
	// cancelled from the progress callback
	ctx, cancel := context.WithCancel(context.Background())
	_, err := CopyStream(ctx, bytes.NewReader(data), storage.NewMem(nil), size, Options{ChunkSize: 64 << 10, ProgressEvery: 1, Progress: func(p Progress) {
		if p.Done > 1<<20 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v, want context.Canceled", err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("read failed") }
