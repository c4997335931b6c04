package manager

import (
	"math"
	"path"
	"strings"

	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/formats"
	"aerodisk/internal/sizefmt"
)

// Probe is what an import of a file would make of it, read from its headers
// and tables alone (no data is read): the page asks for it when a person
// chooses a file, instead of guessing from the file name.
type Probe struct {
	Format    string `json:"format"`    // detected from the content
	Kind      string `json:"kind"`      // the kind an import gives it unless told otherwise
	SizeBytes int64  `json:"sizeBytes"` // the logical size
	FileBytes int64  `json:"fileBytes"`
	Name      string `json:"name"` // the name an import gives it unless told otherwise
	// Convertible: importDiskConverted would store it converted (every
	// format but ISO, which stays ISO).
	Convertible bool `json:"convertible"`
	// KeepAsIs: importDisk can store it as it is (not an overlay that
	// depends on a backing file).
	KeepAsIs bool `json:"keepAsIs"`
	// Convert is what an import should do by default: convert containers
	// (qcow2, VHD, DiskCopy) so the disk is writable, keep raw and ISO.
	Convert bool `json:"convert"`
	// BackingFile is the file an overlay depends on (found among the stored
	// disks, or the probe fails with NotFound).
	BackingFile string   `json:"backingFile,omitempty"`
	Warnings    []string `json:"warnings"`
}

// Probe reads a file's headers as Import would and says what it would
// store. A file Import would refuse is refused the same way here.
func (m *Manager) Probe(in Input) (Probe, error) {
	cat, err := m.read()
	if err != nil {
		return Probe{}, err
	}
	res := m.resolver(cat)
	img, err := formats.Open(formats.Source{Name: "upload:" + in.Name(), R: in, Size: in.Size()}, readOptions(formats.Options{Resolve: res.resolve}))
	if err != nil {
		return Probe{}, err
	}
	defer img.Close()
	info := img.Info()
	p := Probe{
		Format: string(info.Format), Kind: defaultKind(info.Format, img.Size()), SizeBytes: img.Size(), FileBytes: in.Size(),
		Name:        strings.TrimSuffix(in.Name(), path.Ext(in.Name())),
		Convertible: info.Format != formats.ISO, KeepAsIs: info.BackingFile == "",
		BackingFile: info.BackingFile,
		Warnings:    append(append([]string{}, info.Warnings...), res.warnings(info)...),
	}
	p.Convert = p.Convertible && (!p.KeepAsIs || !catalog.WritableFormat(p.Format))
	return p, nil
}

// Limits are the rules a page needs before it asks for anything: sizes, and
// which disks each drive takes. The page shows them; the manager enforces
// them.
type Limits struct {
	// MaxDiskBytes bounds blank disks; SectorBytes divides every disk size.
	MaxDiskBytes int64 `json:"maxDiskBytes"`
	SectorBytes  int64 `json:"sectorBytes"`
	// FloppySizes are the sizes that are floppies unless told otherwise.
	FloppySizes []int64 `json:"floppySizes"`
	// HDDFormats are the formats the hard disk can be mounted from (it is
	// read-write); HDDKinds its kinds. CDFormats: the CD's.
	HDDFormats []string `json:"hddFormats"`
	HDDKinds   []string `json:"hddKinds"`
	CDFormats  []string `json:"cdFormats"`
	// SizeUnits is the size rule (sizefmt): what each suffix means.
	SizeUnits map[string]int64 `json:"sizeUnits"`
}

// Limits returns the rules (see Limits).
func (m *Manager) Limits() Limits {
	return Limits{
		MaxDiskBytes: MaxDiskSize, SectorBytes: 512, FloppySizes: append([]int64(nil), floppyList...),
		HDDFormats: []string{string(formats.Raw), string(formats.AeroSpar), "overlay"}, HDDKinds: []string{catalog.KindHDD},
		CDFormats: []string{string(formats.ISO)}, SizeUnits: sizefmt.Units,
	}
}

// floppyList is floppySizes in order.
var floppyList = []int64{409600, 737280, 819200, 1474560, 2949120}

// ParseDiskSize reads a size a person typed for a new disk, by the one size
// rule (internal/sizefmt): requested is what they wrote (rounded to a byte),
// bytes that rounded up to whole 512-byte sectors. A size of zero, one past
// MaxDiskSize, or text that is no size is refused (an invalid argument).
func ParseDiskSize(text string) (requested, bytes int64, err error) {
	v, unit, err := sizefmt.Value(text)
	if err != nil {
		return 0, 0, err
	}
	requested = int64(math.Round(v * float64(unit)))
	switch {
	case requested <= 0:
		return 0, 0, diskerr.New("", diskerr.ErrBadSize, "a disk needs a size above zero")
	case requested > MaxDiskSize:
		return 0, 0, diskerr.New("", diskerr.ErrBadSize, "that is too big: the largest disk is %s (%s)", sizefmt.Human(MaxDiskSize), sizefmt.Exact(MaxDiskSize))
	}
	return requested, (requested + 511) / 512 * 512, nil
}
