// Package sizefmt parses and prints disk sizes the way qemu-img users write
// them: "60G", "512M", "1440K", "1.5G" or a plain byte count; suffixes are
// binary (K = 1024).
package sizefmt

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"aerodisk/internal/diskerr"
)

var units = map[byte]int64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40, 'P': 1 << 50}

// Parse reads a size. The result is a positive whole number of bytes.
func Parse(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := int64(1)
	if n := len(t); n > 0 {
		if u, ok := units[t[n-1]]; ok {
			mult, t = u, t[:n-1]
		}
	}
	if t == "" {
		return 0, diskerr.New("", diskerr.ErrBadSize, "%q is not a size (examples: 60G, 512M, 1440K)", s)
	}
	if i, err := strconv.ParseInt(t, 10, 64); err == nil {
		if i <= 0 || i > math.MaxInt64/mult {
			return 0, diskerr.New("", diskerr.ErrBadSize, "size %q is out of range", s)
		}
		return i * mult, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) || f*float64(mult) >= math.MaxInt64 {
		return 0, diskerr.New("", diskerr.ErrBadSize, "%q is not a size (examples: 60G, 512M, 1440K)", s)
	}
	b := f * float64(mult)
	if b != math.Trunc(b) {
		return 0, diskerr.New("", diskerr.ErrBadSize, "size %q is not a whole number of bytes", s)
	}
	return int64(b), nil
}

// Human prints a size in binary units with up to two decimals: "60 GiB", "1.41 MiB".
func Human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + " " + string("KMGTP"[i]) + "iB"
}
