package manager

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"

	"aerodisk/internal/catalog"
	"aerodisk/internal/checksum"
	"aerodisk/internal/convert"
	"aerodisk/internal/formats"
)

// The checksum definitions a stored checksum is compared against
// (VerifyResult.Definition).
const (
	// DefinitionLogical: CRC32 of the disk's logical content, what a raw
	// export yields — the one this manager records.
	DefinitionLogical = "logical"
	// DefinitionAeroBlocks: Aero's converter's (web/src/storage/
	// import_convert.ts): CRC32 over u64le(block index) ‖ block, for each
	// allocated block of the AEROSPAR file in index order, whole blocks.
	DefinitionAeroBlocks = "aero-blocks"
)

// VerifyResult is what verifyDisk resolves to.
type VerifyResult struct {
	OK bool `json:"ok"`
	// Checksum is the CRC32 of the logical content now.
	Checksum string `json:"checksum"`
	// Definition says which definition the recorded checksum matched
	// (DefinitionLogical or DefinitionAeroBlocks); "" when none did.
	Definition string `json:"definition,omitempty"`
	// Recorded: the disk had no checksum (another tool made it), or a
	// stale one (written through a block device since), so the one
	// computed now was stored — recorded, not verified.
	Recorded bool `json:"recorded,omitempty"`
	// SourceOK, for a disk kept in its container (qcow2, VHD, DiskCopy),
	// says whether the stored container still holds exactly the bytes of
	// the file it was imported from.
	SourceOK *bool `json:"sourceOk,omitempty"`
}

// Verify recomputes a disk's checksum and compares it with the catalog's.
// The recorded checksum may follow this manager's definition (the logical
// content) or, for an AEROSPAR disk Aero converted, Aero's per-block one;
// the result says which matched. A disk kept in its container must also
// still be, byte for byte, the file it came from (its sourceChecksum): its
// logical content is then exactly what that source described. A disk
// without a checksum, or whose checksum is stale (written through a block
// device since), gets the computed one recorded. A disk open for writing
// is ErrInUse; while this runs its file is held read-only, so no writer
// can come between the pass and the record.
func (m *Manager) Verify(ctx context.Context, id string, progress func(Progress)) (VerifyResult, error) {
	if err := m.refuseWriting(id); err != nil {
		return VerifyResult{}, err
	}
	d, img, err := m.openStored(id)
	if err != nil {
		return VerifyResult{}, err
	}
	defer img.Close()
	res, err := convert.Convert(ctx, img, nil, convertOptions(PhaseVerify, progress))
	if err != nil {
		return VerifyResult{}, err
	}
	out := VerifyResult{Checksum: checksum.Hex(res.Checksum)}
	unrecorded := func(c *catalog.Checksum) bool { return c == nil || c.Value == "" || c.Stale }
	if unrecorded(d.Checksum) {
		err := m.update(func(c *catalog.Catalog) error {
			cur, err := c.Get(id)
			if err == nil && unrecorded(cur.Checksum) {
				cur.Checksum = catalog.CRC32(out.Checksum)
			}
			return err
		}, nil)
		if err == nil {
			out.OK, out.Recorded, out.Definition = true, true, DefinitionLogical
		}
		return out, err
	}
	switch {
	case d.Checksum.Value == out.Checksum:
		out.OK, out.Definition = true, DefinitionLogical
	case d.Format == string(formats.AeroSpar):
		sum, err := aeroBlocksChecksum(ctx, img)
		if err != nil {
			return VerifyResult{}, err
		}
		if sum == d.Checksum.Value {
			out.OK, out.Definition = true, DefinitionAeroBlocks
		}
	}
	kept := d.SourceChecksum != nil && d.SourceFormat == d.Format && d.Format != string(formats.Raw) && d.Format != string(formats.ISO)
	if c, ok := img.(*closing); ok && kept {
		size, err := c.f.Size()
		if err != nil {
			return VerifyResult{}, err
		}
		crc, err := convert.CopyStream(ctx, io.NewSectionReader(c.f, 0, size), discard{}, size, convertOptions(PhaseVerify, progress))
		if err != nil {
			return VerifyResult{}, err
		}
		same := checksum.Hex(crc) == d.SourceChecksum.Value
		out.SourceOK = &same
		out.OK = out.OK && same
	}
	return out, nil
}

// aeroBlocksChecksum is Aero's converter's checksum of an AEROSPAR image
// (DefinitionAeroBlocks): the allocated blocks are its Data extents, each
// read whole (zeros past the disk's end, as they are stored).
func aeroBlocksChecksum(ctx context.Context, img formats.Image) (string, error) {
	bs := img.Info().ClusterSize
	if bs <= 0 {
		return "", nil
	}
	buf := make([]byte, bs)
	var idx [8]byte
	crc := crc32.NewIEEE()
	size := img.Size()
	for e, err := range formats.Extents(img, 0, size) {
		if err != nil {
			return "", err
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if e.Kind != formats.Data {
			continue
		}
		for b := e.Off / bs; b*bs < e.End(); b++ {
			clear(buf)
			if _, err := formats.ReadFull(img, buf[:min(bs, size-b*bs)], b*bs); err != nil {
				return "", err
			}
			binary.LittleEndian.PutUint64(idx[:], uint64(b))
			crc.Write(idx[:])
			crc.Write(buf)
		}
	}
	return checksum.Hex(crc.Sum32()), nil
}
