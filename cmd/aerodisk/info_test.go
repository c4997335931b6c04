package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"

	"aerodisk/internal/testutil"
)

// TestInfoJSONKebabCase: `info --json` names every key of format-specific
// (and of the maps inside it, and of the backing image's) in kebab-case,
// as qemu-img's JSON does; AEROSPAR's block counts included.
func TestInfoJSONKebabCase(t *testing.T) {
	dir := t.TempDir()
	base := testutil.BaseDisk(t, dir, "base.img", 1<<20, 5)
	spar := filepath.Join(dir, "disk.aerospar")
	mustAerodisk(t, "convert", "-O", "aerospar", "--block-size", "4K", base, spar)
	vhd := filepath.Join(dir, "disk.vhd")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic", base, vhd)
	qcow := filepath.Join(dir, "disk.qcow2") // over the VHD: a backing image's Details too
	testutil.QemuImg(t, "create", "-f", "qcow2", "-b", "disk.vhd", "-F", "vpc", qcow)

	kebab := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	var check func(path string, v any)
	check = func(path string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, x := range m {
			if !kebab.MatchString(k) {
				t.Errorf("key %s%s is not kebab-case", path, k)
			}
			check(path+k+".", x)
		}
	}
	for _, p := range []string{spar, qcow, vhd} {
		var info map[string]any
		if err := json.Unmarshal([]byte(mustAerodisk(t, "info", "--json", p)), &info); err != nil {
			t.Fatal(err)
		}
		check(filepath.Base(p)+": ", info)
		if b, _ := info["backing"].(map[string]any); p == qcow && b["format-specific"] == nil {
			t.Errorf("qcow2 info has no backing format-specific: %v", info)
		}
		if p == spar {
			fs, _ := info["format-specific"].(map[string]any)
			if fs["allocated-blocks"] == nil || fs["allocated-blocks"] != fs["mapped-blocks"] || fs["block-size"] != float64(4096) {
				t.Errorf("aerospar format-specific = %v", fs)
			}
		}
	}
}
