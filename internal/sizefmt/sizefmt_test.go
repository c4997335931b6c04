package sizefmt

import (
	"errors"
	"testing"

	"aerodisk/internal/diskerr"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"60G": 60 << 30, "60g": 60 << 30, "20GiB": 20 << 30, "512M": 512 << 20, "400K": 409600,
		"800K": 819200, "720K": 737280, "1440K": 1474560, "1.5G": 3 << 29, "4096": 4096, " 1T ": 1 << 40,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "0", "abc", "1.0000001K", "99999999999P", "1e400"} {
		if _, err := Parse(in); !errors.Is(err, diskerr.ErrBadSize) {
			t.Errorf("Parse(%q) error = %v, want ErrBadSize", in, err)
		}
	}
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{100: "100 B", 1024: "1 KiB", 1474560: "1.41 MiB", 60 << 30: "60 GiB", 3 << 29: "1.5 GiB"} {
		if got := Human(n); got != want {
			t.Errorf("Human(%d) = %q, want %q", n, got, want)
		}
	}
}
