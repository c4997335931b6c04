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

// TestParseBad: what is not a catalog is an error, never "no disks"; a
// damaged part inside a catalog costs only that part.
func TestParseBad(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", ErrEmpty}, {" \n\t", ErrEmpty},
		{"{", ErrDamaged}, {"null", ErrDamaged}, {"{}", ErrDamaged}, {"[]", ErrDamaged}, {`"x"`, ErrDamaged},
		{`{"version":2}`, ErrDamaged}, {`{"version":2,"disks":null}`, ErrDamaged}, {`{"disks":[1]}`, ErrDamaged},
		{`{"version":3,"disks":{}}`, ErrNewer},
	} {
		if _, err := Parse([]byte(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("Parse(%q): %v, want %v", tc.in, err, tc.want)
		}
	}
	if c, err := Parse([]byte(`{"version":2,"disks":{}}`)); err != nil || len(c.Disks) != 0 {
		t.Errorf("an empty catalog: %v", err)
	}
	c, err := Parse([]byte(`{"version":2,"disks":{"x":{"name":"X","kind":"hdd","format":"raw","sizeBytes":"big"},"y":7,"z":null},"mounts":{"hddId":"gone","cdId":5}}`))
	if err != nil || c.Mounts.HddID != nil || c.Mounts.CdID != nil || c.Disks["x"].ID != "x" || c.Disks["x"].Name != "X" || c.Disks["x"].SizeBytes != 0 {
		t.Fatalf("%+v %v", c, err)
	}
	if len(c.Disks) != 1 || strings.Join(c.Invalid(), ",") != "y,z" || len(c.Notes) != 3 {
		t.Errorf("disks %d, invalid %v, notes %q", len(c.Disks), c.Invalid(), c.Notes)
	}
}

// TestRewriteKeepsWhatDidNotChange: an untouched record is written back
// byte for byte, a changed one gains only what changed, absent mounts stay
// absent and entries that are not records are kept.
func TestRewriteKeepsWhatDidNotChange(t *testing.T) {
	a := `{"name":"A","kind":"hdd","format":"raw","fileName":"a.img","sizeBytes":"wrong type","z":[1,2]}`
	b := `{"id":"b","name":"B","kind":"cd","format":"iso"}`
	in := `{"version":2,"disks":{"a":` + a + `,"b":` + b + `,"c":"not a record"}}`
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rename("b", "B2"); err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Disks  map[string]json.RawMessage
		Mounts *json.RawMessage
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if string(m.Disks["a"]) != a {
		t.Errorf("untouched record rewritten:\n%s\nwas\n%s", m.Disks["a"], a)
	}
	var rb map[string]any
	json.Unmarshal(m.Disks["b"], &rb)
	if len(rb) != 4 || rb["name"] != "B2" || rb["id"] != "b" || rb["kind"] != "cd" {
		t.Errorf("changed record %s: want its 4 fields with the new name", m.Disks["b"])
	}
	if string(m.Disks["c"]) != `"not a record"` {
		t.Errorf("entry that is not a record: %s", m.Disks["c"])
	}
	if m.Mounts != nil {
		t.Errorf("absent mounts written as %s", *m.Mounts)
	}
	// A changed record mutated in place through a pointer field is seen.
	c2, _ := Parse([]byte(`{"disks":{"d":{"checksum":{"algorithm":"crc32","value":"00000000"}}}}`))
	c2.Disks["d"].Checksum.Value = "12345678"
	out, _ = c2.Marshal()
	if !strings.Contains(string(out), "12345678") {
		t.Errorf("an in-place change was lost: %s", out)
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

// TestCloneIsParse: a clone writes the bytes its catalog would, changes
// to it show in its own Marshal only, and a changed clone writes what the
// same change to a fresh Parse writes.
func TestCloneIsParse(t *testing.T) {
	src := []byte(`{"version":2,"extra":{"a":1},"disks":{"x":{"id":"x","name":"one","kind":"hdd","aero":"keep","layers":{"blockSize":65536,"head":"l1","nodes":[{"id":"l1","fileName":"x-l1.aerolayr","parent":""}]},"checkpoints":[{"id":"c1","name":"c","layer":"l1"}]},"y":{"id":"y","name":"two"},"bad":7},"mounts":{"hddId":"x","other":true}}`)
	c, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := c.Marshal()
	k := c.Clone()
	if got, _ := k.Marshal(); string(got) != string(want) {
		t.Fatalf("clone writes\n%s\nthe catalog\n%s", got, want)
	}
	change := func(c *Catalog) {
		d := c.Disks["x"]
		d.Name = "renamed"
		d.Layers.Nodes[0].FileName = "moved"
		d.Checkpoints[0].Name = "cc"
		*c.Mounts.HddID = "y"
		c.Notes = append(c.Notes, "n")
	}
	change(k)
	if got, _ := c.Marshal(); string(got) != string(want) {
		t.Fatalf("changing the clone changed the catalog:\n%s", got)
	}
	fresh, _ := Parse(src)
	change(fresh)
	a, _ := fresh.Marshal()
	b, _ := k.Marshal()
	if string(a) != string(b) {
		t.Fatalf("a changed clone writes\n%s\na changed parse\n%s", b, a)
	}
}
