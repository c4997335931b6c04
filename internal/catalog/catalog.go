// Package catalog is the disk catalog: each disk's metadata and the current
// mounts, stored as aero/disks/metadata.json in the shape the existing Aero
// disk manager uses:
//
//	{"version":2,"disks":{"<id>":DiskMeta,...},"mounts":{"hddId":…,"cdId":…}}
//
// Parsing is strict about the catalog's shape and lenient inside it. A file
// that is empty, not JSON, not an object, or has no "disks" object is not a
// catalog at all (ErrEmpty, ErrDamaged): the caller must never read it as "no
// disks". Inside a good catalog, a record field of the wrong type, a record
// that is not an object, or a wrongly typed mount costs only that field,
// record or mount — every other disk stays listed.
//
// What this manager did not change is written back exactly as it was read:
// an untouched record keeps its bytes, a changed record keeps every field it
// had and gains only those that were set, unknown top-level fields stay.
// The catalog is plain data; the manager makes its updates atomic and
// serialised.
package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
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
	// Stale: the disk was written through a block device since Value was
	// computed, so Value no longer describes it; verifyDisk recomputes
	// and records it. Absent when false, so records stay as Aero writes
	// them.
	Stale bool `json:"stale,omitempty"`
}

// CRC32 builds a Checksum from a hex value.
func CRC32(hex string) *Checksum { return &Checksum{Algorithm: "crc32", Value: hex} }

// Recovered marks a record rebuilt from its file because no good catalog
// named it (the catalog was lost or damaged).
type Recovered struct {
	AtMs int64 `json:"atMs"`
	// From is where the record came from: "file" (rebuilt from the disk
	// file's header) or the catalog generation it was taken from.
	From string `json:"from"`
}

// Sources of a disk (DiskMeta.source, the field Aero uses).
const (
	SourceLocal  = "local"  // its bytes are stored here
	SourceRemote = "remote" // Aero's remote disk: bytes on a server, a cache here
)

// Disk is one disk's metadata (DiskMeta in the JS API).
type Disk struct {
	// Source is "local" or "remote"; records without it (Aero's v1, ours
	// before this field) are local.
	Source         string    `json:"source,omitempty"`
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
	// Warnings are facts a person should know about how the disk was made
	// (a backing file read through its stored format, say).
	Warnings []string `json:"warnings,omitempty"`
	// Recovered is set on a record rebuilt after the catalog was lost.
	Recovered *Recovered `json:"recovered,omitempty"`

	// Layered disks (docs/overlays.md, "The chain in the catalog").
	// ParentID: an overlay's base disk.
	ParentID string `json:"parentId,omitempty"`
	// DefaultOverlay marks the overlay openDisk's mode "overlay" uses for
	// its base (made on first use).
	DefaultOverlay bool `json:"defaultOverlay,omitempty"`
	// Layers: the layer tree on top of the disk's own base; nil for a
	// disk that is its file alone.
	Layers *Layers `json:"layers,omitempty"`
	// Checkpoints name frozen layers.
	Checkpoints []Checkpoint `json:"checkpoints,omitempty"`
	// Garbage lists layer files this manager stopped using and removes.
	Garbage []string `json:"garbage,omitempty"`
	// Pending is a merge under way, resumed at the next open.
	Pending *PendingOp `json:"pending,omitempty"`

	// raw is the record as read (nil for a new record); orig is what was
	// decoded from it, so Marshal can tell which fields were changed.
	raw  json.RawMessage
	orig *Disk
}

var diskFields = fieldNames(reflect.TypeOf(Disk{}))

// Remote reports whether the disk's bytes live on a server (an Aero remote
// disk), which this manager cannot read yet.
func (d *Disk) Remote() bool { return d.Source == SourceRemote }

// MarshalJSON writes the record: as read when nothing changed, else the
// fields as read with the changed ones replaced (see the package comment).
func (d Disk) MarshalJSON() ([]byte, error) {
	type plain Disk
	if d.raw != nil && d.orig != nil {
		// Most records of a catalog are not changed by a commit: those are
		// told apart without encoding anything (a catalog is written on
		// every commit, and JSON costs milliseconds in wasm).
		cur, was := plain(d), plain(*d.orig)
		cur.raw, cur.orig, was.raw, was.orig = nil, nil, nil, nil
		if reflect.DeepEqual(cur, was) {
			return d.raw, nil
		}
	}
	cur, err := fieldValues(plain(d))
	if err != nil {
		return nil, err
	}
	if d.raw == nil {
		return json.Marshal(orderedObject(cur, diskFields))
	}
	orig, err := fieldValues(plain(*d.orig))
	if err != nil {
		return nil, err
	}
	all := map[string]json.RawMessage{}
	if err := json.Unmarshal(d.raw, &all); err != nil {
		return nil, err
	}
	changed := false
	for _, name := range diskFields {
		c, ok := cur[name]
		o, wasSet := orig[name]
		if ok == wasSet && (!ok || bytes.Equal(c, o)) {
			continue
		}
		changed = true
		if ok {
			all[name] = c
		} else {
			delete(all, name)
		}
	}
	if !changed {
		return d.raw, nil
	}
	return json.Marshal(all)
}

// UnmarshalJSON reads a record leniently: a field of the wrong type is left
// unset (and kept as it was in the file); the record must be an object.
func (d *Disk) UnmarshalJSON(b []byte) error {
	type plain Disk
	var p plain
	if err := decodeLenient(b, &p); err != nil {
		return err
	}
	// orig is a deep copy so that it shares no pointer with the record a
	// caller may change in place.
	var o plain
	reflect.ValueOf(&o).Elem().Set(deepCopy(reflect.ValueOf(p)))
	*d = Disk(p)
	d.raw = append(json.RawMessage(nil), b...)
	od := Disk(o)
	d.orig = &od
	return nil
}

// Mounts is the mount selection; nil means nothing mounted.
type Mounts struct {
	HddID *string `json:"hddId"`
	CdID  *string `json:"cdId"`
}

func (m Mounts) equal(o Mounts) bool { return eqStr(m.HddID, o.HddID) && eqStr(m.CdID, o.CdID) }

func eqStr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// Catalog is the whole metadata file.
type Catalog struct {
	Version int
	Disks   map[string]*Disk
	Mounts  Mounts

	// Notes say what parsing had to leave out (a record that is not an
	// object, a mount of the wrong type); nothing of it is lost from the file.
	Notes []string

	source     []byte                     // the bytes parsed, nil for New
	invalid    map[string]json.RawMessage // disk entries that are not objects, kept as read
	extra      map[string]json.RawMessage // top-level fields we do not know
	mountsRaw  json.RawMessage            // mounts as read (nil when absent)
	mountsOrig Mounts
}

// New returns an empty catalog.
func New() *Catalog { return &Catalog{Version: Version, Disks: map[string]*Disk{}} }

// Errors of Parse. Neither is ever "no disks".
var (
	// ErrEmpty: the file holds nothing (0 bytes or whitespace).
	ErrEmpty = errors.New("the catalog is empty")
	// ErrDamaged: the file is not a catalog (not JSON, not an object, no
	// "disks" object). A kind of diskerr.ErrCorrupt.
	ErrDamaged = fmt.Errorf("%w: the catalog is damaged", diskerr.ErrCorrupt)
	// ErrNewer: a newer program wrote it; this one must not rewrite it.
	// A kind of diskerr.ErrUnsupported.
	ErrNewer = fmt.Errorf("%w: the catalog was written by a newer program", diskerr.ErrUnsupported)
)

// Source is the bytes c was parsed from (nil for a new catalog).
func (c *Catalog) Source() []byte { return c.source }

// Parse reads metadata.json. It fails with ErrEmpty or ErrDamaged when the
// bytes are not a catalog, and with ErrNewer for a version above Version.
func Parse(b []byte) (*Catalog, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, ErrEmpty
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %v", ErrDamaged, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: it is null", ErrDamaged)
	}
	c := New()
	c.source = append([]byte(nil), b...)
	if v, ok := top["version"]; ok {
		var n float64
		if json.Unmarshal(v, &n) == nil && n > Version {
			return nil, fmt.Errorf("%w: version %v, this program writes %d", ErrNewer, n, Version)
		}
	}
	disks, ok := top["disks"]
	var entries map[string]json.RawMessage
	if !ok || json.Unmarshal(disks, &entries) != nil || entries == nil {
		return nil, fmt.Errorf("%w: it has no \"disks\" object", ErrDamaged)
	}
	for id, raw := range entries {
		var d Disk
		if err := json.Unmarshal(raw, &d); err != nil {
			if c.invalid == nil {
				c.invalid = map[string]json.RawMessage{}
			}
			c.invalid[id] = raw
			c.Notes = append(c.Notes, fmt.Sprintf("the record %q is not an object and is not listed", id))
			continue
		}
		d.ID = id // the key is the id; taking it is no change to the record
		d.orig.ID = id
		c.Disks[id] = &d
	}
	if raw, ok := top["mounts"]; ok {
		c.mountsRaw = raw
		c.Mounts = c.parseMounts(raw)
	}
	// Mounts that name vanished disks are dropped rather than trusted.
	for _, p := range []**string{&c.Mounts.HddID, &c.Mounts.CdID} {
		if *p != nil && c.Disks[**p] == nil {
			*p = nil
		}
	}
	c.mountsOrig = Mounts{HddID: cloneStr(c.Mounts.HddID), CdID: cloneStr(c.Mounts.CdID)}
	for k, v := range top {
		if k != "version" && k != "disks" && k != "mounts" {
			if c.extra == nil {
				c.extra = map[string]json.RawMessage{}
			}
			c.extra[k] = v
		}
	}
	sort.Strings(c.Notes)
	return c, nil
}

// Clone is a copy of c that shares nothing a caller may change: the same
// catalog as Parse of c's bytes would give, for a fraction of its cost
// (what was read stays shared: it is never changed in place).
func (c *Catalog) Clone() *Catalog {
	n := *c
	n.Notes = slices.Clone(c.Notes)
	n.Mounts = Mounts{HddID: cloneStr(c.Mounts.HddID), CdID: cloneStr(c.Mounts.CdID)}
	n.Disks = make(map[string]*Disk, len(c.Disks))
	for id, d := range c.Disks {
		n.Disks[id] = d.clone()
	}
	return &n
}

// Clone is a deep copy of d, sharing what was read (never changed in place).
func (d *Disk) Clone() *Disk { return d.clone() }

// clone is a deep copy of d's fields, sharing what was read (raw, orig).
func (d *Disk) clone() *Disk {
	type plain Disk
	var p plain
	reflect.ValueOf(&p).Elem().Set(deepCopy(reflect.ValueOf(plain(*d))))
	p.raw, p.orig = d.raw, d.orig
	out := Disk(p)
	return &out
}

// parseMounts reads the mounts object; a mount that is not a string (or
// null) is dropped with a note, the other kept.
func (c *Catalog) parseMounts(raw json.RawMessage) Mounts {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		if string(bytes.TrimSpace(raw)) != "null" {
			c.Notes = append(c.Notes, "the mounts are not an object and were ignored")
		}
		return Mounts{}
	}
	var out Mounts
	for key, dst := range map[string]**string{"hddId": &out.HddID, "cdId": &out.CdID} {
		v, ok := m[key]
		if !ok || string(bytes.TrimSpace(v)) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			c.Notes = append(c.Notes, fmt.Sprintf("the mount %s is not a disk id and was ignored", key))
			continue
		}
		if s = strings.TrimSpace(s); s != "" {
			*dst = &s
		}
	}
	return out
}

// Marshal writes metadata.json.
func (c *Catalog) Marshal() ([]byte, error) {
	top := map[string]any{}
	for k, v := range c.extra {
		top[k] = v
	}
	top["version"] = Version
	disks := map[string]any{}
	for id, raw := range c.invalid {
		disks[id] = raw
	}
	for id, d := range c.Disks {
		disks[id] = d
	}
	top["disks"] = disks
	switch {
	case c.mountsRaw != nil && c.Mounts.equal(c.mountsOrig):
		top["mounts"] = c.mountsRaw
	case c.mountsRaw == nil && c.Mounts.HddID == nil && c.Mounts.CdID == nil:
		// absent stays absent
	default:
		top["mounts"] = c.mountsObject()
	}
	return json.Marshal(top)
}

// mountsObject is the changed mounts over the object as read: a drive set
// gets its id, one unset becomes null where the key was, and a key that was
// absent stays absent; other keys stay as they were.
func (c *Catalog) mountsObject() map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	json.Unmarshal(c.mountsRaw, &m) // not an object: start afresh
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	for key, v := range map[string]*string{"hddId": c.Mounts.HddID, "cdId": c.Mounts.CdID} {
		_, had := m[key]
		switch {
		case v != nil:
			b, _ := json.Marshal(*v)
			m[key] = b
		case had || c.mountsRaw == nil:
			m[key] = json.RawMessage("null")
		}
	}
	return m
}

// Invalid lists the ids of entries that are not records (kept, not listed).
func (c *Catalog) Invalid() []string {
	var ids []string
	for id := range c.invalid {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
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

// Names reports whether some record other than except's stores its data in
// the file fileName, or in a file with the same stem (IndexedDB keys a
// disk's chunks by stem alone).
func (c *Catalog) Names(fileName, except string) bool {
	stem := FileStem(fileName)
	for id, d := range c.Disks {
		if id != except && d.FileName != "" && (d.FileName == fileName || FileStem(d.FileName) == stem) {
			return true
		}
	}
	return false
}

// FileStem is a file name up to its first dot: the disk id for <id>.<ext>
// (how a backend keyed by disk id, IndexedDB, names a file).
func FileStem(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

// ErrNotFound: no disk has the id.
var ErrNotFound = fmt.Errorf("disk not found")

// ErrInvalid: an argument breaks a rule (mount rules, names).
var ErrInvalid = fmt.Errorf("invalid argument")

// ErrRemote: the disk is an Aero remote disk, which this manager lists but
// cannot read, mount or export yet. A kind of diskerr.ErrUnsupported.
var ErrRemote = fmt.Errorf("%w: remote disks are not supported yet", diskerr.ErrUnsupported)

// RemoteError is ErrRemote for one disk.
type RemoteError struct{ Name string }

func (e *RemoteError) Error() string {
	return fmt.Sprintf("%v: %q is a remote disk", ErrRemote, e.Name)
}
func (e *RemoteError) Unwrap() error { return ErrRemote }

// Get returns the disk with id.
func (c *Catalog) Get(id string) (*Disk, error) {
	d := c.Disks[id]
	if d == nil {
		return nil, diskerr.New("", ErrNotFound, "no disk with id %q", id)
	}
	return d, nil
}

// Add inserts a new disk; its id must be unused.
func (c *Catalog) Add(d *Disk) error {
	if d.ID == "" || c.Disks[d.ID] != nil || c.invalid[d.ID] != nil {
		return diskerr.New("", ErrInvalid, "disk id %q is empty or already used", d.ID)
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
		return diskerr.New("", ErrInvalid, "a disk name needs 1 to 255 characters")
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return diskerr.New("", ErrInvalid, "a disk name cannot contain control characters")
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
		if d.Remote() {
			return &RemoteError{Name: d.Name}
		}
		if d.Kind != KindHDD {
			return diskerr.New("", ErrInvalid, "%q is a %s, only a hard disk can be mounted as the HDD", d.Name, d.Kind)
		}
		// A layered disk (an overlay, or one with checkpoints) is written
		// in its head layer, whatever its base's format.
		if !WritableFormat(d.Format) && d.Layers == nil {
			return diskerr.New("", ErrInvalid, "%q is stored as %s; convert it to AEROSPAR, or make an overlay of it, to mount it read-write", d.Name, d.Format)
		}
		for _, o := range c.Disks {
			if o.ParentID == d.ID {
				return diskerr.New("", ErrInvalid, "%q is the base of the overlay %q and stays as it is; mount the overlay instead", d.Name, o.Name)
			}
		}
	}
	if m.CdID != nil {
		d, err := c.Get(*m.CdID)
		if err != nil {
			return err
		}
		if d.Remote() {
			return &RemoteError{Name: d.Name}
		}
		if d.Format != "iso" {
			return diskerr.New("", ErrInvalid, "%q is not an ISO image, only ISOs can be mounted as the CD", d.Name)
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

// fieldNames lists the JSON names of a struct type's exported fields, in
// declaration order.
func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// exactKeys: every key of m that names a field of struct type t (as json
// matches them, ignoring case) names it exactly.
func exactKeys(m map[string]json.RawMessage, t reflect.Type) bool {
	names := fieldNames(t)
	for k := range m {
		for _, n := range names {
			if k != n && strings.EqualFold(k, n) {
				return false
			}
		}
	}
	return true
}

// deepCopy copies v sharing no pointer, slice or map with it (v holds
// plain data: structs, pointers, slices, maps and basic values; unexported
// fields are left zero).
func deepCopy(v reflect.Value) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			p := reflect.New(v.Type().Elem())
			p.Elem().Set(deepCopy(v.Elem()))
			out.Set(p)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
	case reflect.Slice:
		if !v.IsNil() {
			s := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			for i := range v.Len() {
				s.Index(i).Set(deepCopy(v.Index(i)))
			}
			out.Set(s)
		}
	case reflect.Map:
		if !v.IsNil() {
			mm := reflect.MakeMapWithSize(v.Type(), v.Len())
			for it := v.MapRange(); it.Next(); {
				mm.SetMapIndex(it.Key(), deepCopy(it.Value()))
			}
			out.Set(mm)
		}
	case reflect.Interface:
		if !v.IsNil() {
			out.Set(deepCopy(v.Elem()))
		}
	default:
		out.Set(v)
	}
	return out
}

// fieldValues marshals a struct and returns its fields by JSON name (fields
// left out by omitempty are absent).
func fieldValues(v any) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	return m, json.Unmarshal(b, &m)
}

// orderedObject writes the fields of m in the order of names.
func orderedObject(m map[string]json.RawMessage, names []string) json.RawMessage {
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	for _, n := range names {
		v, ok := m[n]
		if !ok {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(n)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// decodeLenient fills the struct *v from the JSON object b field by field:
// a field whose value has the wrong type is left zero. b must be an object.
func decodeLenient(b []byte, v any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		return errors.New("the record is null")
	}
	rv := reflect.ValueOf(v).Elem()
	t := rv.Type()
	// One decode of the whole object gives the same fields when every one
	// decodes (json skips nothing then) and no key matches a field only
	// case-insensitively (which json would take and the loop below not).
	if exactKeys(m, t) {
		if json.Unmarshal(b, v) == nil {
			return nil
		}
		rv.SetZero()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		raw, ok := m[name]
		if !ok || name == "" {
			continue
		}
		p := reflect.New(f.Type)
		if json.Unmarshal(raw, p.Interface()) == nil {
			rv.Field(i).Set(p.Elem())
		}
	}
	return nil
}
