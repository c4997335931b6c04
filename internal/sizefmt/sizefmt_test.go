package sizefmt

import (
	"errors"
	"testing"

	"aerodisk/internal/diskerr"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"60G": 60 << 30, "60g": 60 << 30, "20GiB": 20 << 30, "20 gib": 20 << 30, "512M": 512 << 20, "400K": 409600,
		"800K": 819200, "720K": 737280, "1440K": 1474560, "1.5G": 3 << 29, "4096": 4096, " 1T ": 1 << 40, "512 B": 512,
		"60GB": 60e9, "60 GB": 60e9, "60 gb": 60e9, "1.5GB": 1.5e9, "512 MB": 512e6, "20 kB": 20e3, "2,5 MB": 2.5e6,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "0", "abc", "lots", "1.0000001K", "99999999999P", "1e400", "5 XB", "1.5.5G"} {
		if _, err := Parse(in); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("Parse(%q) error = %v, want ErrBadSize", in, err)
		}
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{
		100: "100 B", 999: "999 B", 1000: "1 KB", 1024: "1.02 KB", 1474560: "1.47 MB", 60e9: "60 GB",
		60 << 30: "64.4 GB", 3 << 29: "1.61 GB", 999999: "1 MB", 268435456: "268 MB", 2 << 40: "2.2 TB",
	} {
		if got := Human(n); got != want {
			t.Errorf("Human(%d) = %q, want %q", n, got, want)
		}
	}
	if got := Exact(1474560); got != "1,474,560 bytes" {
		t.Errorf("Exact: %q", got)
	}
	if got := Exact(512); got != "512 bytes" {
		t.Errorf("Exact: %q", got)
	}
}
