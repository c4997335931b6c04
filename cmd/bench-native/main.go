// Command bench-native times `aerodisk convert` against `qemu-img convert`
// on the same 2 GiB qcow2 (about 512 MiB of mixed random and text-like data)
// in one run, and prints the ratio. `make bench-native` runs it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"aerodisk/internal/testutil"
)

func main() {
	var (
		virtual = flag.Int64("size", 2<<30, "virtual size of the qcow2")
		data    = flag.Int64("data", 512<<20, "bytes of data in it")
		rounds  = flag.Int("rounds", 5, "timed rounds per tool (median reported)")
	)
	flag.Parse()
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "aerodisk-bench-")
	check(err)
	defer os.RemoveAll(dir)

	bin := filepath.Join(dir, "aerodisk")
	run("go", "build", "-o", bin, "./cmd/aerodisk")

	// A raw disk with `data` bytes spread in 8 MiB runs, then qcow2 from it.
	raw := filepath.Join(dir, "src.raw")
	f, err := os.Create(raw)
	check(err)
	check(f.Truncate(*virtual))
	const run8 = 8 << 20
	n := *data / run8
	stride := *virtual / n
	for i := int64(0); i < n; i++ {
		_, err := f.WriteAt(testutil.MixedData(run8, uint64(i+1)), i*stride)
		check(err)
	}
	check(f.Close())
	src := filepath.Join(dir, "src.qcow2")
	run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, src)
	os.Remove(raw)
	fi, _ := os.Stat(src)
	fmt.Printf("input: qcow2, virtual %d MiB, %d MiB of data, file %d MiB\n", *virtual>>20, *data>>20, fi.Size()>>20)

	outQ, outA := filepath.Join(dir, "q.raw"), filepath.Join(dir, "a.raw")
	var tq, ta, ts []time.Duration
	for r := 0; r < *rounds; r++ { // alternate so drift affects both alike
		tq = append(tq, timed("qemu-img", "convert", "-f", "qcow2", "-O", "raw", src, outQ))
		ta = append(ta, timed(bin, "convert", "-O", "raw", src, outA))
	}
	if !sameFiles(outQ, outA) {
		log.Fatal("outputs differ: aerodisk convert -O raw != qemu-img convert -O raw")
	}
	spar := filepath.Join(dir, "a.aerospar")
	for r := 0; r < *rounds; r++ {
		ts = append(ts, timed(bin, "convert", "-O", "aerospar", src, spar))
	}
	mq, ma, ms := median(tq), median(ta), median(ts)
	fmt.Printf("qemu-img convert -O raw:      %v\n", mq.Round(time.Millisecond))
	fmt.Printf("aerodisk convert -O raw:      %v\n", ma.Round(time.Millisecond))
	fmt.Printf("ratio aerodisk/qemu-img:      %.2fx (target <= 1.0x)\n", ma.Seconds()/mq.Seconds())
	sfi, _ := os.Stat(spar)
	fmt.Printf("aerodisk convert -O aerospar: %v, %.0f MB/s logical, %.0f MB/s of data, output %d MiB\n",
		ms.Round(time.Millisecond), float64(*virtual)/ms.Seconds()/1e6, float64(*data)/ms.Seconds()/1e6, sfi.Size()>>20)
}

// timed runs one conversion from the same starting state: the previous
// output removed and the page cache's dirty data written back, so neither
// tool pays for the other's write-back.
func timed(name string, args ...string) time.Duration {
	os.Remove(args[len(args)-1])
	syscall.Sync()
	start := time.Now()
	run(name, args...)
	return time.Since(start)
}

func run(name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("%s %v: %v", name, args, err)
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func sameFiles(a, b string) bool {
	fa, err := os.Open(a)
	check(err)
	defer fa.Close()
	fb, err := os.Open(b)
	check(err)
	defer fb.Close()
	ba, bb := make([]byte, 4<<20), make([]byte, 4<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return ea == eb || (na == nb && ea != nil && eb != nil)
		}
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
