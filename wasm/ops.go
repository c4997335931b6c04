//go:build js && wasm

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/gzipx"
	"aerodisk/internal/idb"
	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
	"aerodisk/internal/opfs"
	"aerodisk/wasm/jsapi"
)

// Extension points of the test build (wasm/testhooks.go, build tag
// testhooks): operations only it answers, and what it does with the
// test-only open options. A production worker has neither.
var (
	testOps    = map[string]func(*request) (any, error){}
	beforeOpen = func(args safejs.Value) error { return nil }
)

// diskManager is the open manager and what it runs on.
type diskManager struct {
	m *manager.Manager
}

func (w *worker) dispatch(r *request) (any, error) {
	if r.op == "open" {
		return w.open(r)
	}
	if op, ok := testOps[r.op]; ok {
		return op(r)
	}
	w.mu.Lock()
	dm := w.dm
	w.mu.Unlock()
	if dm == nil {
		return nil, diskerr.New("", catalog.ErrInvalid, "the disk manager is not open")
	}
	m, a := dm.m, r.args
	// A string argument of the wrong type (a number for a name) is refused
	// by name before anything runs, never rendered into a name.
	for _, k := range stringArgs {
		if _, err := jsutil.Str(a, k); err != nil {
			return nil, diskerr.New("", catalog.ErrInvalid, "%v", err)
		}
	}
	str := func(k string) string { s, _ := jsutil.Str(a, k); return s }
	return dm.run(r, m, a, str)
}

// stringArgs are the arguments that must be strings (or absent, or null).
var stringArgs = []string{"id", "name", "kind", "fileName", "hddId", "cdId", "text", "mode", "baseId", "checkpointId"}

// run performs one request; str reads a string argument.
func (dm *diskManager) run(r *request, m *manager.Manager, a safejs.Value, str func(string) string) (any, error) {
	switch r.op {
	case "listDisks":
		return m.List()
	case "openReport":
		return m.Report(), nil
	case "getDisk":
		return m.Get(str("id"))
	case "exportable":
		gz, _ := jsutil.Bool(a, "gzip")
		delta, _ := jsutil.Bool(a, "delta")
		return m.ExportableWith(str("id"), manager.ExportOptions{Gzip: gz, Delta: delta, CheckpointID: str("checkpointId")})
	case "probeFile":
		file, err := a.Get("file")
		if err != nil {
			return nil, err
		}
		in, err := newFileInput(file)
		if err != nil {
			return nil, err
		}
		return m.Probe(in)
	case "limits":
		return m.Limits(), nil
	case "parseSize":
		requested, bytes, err := manager.ParseDiskSize(str("text"))
		if err != nil {
			return nil, err
		}
		return map[string]int64{"requestedBytes": requested, "bytes": bytes}, nil
	case "createBlankDisk":
		size, _ := jsutil.Int(a, "sizeBytes")
		return m.CreateBlank(r.ctx, manager.BlankOptions{Name: str("name"), SizeBytes: size, Kind: str("kind")})
	case "importDisk":
		file, err := a.Get("file")
		if err != nil {
			return nil, err
		}
		in, err := newFileInput(file)
		if err != nil {
			return nil, err
		}
		conv, _ := jsutil.Bool(a, "convert")
		return m.Import(r.ctx, in, manager.ImportOptions{Name: str("name"), Kind: str("kind"), Convert: conv, Progress: progressPoster(r.id)})
	case "exportDisk":
		gz, _ := jsutil.Bool(a, "gzip")
		delta, _ := jsutil.Bool(a, "delta")
		cw := &chunkWriter{r: r}
		bw := bufio.NewWriterSize(cw, chunkSize)
		o := manager.ExportOptions{Gzip: gz, Progress: progressPoster(r.id), CheckpointID: str("checkpointId"), Delta: delta}
		if err := m.Export(r.ctx, str("id"), o, bw); err != nil {
			return nil, err
		}
		return nil, bw.Flush()
	case "exportToTemp":
		return dm.exportToTemp(r)
	case "verifyDisk":
		return m.Verify(r.ctx, str("id"), progressPoster(r.id))
	case "renameDisk":
		return m.Rename(str("id"), str("name"))
	case "deleteDisk":
		return nil, m.Delete(str("id"))
	case "openDisk":
		return dm.openDisk(r, str)
	case "devCloseAll":
		return closeDevices()
	case "getMounts":
		return m.Mounts()
	case "setMounts":
		// Partial<Mounts>: a drive whose key is absent keeps its disk; null
		// or "" unmounts it.
		var ch manager.MountChange
		for _, k := range []struct {
			key string
			set *bool
			dst **string
		}{{"hddId", &ch.SetHdd, &ch.HddID}, {"cdId", &ch.SetCd, &ch.CdID}} {
			if !jsutil.Has(a, k.key) {
				continue
			}
			*k.set = true
			if s := str(k.key); s != "" {
				*k.dst = &s
			}
		}
		return m.SetMounts(ch)
	}
	if op, ok := layerOps[r.op]; ok {
		return op(r, m, a, str)
	}
	return nil, diskerr.New("", catalog.ErrInvalid, "unknown operation %q", r.op)
}

// open chooses the backend ("auto" prefers OPFS, falling back to IndexedDB
// where sync access handles are missing) and starts the manager, which
// sweeps files (or chunks) a killed tab left behind.
func (w *worker) open(r *request) (any, error) {
	want, _ := jsutil.Str(r.args, "backend")
	if err := beforeOpen(r.args); err != nil {
		return nil, err
	}
	var b manager.Backend
	var err error
	switch want {
	case "", "auto", "opfs":
		if opfs.Supported() {
			b, err = opfs.Open()
		} else if want == "opfs" {
			return nil, diskerr.New("", manager.ErrUnsupportedBackend, "this browser has no OPFS sync access handles")
		} else {
			b, err = idb.Open(r.ctx)
		}
	case "idb":
		b, err = idb.Open(r.ctx)
	default:
		return nil, diskerr.New("", catalog.ErrInvalid, "backend must be \"auto\", \"opfs\" or \"idb\", not %q", want)
	}
	if err != nil {
		return nil, err
	}
	m, err := manager.New(b)
	if err != nil {
		return nil, err
	}
	tempExports := opfs.Supported()
	if tempExports {
		if d, err := opfs.ExportDir(); err == nil {
			d.Clear() // temporary exports from earlier sessions
		}
	}
	jsutil.WarmHelper() // start the helper worker while the page settles
	// Two chunks queued at the helper keep it busy while this worker
	// compresses its own share.
	m.GzipHelpers = make(chan gzipx.Compressor, 2)
	m.GzipHelpers <- &remoteCompressor{}
	m.GzipHelpers <- &remoteCompressor{}
	// A merge yields to the event loop between its ~5 ms steps, so block
	// requests and other calls are answered while it runs.
	m.Yield = func() { time.Sleep(time.Millisecond) }
	w.mu.Lock()
	w.dm = &diskManager{m: m}
	w.mu.Unlock()
	// Merges and commits a killed tab left unfinished resume in the
	// background; their disks refuse layer operations until then.
	go m.ResumePending(context.Background())
	// Without sync access handles the page downloads exports another way.
	// The report says what opening recovered or swept.
	return map[string]any{"backend": b.Name(), "tempExports": tempExports, "report": m.Report()}, nil
}

// exportToTemp writes an export into aero/exports/<name> for the page to
// download when showSaveFilePicker is missing.
func (dm *diskManager) exportToTemp(r *request) (any, error) {
	name, _ := jsutil.Str(r.args, "fileName")
	id, _ := jsutil.Str(r.args, "id")
	gz, _ := jsutil.Bool(r.args, "gzip")
	dir, err := opfs.ExportDir()
	if err != nil {
		return nil, err
	}
	tmp := fmt.Sprintf("export-%d-%s", r.id, sanitize(name))
	f, err := dir.Create(tmp)
	if err != nil {
		return nil, err
	}
	sw := &seqWriter{w: f}
	bw := bufio.NewWriterSize(sw, chunkSize)
	cp, _ := jsutil.Str(r.args, "checkpointId")
	delta, _ := jsutil.Bool(r.args, "delta")
	err = dm.m.Export(r.ctx, id, manager.ExportOptions{Gzip: gz, Progress: progressPoster(r.id), CheckpointID: cp, Delta: delta}, bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		dir.Remove(tmp)
		return nil, err
	}
	return map[string]string{"tempName": tmp}, nil
}

func sanitize(s string) string {
	out := []rune{}
	for _, c := range s {
		if c == '/' || c == '\\' || c < 0x20 {
			c = '_'
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return "disk.img"
	}
	return string(out)
}

// seqWriter writes sequentially through an io.WriterAt.
type seqWriter struct {
	w   io.WriterAt
	off int64
}

func (s *seqWriter) Write(p []byte) (int, error) {
	n, err := s.w.WriteAt(p, s.off)
	s.off += int64(n)
	return n, err
}

// chunkSize is the size of export messages: big enough to amortise
// postMessage, small enough to keep the page's memory flat.
const chunkSize = 1 << 20

// chunkWriter posts export data to the page, one chunk per credit.
type chunkWriter struct{ r *request }

func (c *chunkWriter) Write(p []byte) (int, error) {
	for done := 0; done < len(p); {
		select {
		case <-c.r.credits:
		case <-c.r.ctx.Done():
			return done, c.r.ctx.Err()
		}
		n := min(len(p)-done, 4*chunkSize)
		q := p[done : done+n]
		if err := jsutil.PostChunk(c.r.id, q); err != nil {
			return done, err
		}
		done += n
	}
	return len(p), nil
}

// progressPoster posts progress messages for request id.
func progressPoster(id int) func(manager.Progress) {
	return func(p manager.Progress) {
		msg, err := safejs.ValueOf(map[string]any{
			"id": id,
			"progress": map[string]any{
				"phase": p.Phase, "processedBytes": float64(p.ProcessedBytes),
				"totalBytes": float64(p.TotalBytes), "bytesPerSecond": p.BytesPerSecond,
			},
		})
		if err == nil {
			jsutil.Post(msg)
		}
	}
}

// reply posts a request's result or error.
func reply(id int, result any, err error) {
	var msg map[string]any
	if err != nil {
		msg = map[string]any{"id": id, "ok": false, "error": map[string]any{
			"name": jsapi.ErrorName(err), "message": jsapi.ErrorMessage(err),
		}}
	} else {
		b, jerr := json.Marshal(result)
		if jerr != nil {
			msg = map[string]any{"id": id, "ok": false, "error": map[string]any{"name": "Error", "message": jerr.Error()}}
		} else {
			msg = map[string]any{"id": id, "ok": true, "json": string(b)}
		}
	}
	v, verr := safejs.ValueOf(msg)
	if verr != nil {
		return
	}
	jsutil.Post(v)
}
