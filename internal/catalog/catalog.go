// Package catalog is the disk catalog: each disk's metadata and the current
// mounts, stored as aero/disks/metadata.json in the shape the existing Aero
// disk manager uses:
//
//	{"version":2,"disks":{"<id>":DiskMeta,...},"mounts":{"hddId":…,"cdId":…}}
//
// Unknown fields, in the file and in each disk record, are kept on rewrite
// so data written by other versions survives us. The catalog is plain data;
// the storage backends make its updates atomic and serialised.
package catalog

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	"aerodisk/internal/diskerr"
)

// Version is the metadata.json version this package writes.
const Version = 2

// Kinds of disk.
const (
	KindHDD    = "hdd"
	KindCD     = "cd"
	KindFloppy = "floppy"
)

// Checksum is a stored checksum: CRC32 as 8 lowercase hex digits.
type Checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

// CRC32 builds a Checksum from a hex value.
func CRC32(hex string) *Checksum { return &Checksum{Algorithm: "crc32", Value: hex} }

// Disk is one disk's metadata (DiskMeta in the JS API).
type Disk struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Backend        string    `json:"backend"`
	Kind           string    `json:"kind"`
	Format         string    `json:"format"`
	FileName       string    `json:"fileName"`
	SizeBytes      int64     `json:"sizeBytes"`
	CreatedAtMs    int64     `json:"createdAtMs"`
	LastUsedAtMs   int64     `json:"lastUsedAtMs"`
	Checksum       *Checksum `json:"checksum"`
	SourceFileName string    `json:"sourceFileName,omitempty"`
	SourceFormat   string    `json:"sourceFormat,omitempty"`
	SourceChecksum *Checksum `json:"sourceChecksum,omitempty"`
	// FileSizeBytes is the length of the stored file (the logical size for
	// raw and ISO, the container's size otherwise). IndexedDB needs it to
	// open a file whose trailing chunks are all zeros and so not stored.
	FileSizeBytes int64 `json:"fileSizeBytes,omitempty"`
	// StoredBytes is the storage the disk took when it was stored.
	StoredBytes int64 `json:"storedBytes,omitempty"`

	extra map[string]json.RawMessage // fields we do not know, kept verbatim
}

var diskFields = fieldNames(Disk{})

// MarshalJSON writes the known fields and the preserved unknown ones.
func (d Disk) MarshalJSON() ([]byte, error) {
	type plain Disk
	return mergeExtra(plain(d), d.extra)
}

// UnmarshalJSON reads known fields and keeps the rest.
func (d *Disk) UnmarshalJSON(b []byte) error {
	type plain Disk
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	extra, err := collectExtra(b, diskFields)
	if err != nil {
		return err
	}
	*d = Disk(p)
	d.extra = extra
	return nil
}

// Mounts is the mount selection; nil means nothing mounted.
type Mounts struct {
	HddID *string `json:"hddId"`
	CdID  *string `json:"cdId"`
}

// Catalog is the whole metadata file.
type Catalog struct {
	Version int              `json:"version"`
	Disks   map[string]*Disk `json:"disks"`
	Mounts  Mounts           `json:"mounts"`

	extra map[string]json.RawMessage
}

var catalogFields = fieldNames(Catalog{})

// New returns an empty catalog.
func New() *Catalog { return &Catalog{Version: Version, Disks: map[string]*Disk{}} }

// Parse reads metadata.json. An empty input is an empty catalog.
func Parse(b []byte) (*Catalog, error) {
	if len(strings.TrimSpace(string(b))) == 0 {
		return New(), nil
	}
	type plain Catalog
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, diskerr.New("metadata", diskerr.ErrCorrupt, "metadata.json is not valid JSON: %v", err)
	}
	if p.Version > Version {
		return nil, diskerr.New("metadata", diskerr.ErrUnsupported, "metadata.json version %d is newer than this program (%d)", p.Version, Version)
	}
	extra, err := collectExtra(b, catalogFields)
	if err != nil {
		return nil, err
	}
	c := (*Catalog)(&p)
	c.extra = extra
	c.Version = Version
	if c.Disks == nil {
		c.Disks = map[string]*Disk{}
	}
	for id, d := range c.Disks {
		if d == nil {
			delete(c.Disks, id)
			continue
		}
		d.ID = id
	}
	// Mounts that name vanished disks are dropped rather than trusted.
	if c.Mounts.HddID != nil && c.Disks[*c.Mounts.HddID] == nil {
		c.Mounts.HddID = nil
	}
	if c.Mounts.CdID != nil && c.Disks[*c.Mounts.CdID] == nil {
		c.Mounts.CdID = nil
	}
	return c, nil
}

// Marshal writes metadata.json.
func (c *Catalog) Marshal() ([]byte, error) {
	type plain Catalog
	return mergeExtra(plain(*c), c.extra)
}

// List returns the disks, most recently used first (then newest, then id).
func (c *Catalog) List() []*Disk {
	out := make([]*Disk, 0, len(c.Disks))
	for _, d := range c.Disks {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.LastUsedAtMs != b.LastUsedAtMs {
			return a.LastUsedAtMs > b.LastUsedAtMs
		}
		if a.CreatedAtMs != b.CreatedAtMs {
			return a.CreatedAtMs > b.CreatedAtMs
		}
		return a.ID < b.ID
	})
	return out
}

// ErrNotFound: no disk has the id.
var ErrNotFound = fmt.Errorf("disk not found")

// ErrInvalid: an argument breaks a rule (mount rules, names).
var ErrInvalid = fmt.Errorf("invalid argument")

// Get returns the disk with id.
func (c *Catalog) Get(id string) (*Disk, error) {
	d := c.Disks[id]
	if d == nil {
		return nil, fmt.Errorf("%w: no disk with id %q", ErrNotFound, id)
	}
	return d, nil
}

// Add inserts a new disk; its id must be unused.
func (c *Catalog) Add(d *Disk) error {
	if d.ID == "" || c.Disks[d.ID] != nil {
		return fmt.Errorf("%w: disk id %q is empty or already used", ErrInvalid, d.ID)
	}
	if err := ValidateName(d.Name); err != nil {
		return err
	}
	c.Disks[d.ID] = d
	return nil
}

// Remove deletes a disk and clears any mount of it.
func (c *Catalog) Remove(id string) (*Disk, error) {
	d, err := c.Get(id)
	if err != nil {
		return nil, err
	}
	delete(c.Disks, id)
	if c.Mounts.HddID != nil && *c.Mounts.HddID == id {
		c.Mounts.HddID = nil
	}
	if c.Mounts.CdID != nil && *c.Mounts.CdID == id {
		c.Mounts.CdID = nil
	}
	return d, nil
}

// Rename changes a disk's display name.
func (c *Catalog) Rename(id, name string) (*Disk, error) {
	d, err := c.Get(id)
	if err != nil {
		return nil, err
	}
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	d.Name = strings.TrimSpace(name)
	return d, nil
}

// ValidateName accepts 1–255 characters of printable text.
func ValidateName(name string) error {
	n := strings.TrimSpace(name)
	if n == "" || utf8.RuneCountInString(n) > 255 || !utf8.ValidString(n) {
		return fmt.Errorf("%w: a disk name needs 1 to 255 characters", ErrInvalid)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: a disk name cannot contain control characters", ErrInvalid)
		}
	}
	return nil
}

// WritableFormat reports whether an emulator may mount a disk of this format
// read-write as its hard disk.
func WritableFormat(format string) bool { return format == "raw" || format == "aerospar" }

// SetMounts applies a mount selection (nil = unmount) after checking the
// rules: the HDD must be kind "hdd" in a writable format (raw or aerospar);
// the CD must be an ISO. Mounted disks get lastUsedAtMs = nowMs.
func (c *Catalog) SetMounts(m Mounts, nowMs int64) error {
	if m.HddID != nil {
		d, err := c.Get(*m.HddID)
		if err != nil {
			return err
		}
		if d.Kind != KindHDD {
			return fmt.Errorf("%w: %q is a %s, only a hard disk can be mounted as the HDD", ErrInvalid, d.Name, d.Kind)
		}
		if !WritableFormat(d.Format) {
			return fmt.Errorf("%w: %q is stored as %s; convert it to AEROSPAR to mount it read-write", ErrInvalid, d.Name, d.Format)
		}
	}
	if m.CdID != nil {
		d, err := c.Get(*m.CdID)
		if err != nil {
			return err
		}
		if d.Format != "iso" {
			return fmt.Errorf("%w: %q is not an ISO image, only ISOs can be mounted as the CD", ErrInvalid, d.Name)
		}
	}
	c.Mounts = Mounts{HddID: cloneStr(m.HddID), CdID: cloneStr(m.CdID)}
	for _, id := range []*string{m.HddID, m.CdID} {
		if id != nil {
			c.Disks[*id].LastUsedAtMs = nowMs
		}
	}
	return nil
}

// Mounted reports whether id is currently mounted.
func (c *Catalog) Mounted(id string) bool {
	return (c.Mounts.HddID != nil && *c.Mounts.HddID == id) || (c.Mounts.CdID != nil && *c.Mounts.CdID == id)
}

func cloneStr(s *string) *string {
	if s == nil {
		return nil
	}
	v := *s
	return &v
}

// fieldNames lists the JSON names of a struct's exported fields.
func fieldNames(v any) map[string]bool {
	names := map[string]bool{}
	t := reflect.TypeOf(v)
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
}

func collectExtra(b []byte, known map[string]bool) (map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	var extra map[string]json.RawMessage
	for k, v := range all {
		if !known[k] {
			if extra == nil {
				extra = map[string]json.RawMessage{}
			}
			extra[k] = v
		}
	}
	return extra, nil
}

func mergeExtra(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range extra {
		if _, ok := all[k]; !ok {
			all[k] = v
		}
	}
	return json.Marshal(all)
}
