package blockdev_test

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"aerodisk/internal/blockdev"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/formats"
	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
	"aerodisk/internal/testutil"
)

// Every device is checked against a model []byte: what the disk must read
// after the same writes and discards. The stores are storage.Mem and host
// files, the same code paths the browser's OPFS and IndexedDB files take
// through storage.Storage.

const diskSize = 9<<20 + 7*512 // not a multiple of a block, a zero piece or 1 MiB

// store is a storage.Storage under test and how to see its bytes.
type store struct {
	name string
	new  func(t *testing.T, content []byte) storage.Storage
}

var stores = []store{
	{"mem", func(t *testing.T, content []byte) storage.Storage { return storage.NewMem(content) }},
	{"file", func(t *testing.T, content []byte) storage.Storage {
		path := filepath.Join(t.TempDir(), "disk")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return storage.File{File: f}
	}},
}

// opener makes a writable device over a store holding the disk content.
type opener struct {
	name string
	open func(t *testing.T, s store, content []byte) (blockdev.Device, func() []byte)
}

var writable = []opener{
	{"raw", func(t *testing.T, s store, content []byte) (blockdev.Device, func() []byte) {
		st := s.new(t, content)
		d, err := blockdev.NewRaw(st, int64(len(content)))
		if err != nil {
			t.Fatal(err)
		}
		return d, func() []byte { return storeBytes(t, st) }
	}},
	{"aerospar", func(t *testing.T, s store, content []byte) (blockdev.Device, func() []byte) {
		st := s.new(t, nil)
		sd, err := sparse.Create(st, int64(len(content)), 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sd.WriteAt(content, 0); err != nil {
			t.Fatal(err)
		}
		d, err := blockdev.NewSparse(sd)
		if err != nil {
			t.Fatal(err)
		}
		// The logical content, read back through a fresh open of the
		// file: the image stays valid after every operation.
		return d, func() []byte {
			b := storeBytes(t, st)
			img, err := sparse.Open(storage.NewMem(b), false)
			if err != nil {
				t.Fatalf("the AEROSPAR file no longer opens: %v", err)
			}
			out := make([]byte, img.Size())
			if _, err := img.ReadAt(out, 0); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}},
}

func storeBytes(t *testing.T, st storage.Storage) []byte {
	t.Helper()
	n, err := st.Size()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := st.ReadAt(b, 0); err != nil && n > 0 {
		t.Fatal(err)
	}
	return b
}

func each(t *testing.T, f func(t *testing.T, s store, o opener)) {
	for _, o := range writable {
		for _, s := range stores {
			t.Run(o.name+"/"+s.name, func(t *testing.T) {
				t.Parallel()
				f(t, s, o)
			})
		}
	}
}

func pattern(n int, seed uint64) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func readAll(t *testing.T, d blockdev.Device) []byte {
	t.Helper()
	b := make([]byte, d.Size())
	if n, err := d.ReadAt(b, 0); err != nil || n != len(b) {
		t.Fatalf("reading the whole disk: %d, %v", n, err)
	}
	return b
}

// TestEdges: the first and last sectors, a discard across zero pieces and
// blocks, all read back through the device and the stored file.
func TestEdges(t *testing.T) {
	each(t, func(t *testing.T, s store, o opener) {
		model := pattern(diskSize, 1)
		d, stored := o.open(t, s, model)
		if d.Size() != diskSize || d.ReadOnly() {
			t.Fatalf("size %d, read-only %v", d.Size(), d.ReadOnly())
		}
		write := func(off int64, p []byte) {
			t.Helper()
			if n, err := d.WriteAt(p, off); err != nil || n != len(p) {
				t.Fatalf("write [%d,+%d): %d, %v", off, len(p), n, err)
			}
			copy(model[off:], p)
		}
		discard := func(off, n int64) {
			t.Helper()
			if err := d.Discard(off, n); err != nil {
				t.Fatalf("discard [%d,+%d): %v", off, n, err)
			}
			clear(model[off : off+n])
		}
		write(0, pattern(512, 2))
		write(diskSize-512, pattern(512, 3))
		write(diskSize-3*512, pattern(3*512, 4))
		discard(blockdev.ZeroPiece-512, blockdev.ZeroPiece+1024) // across two piece boundaries
		discard(diskSize-512, 512)
		discard(0, 512)
		discard(64<<10, 128<<10) // whole AEROSPAR blocks
		write(64<<10+512, pattern(512, 5))
		got := make([]byte, 512)
		for _, off := range []int64{0, 512, diskSize - 512, blockdev.ZeroPiece - 512, blockdev.ZeroPiece, 64<<10 + 512} {
			if _, err := d.ReadAt(got, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, model[off:off+512]) {
				t.Errorf("sector at %d differs", off)
			}
		}
		if !bytes.Equal(readAll(t, d), model) {
			t.Error("the device does not read back its writes")
		}
		if err := d.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored(), model) {
			t.Error("the stored disk does not hold the writes")
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRangesRefused: every method refuses what CheckRange refuses, with
// ErrBadSize, and changes nothing.
func TestRangesRefused(t *testing.T) {
	bad := []struct{ off, n int64 }{
		{1, 512}, {512, 511}, {0, 0}, {-512, 512}, {0, -512},
		{diskSize, 512}, {diskSize - 512, 1024}, {diskSize + 512, 512}, {0, diskSize + 512},
		{1 << 62, 1 << 62}, // off+n overflows
	}
	each(t, func(t *testing.T, s store, o opener) {
		model := pattern(diskSize, 6)
		d, stored := o.open(t, s, model)
		for _, b := range bad {
			var p []byte
			if b.n > 0 && b.n <= diskSize+512 {
				p = make([]byte, b.n)
			}
			if p == nil && b.n != 0 {
				// A slice cannot have the length; the discard still can.
				if err := d.Discard(b.off, b.n); !errors.Is(err, diskerr.ErrBadSize) {
					t.Errorf("discard [%d,+%d): %v, want ErrBadSize", b.off, b.n, err)
				}
				continue
			}
			if _, err := d.ReadAt(p, b.off); !errors.Is(err, diskerr.ErrBadSize) {
				t.Errorf("read [%d,+%d): %v, want ErrBadSize", b.off, b.n, err)
			}
			if _, err := d.WriteAt(bytes.Repeat([]byte{0xee}, len(p)), b.off); !errors.Is(err, diskerr.ErrBadSize) {
				t.Errorf("write [%d,+%d): %v, want ErrBadSize", b.off, b.n, err)
			}
			if err := d.Discard(b.off, b.n); !errors.Is(err, diskerr.ErrBadSize) {
				t.Errorf("discard [%d,+%d): %v, want ErrBadSize", b.off, b.n, err)
			}
		}
		if !bytes.Equal(readAll(t, d), model) || !bytes.Equal(stored(), model) {
			t.Error("a refused request changed the disk")
		}
		d.Close()
	})
}

// TestModel: a random sequence of writes, discards, reads and flushes,
// aligned and sized as an emulator would (1 sector to 3 zero pieces),
// against the model byte for byte; then the stored disk itself.
func TestModel(t *testing.T) {
	each(t, func(t *testing.T, s store, o opener) {
		r := rand.New(rand.NewPCG(7, uint64(len(o.name)+len(s.name))))
		model := make([]byte, diskSize)
		if o.name == "raw" {
			model = pattern(diskSize, 8)
		}
		d, stored := o.open(t, s, model)
		sectors := int64(diskSize / 512)
		span := func() (int64, int64) {
			n := 1 + r.Int64N(min(sectors, 3*blockdev.ZeroPiece/512))
			if r.IntN(3) == 0 {
				n = 1 + r.Int64N(8) // small requests, often
			}
			off := r.Int64N(sectors - n + 1)
			return off * 512, n * 512
		}
		for i := range 400 {
			off, n := span()
			switch r.IntN(5) {
			case 0, 1:
				p := pattern(int(n), uint64(i))
				if r.IntN(4) == 0 {
					clear(p[:len(p)/2]) // zeros over allocated and unallocated blocks
				}
				if _, err := d.WriteAt(p, off); err != nil {
					t.Fatalf("op %d: write [%d,+%d): %v", i, off, n, err)
				}
				copy(model[off:], p)
			case 2:
				if err := d.Discard(off, n); err != nil {
					t.Fatalf("op %d: discard [%d,+%d): %v", i, off, n, err)
				}
				clear(model[off : off+n])
			case 3:
				got := make([]byte, n)
				if _, err := d.ReadAt(got, off); err != nil {
					t.Fatalf("op %d: read [%d,+%d): %v", i, off, n, err)
				}
				if !bytes.Equal(got, model[off:off+n]) {
					t.Fatalf("op %d: read [%d,+%d) differs from the model", i, off, n)
				}
			case 4:
				if err := d.Flush(); err != nil {
					t.Fatalf("op %d: flush: %v", i, err)
				}
			}
		}
		if !bytes.Equal(readAll(t, d), model) {
			t.Fatal("the device differs from the model")
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored(), model) {
			t.Fatal("the stored disk differs from the model")
		}
	})
}

// TestClosed: after Close every method fails with fs.ErrClosed, and a second
// Close is no error.
func TestClosed(t *testing.T) {
	each(t, func(t *testing.T, s store, o opener) {
		d, _ := o.open(t, s, pattern(diskSize, 9))
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 512)
		if _, err := d.ReadAt(p, 0); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("read after close: %v", err)
		}
		if _, err := d.WriteAt(p, 0); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("write after close: %v", err)
		}
		if err := d.Discard(0, 512); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("discard after close: %v", err)
		}
		if err := d.Flush(); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("flush after close: %v", err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	})
}

// TestRawShortFile: a raw file shorter than the disk it should hold reads
// as a truncated image, not as zeros.
func TestRawShortFile(t *testing.T) {
	st := storage.NewMem(pattern(4096, 10))
	d, err := blockdev.NewRaw(st, 8192)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(make([]byte, 1024), 3584); !errors.Is(err, diskerr.ErrTruncated) {
		t.Errorf("read past the file's end: %v, want ErrTruncated", err)
	}
	for _, size := range []int64{0, -512, 1000} {
		if _, err := blockdev.NewRaw(st, size); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("NewRaw(%d): %v, want ErrBadSize", size, err)
		}
	}
}

// TestSparseNeedsWritable: a read-only AEROSPAR image is the read-only
// device's, not the direct writer's.
func TestSparseNeedsWritable(t *testing.T) {
	st := storage.NewMem(nil)
	sd, err := sparse.Create(st, 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	sd.Close()
	ro, err := sparse.Open(st, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blockdev.NewSparse(ro); !errors.Is(err, diskerr.ErrReadOnly) {
		t.Errorf("NewSparse over a read-only image: %v, want ErrReadOnly", err)
	}
}

// TestReadOnly: a device over each stored format's reader reads the
// logical content qemu-img gives; writes and discards fail with
// ErrReadOnly after the range check, and change nothing.
func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	base := testutil.MixedData(diskSize, 11)
	basePath := testutil.WriteFile(t, dir, "base.img", base)
	qcow := filepath.Join(dir, "disk.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", basePath, qcow)
	vhd := filepath.Join(dir, "disk.vhd")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", basePath, vhd)
	for _, path := range []string{basePath, qcow, vhd} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(testutil.QemuRaw(t, formatOf(path), path))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			img, err := formats.Open(formats.Source{Name: path, R: bytes.NewReader(raw), Size: int64(len(raw))}, formats.Options{})
			if err != nil {
				t.Fatal(err)
			}
			d := blockdev.NewReadOnly(img)
			if !d.ReadOnly() || d.Size() != int64(len(want)) {
				t.Fatalf("read-only %v, size %d (want %d)", d.ReadOnly(), d.Size(), len(want))
			}
			got := make([]byte, d.Size()/512*512)
			if _, err := d.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[:len(got)]) {
				t.Error("the device does not read the logical content")
			}
			last := make([]byte, 512)
			if _, err := d.ReadAt(last, int64(len(got))-512); err != nil || !bytes.Equal(last, want[len(got)-512:len(got)]) {
				t.Errorf("the last sector: %v", err)
			}
			if _, err := d.WriteAt(make([]byte, 512), 0); !errors.Is(err, diskerr.ErrReadOnly) {
				t.Errorf("write: %v, want ErrReadOnly", err)
			}
			if err := d.Discard(0, 512); !errors.Is(err, diskerr.ErrReadOnly) {
				t.Errorf("discard: %v, want ErrReadOnly", err)
			}
			if _, err := d.WriteAt(make([]byte, 100), 0); !errors.Is(err, diskerr.ErrBadSize) {
				t.Errorf("misaligned write: %v, want ErrBadSize (the range is checked first)", err)
			}
			if _, err := d.ReadAt(make([]byte, 512), 511); !errors.Is(err, diskerr.ErrBadSize) {
				t.Errorf("misaligned read: %v, want ErrBadSize", err)
			}
			if err := d.Flush(); err != nil {
				t.Errorf("flush: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := d.ReadAt(last, 0); !errors.Is(err, fs.ErrClosed) {
				t.Errorf("read after close: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, raw) {
				t.Error("the image file changed")
			}
		})
	}
}

func formatOf(path string) string {
	switch filepath.Ext(path) {
	case ".qcow2":
		return "qcow2"
	case ".vhd":
		return "vpc"
	}
	return "raw"
}
