// Command gen-crc32wasm writes web/crc32.wasm, the helper worker's CRC32
// kernel (see internal/crc32wasm): `go generate ./internal/crc32wasm`.
package main

import (
	"flag"
	"fmt"
	"os"

	"aerodisk/internal/crc32wasm"
)

func main() {
	out := flag.String("o", "web/crc32.wasm", "output file")
	flag.Parse()
	if err := os.WriteFile(*out, crc32wasm.Module(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen-crc32wasm:", err)
		os.Exit(1)
	}
}
