package convert

import (
	"context"

	"aerodisk/internal/formats"
	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
)

// ToRaw writes src's logical content into st as a raw image: data where it is
// non-zero, holes elsewhere, and st sized to exactly src.Size().
func ToRaw(ctx context.Context, src formats.Image, st storage.Storage, opts Options) (Result, error) {
	if err := st.Truncate(0); err != nil {
		return Result{}, err
	}
	res, err := Convert(ctx, src, st, opts)
	if err != nil {
		return res, err
	}
	if err := st.Truncate(src.Size()); err != nil {
		return res, err
	}
	return res, st.Flush()
}

// ToAeroSpar writes src's logical content into st as an AEROSPAR image with
// the given block size (0 = sparse.ChooseBlockSize: 1 MiB up to 8 TiB, as
// Aero's converter). Only blocks holding a non-zero byte are stored, in
// block order; the file is byte-identical to what Aero's converter
// (web/src/storage/import_convert.ts, convertRawToSparse) writes for the same
// content and block size (docs/aerospar.md). A block size whose table Aero
// cannot read is ErrBadSize before anything is written. The header is
// written last, so st is a valid image only once ToAeroSpar has succeeded.
func ToAeroSpar(ctx context.Context, src formats.Image, st storage.Storage, blockSize uint32, opts Options) (Result, error) {
	w, err := sparse.NewWriter(st, src.Size(), blockSize)
	if err != nil {
		return Result{}, err
	}
	res, err := Convert(ctx, src, w, opts)
	if err != nil {
		w.Abort()
		return res, err
	}
	return res, w.Close() // Close flushes the table, then writes and flushes the header
}
