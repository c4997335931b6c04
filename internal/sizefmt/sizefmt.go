// Package sizefmt is the one size rule (docs/units.md), for the command
// line, the engine and the page alike.
//
// Reading: a number, then optionally a unit, case-insensitive and with or
// without a space: "B" or none is bytes; "K", "M", "G", "T", "P" alone
// (qemu-img's convention: 60G) and "KiB" … "PiB" are powers of 1024; "KB"
// (or "kB") … "PB" are powers of 1000, as disk labels and the page's
// presets are. So 60G = 60 GiB = 64,424,509,440 bytes, 60 GB = 60,000,000,000.
//
// Writing, for a person: decimal units with three significant digits, as
// the page prints them (1.47 MB, 60 GB, 64.4 GB), with the exact byte count
// where a size must be exact (Exact).
package sizefmt

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"aerodisk/internal/diskerr"
)

// Units maps each unit (upper case) to its size in bytes.
var Units = map[string]int64{
	"": 1, "B": 1,
	"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50,
	"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40, "PIB": 1 << 50,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
}

var sizeRE = regexp.MustCompile(`^(\d+(?:[.,]\d*)?|[.,]\d+)\s*([A-Za-z]*)$`)

// Value reads s as a number and a unit: the size is value × unit bytes,
// which need not be whole.
func Value(s string) (value float64, unit int64, err error) {
	t := strings.TrimSpace(s)
	m := sizeRE.FindStringSubmatch(t)
	if m == nil {
		return 0, 0, diskerr.New("", diskerr.ErrBadSize, "“%s” is not a size: write it like 20 GB, 60G or 512 MiB", t)
	}
	unit, ok := Units[strings.ToUpper(m[2])]
	if !ok {
		return 0, 0, diskerr.New("", diskerr.ErrBadSize, "“%s” is not a size: %q is not a unit (B, K/KiB, M/MiB, G/GiB, T/TiB are powers of 1024; KB, MB, GB, TB powers of 1000)", t, m[2])
	}
	value, err = strconv.ParseFloat(strings.Replace(m[1], ",", ".", 1), 64)
	if err != nil || math.IsInf(value, 0) || value*float64(unit) >= math.MaxInt64 {
		return 0, 0, diskerr.New("", diskerr.ErrBadSize, "size “%s” is out of range", t)
	}
	return value, unit, nil
}

// Parse reads a size that must be a positive whole number of bytes (the
// command line's --size and --block-size).
func Parse(s string) (int64, error) {
	v, unit, err := Value(s)
	if err != nil {
		return 0, err
	}
	b := v * float64(unit)
	switch {
	case b <= 0:
		return 0, diskerr.New("", diskerr.ErrBadSize, "size “%s” is not above zero", strings.TrimSpace(s))
	case b != math.Trunc(b):
		return 0, diskerr.New("", diskerr.ErrBadSize, "size “%s” is not a whole number of bytes", strings.TrimSpace(s))
	}
	return int64(b), nil
}

// Human prints a size for a person: decimal units, three significant
// digits ("100 B", "1.47 MB", "60 GB", "64.4 GB"), as the page does.
func Human(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), 0
	for i < 5 && math.Round(v*1000)/1000 >= 999.5 { // 999.5 KB rounds to 1 MB, not 1000 KB
		v /= 1000
		i++
	}
	s := strconv.FormatFloat(v, 'g', 3, 64)
	if strings.Contains(s, "e") {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	return s + " " + []string{"B", "KB", "MB", "GB", "TB", "PB"}[i]
}

// Exact prints a byte count with thousands separators: "1,474,560 bytes".
func Exact(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[0] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String() + " bytes"
}

// UnitNames lists the units, for documentation and the page.
func UnitNames() []string {
	var out []string
	for u := range Units {
		if u != "" {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}
