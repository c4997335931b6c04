package catalog

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func strp(s string) *string { return &s }

func sample() *Catalog {
	c := New()
	for _, d := range []*Disk{
		{ID: "a", Name: "Win98", Kind: KindHDD, Format: "aerospar", LastUsedAtMs: 10, CreatedAtMs: 1},
		{ID: "b", Name: "Install CD", Kind: KindCD, Format: "iso", LastUsedAtMs: 30, CreatedAtMs: 2},
		{ID: "c", Name: "Old qcow2", Kind: KindHDD, Format: "qcow2", LastUsedAtMs: 20, CreatedAtMs: 3},
		{ID: "d", Name: "Floppy", Kind: KindFloppy, Format: "raw", LastUsedAtMs: 20, CreatedAtMs: 4},
	} {
		d.Checksum = CRC32("00000000")
		if err := c.Add(d); err != nil {
			panic(err)
		}
	}
	return c
}

func TestListOrder(t *testing.T) {
	var ids []string
	for _, d := range sample().List() {
		ids = append(ids, d.ID)
	}
	if got := strings.Join(ids, ""); got != "bdca" {
		t.Fatalf("order %q, want bdca (lastUsed desc, then created desc)", got)
	}
}

func TestMountRules(t *testing.T) {
	c := sample()
	cases := []struct {
		m    Mounts
		want error
	}{
		{Mounts{HddID: strp("a"), CdID: strp("b")}, nil},
		{Mounts{HddID: strp("b")}, ErrInvalid}, // a CD as HDD
		{Mounts{HddID: strp("c")}, ErrInvalid}, // qcow2 is not writable in place
		{Mounts{HddID: strp("d")}, ErrInvalid}, // a floppy
		{Mounts{CdID: strp("a")}, ErrInvalid},  // not an ISO
		{Mounts{HddID: strp("zzz")}, ErrNotFound},
		{Mounts{}, nil},
	}
	for i, tc := range cases {
		before := c.Mounts
		err := c.SetMounts(tc.m, 1000+int64(i))
		if !errors.Is(err, tc.want) {
			t.Fatalf("case %d: %v, want %v", i, err, tc.want)
		}
		if err != nil && c.Mounts != before {
			t.Fatalf("case %d: a refused mount changed the mounts", i)
		}
	}
	if err := c.SetMounts(Mounts{HddID: strp("a"), CdID: strp("b")}, 5000); err != nil {
		t.Fatal(err)
	}
	if c.Disks["a"].LastUsedAtMs != 5000 || c.Disks["b"].LastUsedAtMs != 5000 {
		t.Fatal("mounting did not update lastUsedAtMs")
	}
	if _, err := c.Remove("a"); err != nil || c.Mounts.HddID != nil || *c.Mounts.CdID != "b" {
		t.Fatalf("remove did not clear only the HDD mount: %v %+v", err, c.Mounts)
	}
	if _, err := c.Remove("a"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestRoundTripKeepsUnknownFields(t *testing.T) {
	in := `{"version":2,"futureTop":{"x":1},
	  "disks":{"a":{"id":"a","name":"A","backend":"opfs","kind":"hdd","format":"raw","fileName":"a.img",
	    "sizeBytes":512,"createdAtMs":1,"lastUsedAtMs":2,"checksum":{"algorithm":"crc32","value":"0000abcd"},
	    "remote":{"url":"x"}}},
	  "mounts":{"hddId":"a","cdId":null}}`
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if c.Disks["a"].Checksum.Value != "0000abcd" || *c.Mounts.HddID != "a" || c.Mounts.CdID != nil {
		t.Fatalf("parsed %+v", c)
	}
	c.Rename("a", "  Renamed ")
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(out, &m)
	if m["futureTop"] == nil {
		t.Fatal("unknown top-level field dropped")
	}
	disk := m["disks"].(map[string]any)["a"].(map[string]any)
	if disk["remote"] == nil || disk["name"] != "Renamed" {
		t.Fatalf("disk record %v", disk)
	}
	mounts := m["mounts"].(map[string]any)
	if v, ok := mounts["cdId"]; !ok || v != nil {
		t.Fatalf("cdId must be written as null: %v", mounts)
	}
}

func TestParseBad(t *testing.T) {
	if c, err := Parse(nil); err != nil || len(c.Disks) != 0 || c.Version != Version {
		t.Fatal(c, err)
	}
	if _, err := Parse([]byte("{")); err == nil {
		t.Fatal("bad JSON accepted")
	}
	if _, err := Parse([]byte(`{"version":3}`)); err == nil {
		t.Fatal("future version accepted")
	}
	c, err := Parse([]byte(`{"version":2,"disks":{"x":{"name":"X","kind":"hdd","format":"raw"}},"mounts":{"hddId":"gone","cdId":"x"}}`))
	if err != nil || c.Mounts.HddID != nil || c.Disks["x"].ID != "x" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestNames(t *testing.T) {
	for _, bad := range []string{"", "   ", strings.Repeat("x", 256), "a\x00b", "tab\there"} {
		if ValidateName(bad) == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if err := ValidateName("Windows 98 SE — boot disk"); err != nil {
		t.Error(err)
	}
}
