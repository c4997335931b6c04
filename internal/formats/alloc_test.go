package formats

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
	"aerodisk/internal/testutil"
)

// TestHugeDeclarationsAllocateLittle: small files that declare enormous
// disks or tables are refused without allocating for what they declare.
// Validation happens before allocation in every reader.
func TestHugeDeclarationsAllocateLittle(t *testing.T) {
	dir := t.TempDir()
	base := testutil.BaseDisk(t, dir, "b.img", 1<<20, 3)
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	qcow := filepath.Join(dir, "q.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", base, qcow)
	vhd := filepath.Join(dir, "d.vhd")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", base, vhd)
	st := storage.NewMem(nil)
	d, err := sparse.Create(st, 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	d.WriteAt(read(base), 0)
	d.Close()

	be, le := binary.BigEndian, binary.LittleEndian
	cases := []struct {
		name  string
		file  []byte
		patch func(b []byte)
		want  error
	}{
		{"qcow2 1 PiB with a matching 16 MiB L1", read(qcow), func(b []byte) {
			be.PutUint64(b[24:], 1<<50)
			be.PutUint32(b[36:], 1<<21)
		}, ErrTruncated},
		{"qcow2 l1_size 2^31", read(qcow), func(b []byte) { be.PutUint32(b[36:], 1<<31) }, nil},
		{"vhd 2^31 BAT entries", read(vhd), func(b []byte) {
			dyn := be.Uint64(b[16:])
			be.PutUint32(b[dyn+28:], 1<<31-1)
			fixVHDChecksum(b[dyn:dyn+1024], 36)
		}, nil},
		{"aerospar 1 PiB disk", st.Bytes(), func(b []byte) {
			const disk, bs = 1 << 50, 1 << 20
			entries := uint64(disk / bs)
			le.PutUint64(b[0x18:], disk)
			le.PutUint64(b[0x28:], entries)
			le.PutUint64(b[0x30:], (64+8*entries+bs-1)/bs*bs)
		}, ErrTruncated},
	}
	for _, tc := range cases {
		tc.patch(tc.file)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Open(memSource(tc.name, tc.file), Options{})
		runtime.ReadMemStats(&after)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !isNamed(err) {
			t.Errorf("%s: got %v, want a named error (%v)", tc.name, err, tc.want)
		}
		// Allowance: the file's size plus fixed-size buffers and caches.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(tc.file))+8<<20 {
			t.Errorf("%s: allocated %d bytes for a %d-byte file", tc.name, alloc, len(tc.file))
		}
	}
}

// fixVHDChecksum recomputes a VHD checksum field at off within rec.
func fixVHDChecksum(rec []byte, off int) {
	binary.BigEndian.PutUint32(rec[off:], 0)
	var s uint32
	for _, c := range rec {
		s += uint32(c)
	}
	binary.BigEndian.PutUint32(rec[off:], ^s)
}
