package manager

import (
	"context"
	"io"

	"aerodisk/internal/catalog"
	"aerodisk/internal/convert"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/formats"
	"aerodisk/internal/gzipx"
)

// exportChunk is the read size for data extents and the size of the zero
// buffer written for holes in a raw export.
const exportChunk = 4 << 20

// ExportOptions describes an export.
type ExportOptions struct {
	Gzip     bool
	Progress func(Progress)
	// CheckpointID exports the disk as it was at that checkpoint
	// (consistent while a machine writes it).
	CheckpointID string
	// Delta exports only the blocks changed since the base, as a delta
	// file (docs/overlays.md): the head's, or CheckpointID's.
	Delta bool
}

// Export writes a disk's logical content to w: exactly the bytes whose CRC32
// is the disk's checksum, or a standard gzip of them. Zero and unallocated
// extents are never read; in a gzip export they are emitted as precomputed
// deflate segments, so an empty 60 GB disk compresses in moments. A disk
// open for writing is ErrInUse (another tab's writer holds its file).
func (m *Manager) Export(ctx context.Context, id string, o ExportOptions, w io.Writer) error {
	switch {
	case o.Delta && o.Gzip:
		return diskerr.New("", catalog.ErrInvalid, "a delta is exported as it is, not gzipped")
	case o.Delta:
		_, err := m.ExportDelta(ctx, id, o.CheckpointID, w)
		return err
	case o.CheckpointID != "":
		return m.ExportCheckpoint(ctx, id, o.CheckpointID, o, w)
	}
	if err := m.refuseWriting(id); err != nil {
		return err
	}
	_, img, err := m.openStored(id)
	if err != nil {
		return err
	}
	defer img.Close()
	return m.exportTo(ctx, img, o, w)
}

// exportTo writes img's logical content to w, raw or gzipped.
func (m *Manager) exportTo(ctx context.Context, img formats.Image, o ExportOptions, w io.Writer) error {
	var sink exportSink = &zeroWriter{w: w}
	if o.Gzip {
		gz, release, err := m.gzipWriter(w)
		if err != nil {
			return err
		}
		defer release()
		sink = gz
	}
	if err := exportImage(ctx, img, sink, convert.NewReporter(convertOptions(PhaseExport, o.Progress), img.Size())); err != nil {
		return err
	}
	return sink.Close()
}

// Exportable returns the disk if it can be exported — it exists, is not a
// remote disk, nor open for writing here — with the error Export would fail
// with otherwise, so a caller can refuse before it starts streaming.
func (m *Manager) Exportable(id string) (*catalog.Disk, error) {
	if err := m.refuseWriting(id); err != nil {
		return nil, err
	}
	d, err := m.Get(id)
	if err == nil && d.Remote() {
		err = &catalog.RemoteError{Name: d.Name}
	}
	return d, err
}

// exportSink receives an export: data, zero runs (which a gzip sink emits
// without compressing them), and the end.
type exportSink interface {
	io.Writer
	WriteZeros(n int64) error
	Close() error
}

// gzipWriter returns the export's gzip writer and a function that returns
// the helper compressors it borrowed.
func (m *Manager) gzipWriter(w io.Writer) (exportSink, func(), error) {
	z, err := gzipx.NewWriter(w, gzipx.DefaultLevel)
	if err != nil {
		return nil, nil, err
	}
	var helpers []gzipx.Compressor
	for len(helpers) < cap(m.GzipHelpers) {
		select {
		case c := <-m.GzipHelpers:
			helpers = append(helpers, c)
			continue
		default:
		}
		break
	}
	release := func() {
		for _, c := range helpers {
			m.GzipHelpers <- c
		}
	}
	if len(helpers) == 0 {
		return z, release, nil
	}
	local, err := gzipx.NewSegmentCompressor(gzipx.DefaultLevel)
	if err != nil {
		release()
		return nil, nil, err
	}
	return gzipx.NewParallelWriter(z, append([]gzipx.Compressor{local}, helpers...)), release, nil
}

// exportImage walks img's extents, copying data and emitting zero runs.
func exportImage(ctx context.Context, img formats.Image, sink exportSink, rep func(done int64)) error {
	buf := make([]byte, exportChunk)
	for e, err := range formats.Extents(img, 0, img.Size()) {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			return err
		}
		for off := e.Off; off < e.End(); {
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.Kind != formats.Data {
				n := min(e.End()-off, 64<<20) // bounded steps keep cancellation and progress alive
				if err := sink.WriteZeros(n); err != nil {
					return err
				}
				off += n
			} else {
				b := buf[:min(e.End()-off, int64(len(buf)))]
				if _, err := formats.ReadFull(img, b, off); err != nil {
					return err
				}
				if _, err := sink.Write(b); err != nil {
					return err
				}
				off += int64(len(b))
			}
			rep(off)
		}
	}
	return nil
}

// zeroWriter writes zero runs to a plain writer from one shared zero buffer.
type zeroWriter struct {
	w     io.Writer
	zeros []byte
}

func (z *zeroWriter) Write(p []byte) (int, error) { return z.w.Write(p) }
func (z *zeroWriter) Close() error                { return nil }

func (z *zeroWriter) WriteZeros(n int64) error {
	if z.zeros == nil {
		z.zeros = make([]byte, exportChunk)
	}
	for n > 0 {
		k := min(n, int64(len(z.zeros)))
		if _, err := z.w.Write(z.zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
