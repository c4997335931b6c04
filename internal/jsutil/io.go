//go:build js && wasm

package jsutil

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/hack-pad/safejs"
)

// The whole Go↔JS boundary of the worker: every helper of self.aerodiskIO
// (web/disk_worker.js) that Go calls, as a typed function. Nothing outside
// this package calls a helper by name. Each JS helper returns {e: {name,
// message}} instead of throwing and settles its promise as {v} or {e}, so a
// failure arrives here as a *DOMError that keeps its name, never a panic.
//
// What JS does behind these is I/O only — move bytes between a File's
// stream, a sync access handle, Go memory and the checksum worker, and
// report facts (a count, whether a buffer is all zeros). Every decision
// (sizes, what to store, what to checksum, what a failure means) is made in
// Go (docs/browser.md, "The seam").

// Handle is a FileSystemSyncAccessHandle.
type Handle struct{ v safejs.Value }

// Dir is a FileSystemDirectoryHandle.
type Dir struct{ v safejs.Value }

// Blob is a File (or Blob) the page handed over.
type Blob struct{ v safejs.Value }

// NewBlob wraps a File received in a message.
func NewBlob(v safejs.Value) Blob { return Blob{v} }

// Value is the File itself, for a message that hands it on.
func (b Blob) Value() safejs.Value { return b.v }

// Stream is a File's stream being read: its reader and state.
type Stream struct{ v safejs.Value }

// CRCJob is a checksum job at the helper worker.
type CRCJob struct{ id int }

func intOf(v safejs.Value, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	f, err := v.Float()
	return int(f), err
}

// --- sync access handles: bytes straight between Go memory and the file ---

// HandleRead reads len(p) bytes at off into p (fewer at the end of the file).
func HandleRead(h Handle, p []byte, off int64) (int, error) {
	return intOf(call("read", h.v, Addr(p), len(p), off))
}

// HandleWrite writes p at off and returns the bytes written (fewer: no space).
func HandleWrite(h Handle, p []byte, off int64) (int, error) {
	return intOf(call("write", h.v, Addr(p), len(p), off))
}

func HandleTruncate(h Handle, size int64) error { _, err := call("truncate", h.v, size); return err }

func HandleSize(h Handle) (int64, error) {
	n, err := intOf(call("getSize", h.v))
	return int64(n), err
}

func HandleFlush(h Handle) error { _, err := call("flush", h.v); return err }
func HandleClose(h Handle) error { _, err := call("close", h.v); return err }

// --- OPFS directories ---

// OPFSSupported reports whether sync access handles exist here.
func OPFSSupported() bool {
	v, err := call("opfsSupported")
	if err != nil {
		return false
	}
	ok, _ := v.Bool()
	return ok
}

// DisksDir is aero/disks (created if missing); ExportsDir is aero/exports.
func DisksDir() (Dir, error)   { v, err := callAwait("disksDir"); return Dir{v}, err }
func ExportsDir() (Dir, error) { v, err := callAwait("exportsDir"); return Dir{v}, err }

// CreateFile creates name (failing if it exists) and opens it read-write.
func CreateFile(d Dir, name string) (Handle, error) {
	v, err := callAwait("createFile", d.v, name)
	return Handle{v}, err
}

// OpenFile opens name, writable or read-only; create makes it if missing.
func OpenFile(d Dir, name string, writable, create bool) (Handle, error) {
	v, err := callAwait("openFile", d.v, name, writable, create)
	return Handle{v}, err
}

func RemoveFile(d Dir, name string) error { _, err := callAwait("removeFile", d.v, name); return err }

// Exists reports whether d has an entry called name.
func Exists(d Dir, name string) (bool, error) {
	v, err := callAwait("exists", d.v, name)
	if err != nil {
		return false, err
	}
	return v.Bool()
}

// RenameFile renames from to to, within d; to must not exist.
func RenameFile(d Dir, from, to string) error {
	_, err := callAwait("renameFile", d.v, from, to)
	return err
}

// ReplaceFile moves tmp over name.
func ReplaceFile(d Dir, tmp, name string) error {
	_, err := callAwait("replaceFile", d.v, tmp, name)
	return err
}

// ListFiles lists d's files.
func ListFiles(d Dir) ([]string, error) {
	v, err := callAwait("listFiles", d.v)
	if err != nil {
		return nil, err
	}
	return Strings(v)
}

// ClearDir removes every file of d not held open elsewhere.
func ClearDir(d Dir) error { _, err := callAwait("clearDir", d.v); return err }

// ReadText reads name as text.
func ReadText(d Dir, name string) (string, error) {
	v, err := callAwait("readText", d.v, name)
	if err != nil {
		return "", err
	}
	return v.String()
}

// --- inputs: a File, at random offsets and as a stream ---

// BlobReadAt reads up to len(p) bytes at off into p (FileReaderSync).
func BlobReadAt(b Blob, p []byte, off int64) (int, error) {
	return intOf(call("readFileAt", b.v, off, len(p), Addr(p)))
}

// OpenStream starts reading b's stream, with a BYOB reader where the
// browser offers one.
func OpenStream(b Blob) (Stream, error) { v, err := call("openStream", b.v); return Stream{v}, err }

// StreamRead fills p from the stream (fewer bytes only at its end).
func StreamRead(s Stream, p []byte) (int, error) {
	return intOf(callAwait("streamRead", s.v, Addr(p), len(p)))
}

// CloseStream cancels the stream's reader.
func CloseStream(s Stream) { call("closeStream", s.v) }

// --- the checksum worker (the helper) ---

// CRCBegin starts a checksum job whose bytes travel in count buffers of
// bufBytes each, lent by the disk worker and given back by the helper.
func CRCBegin(bufBytes, count int) (CRCJob, error) {
	id, err := intOf(call("crcBegin", bufBytes, count))
	return CRCJob{id}, err
}

// StreamCopy moves up to n bytes from the stream into h at at, each piece
// written as it arrives and each full buffer then sent to job, and returns
// the bytes moved (fewer: the stream ended).
func StreamCopy(s Stream, h Handle, at, n int64, job CRCJob) (int64, error) {
	got, err := intOf(callAwait("streamCopy", s.v, h.v, at, n, job.id))
	return int64(got), err
}

// Chunk is one buffer of a stream, held in JS: its bytes, their count, and
// whether they are all zeros.
type Chunk struct {
	Data safejs.Value // a Uint8Array that owns its buffer
	N    int
	Zero bool
}

// StreamChunk reads the stream's next n bytes (fewer at its end) into one
// of job's buffers; ok is false at the end of the stream.
func StreamChunk(s Stream, n int, job CRCJob) (c Chunk, ok bool, err error) {
	v, err := callAwait("streamChunk", s.v, n, job.id)
	if err != nil || v.IsNull() || v.IsUndefined() {
		return Chunk{}, false, err
	}
	if c.Data, err = v.Get("chunk"); err != nil {
		return Chunk{}, false, err
	}
	nn, err := Int(v, "n")
	if err != nil {
		return Chunk{}, false, err
	}
	c.N = int(nn)
	c.Zero, _ = Bool(v, "zero")
	return c, true, nil
}

// CRCPost sends chunks (already stored: a put copies its value) to job.
func CRCPost(job CRCJob, chunks []safejs.Value) error {
	arr, err := safejs.Global().Get("Array")
	if err == nil {
		arr, err = arr.New()
	}
	for i := 0; err == nil && i < len(chunks); i++ {
		err = arr.SetIndex(i, chunks[i])
	}
	if err != nil {
		return err
	}
	_, err = callAwait("crcPost", job.id, arr)
	return err
}

// ErrNoChecksum: the helper gave no checksum (it died during the job).
var ErrNoChecksum = errors.New("the checksum worker sent no checksum")

// CRCEnd waits for job's CRC32.
func CRCEnd(job CRCJob) (uint32, error) {
	v, err := callAwait("crcEnd", job.id)
	if err != nil {
		return 0, err
	}
	crc, err := v.Float()
	if err != nil {
		return 0, ErrNoChecksum
	}
	return uint32(crc), nil
}

// CRCCancel abandons job.
func CRCCancel(job CRCJob) { call("crcCancel", job.id) }

// WarmHelper starts the helper worker now, so it is ready when needed.
func WarmHelper() { call("warmHelper") }

// DeflateStart copies p to the helper to be compressed as one deflate
// segment and returns the request's id.
func DeflateStart(p []byte) (safejs.Value, error) { return call("deflateStart", Addr(p), len(p)) }

// DeflateWait waits for request id: {seg: Uint8Array, crc} or {error}.
func DeflateWait(id safejs.Value) (safejs.Value, error) { return callAwait("deflateWait", id) }

// --- block devices: bytes between Go memory and the page's buffers ---

// Buffer is an ArrayBuffer that came with a request (a device write's
// bytes, a readInto's buffer lent by the page) or that a reply will carry
// to the page, transferred either way: no copy through JSON.
type Buffer struct{ v safejs.Value }

// BufferOf takes v as an ArrayBuffer and returns its length; anything else
// is ErrType.
func BufferOf(v safejs.Value) (Buffer, int, error) {
	n, err := intOf(call("bufferLength", v))
	if err == nil && n < 0 {
		err = fmt.Errorf("%w: the bytes must be an ArrayBuffer", ErrType)
	}
	return Buffer{v}, n, err
}

// NewBuffer makes an ArrayBuffer of n bytes for a reply.
func NewBuffer(n int) (Buffer, error) { v, err := call("newBuffer", n); return Buffer{v}, err }

// CopyToBuffer copies p into b from byte at on (one memcpy in JS).
func CopyToBuffer(b Buffer, at int, p []byte) error {
	_, err := call("copyOut", b.v, at, Addr(p), len(p))
	return err
}

// CopyFromBuffer fills p from b's bytes at at (one memcpy in JS).
func CopyFromBuffer(p []byte, b Buffer, at int) error {
	_, err := call("copyIn", b.v, at, Addr(p), len(p))
	return err
}

// ReplyBuffer answers request id with b, transferred to the page:
// {id, ok: true, bytes: b}.
func ReplyBuffer(id int, b Buffer) error { _, err := call("replyBuffer", id, b.v); return err }

// --- the synchronous channel (wasm/device.go; web/block_channel.js is the
// emulator's end, docs/browser.md "Synchronous channel") ---

// Channel is the disk worker's end of a synchronous channel: the
// SharedArrayBuffer the page made, its views, the port, and the JS loop
// that waits on it (Atomics.waitAsync) and calls wake with each request.
type Channel struct {
	v   safejs.Value
	req *[3]float64 // ChannelNext's request, written by JS: offset, length, span
}

// ErrorText is an error as the emulator's worker throws it: an Error.name
// and the sentence (both from wasm/jsapi).
type ErrorText struct{ Name, Message string }

// ChannelInfo is what a channel's header tells the emulator's worker, and
// the error it throws once the channel has ended: Closed when the device
// or the channel was closed, Stopped when the disk worker stopped
// answering (it died: no sentence can be asked of it then).
type ChannelInfo struct {
	DataBytes  int // the data area: the most one request moves
	SizeBytes  int64
	SectorSize int
	ReadOnly   bool
	Closed     ErrorText
	Stopped    ErrorText
}

// CrossOriginIsolated reports whether this worker may share memory with
// others: crossOriginIsolated, and SharedArrayBuffer exists.
func CrossOriginIsolated() bool {
	v, err := call("crossOriginIsolated")
	if err != nil {
		return false
	}
	ok, _ := v.Bool()
	return ok
}

// SharedLength takes v as a SharedArrayBuffer and returns its length;
// anything else is ErrType.
func SharedLength(v safejs.Value) (int, error) {
	n, err := intOf(call("sharedLength", v))
	if err == nil && n < 0 {
		err = fmt.Errorf("%w: the channel needs a SharedArrayBuffer", ErrType)
	}
	return n, err
}

// ChannelOpen writes the channel's header into sab, takes the port (which
// the emulator's worker closes the channel through) and starts waiting for
// requests: each calls wake(id, op, offset, length, span) inside a JS
// task, which must not block (it queues the request).
func ChannelOpen(id int, sab, port safejs.Value, wake safejs.Func, info ChannelInfo) (Channel, error) {
	v, err := call("channelOpen", id, sab, port, wake.Value(), info.DataBytes, info.SizeBytes, info.SectorSize, info.ReadOnly,
		info.Closed.Name, info.Closed.Message, info.Stopped.Name, info.Stopped.Message)
	return Channel{v: v, req: new([3]float64)}, err
}

// ChannelRead answers a read: p into the data area (one memcpy in JS),
// then the answer, which wakes the waiting worker.
func ChannelRead(c Channel, p []byte) error {
	_, err := call("channelRead", c.v, Addr(p), len(p))
	return err
}

// ChannelTake fills p from the data area, where a write's bytes are.
func ChannelTake(c Channel, p []byte) error {
	_, err := call("channelTake", c.v, Addr(p), len(p))
	return err
}

// ChannelRequest is a request taken by ChannelNext.
type ChannelRequest struct {
	Op                   int
	Offset, Length, Span float64
}

// ChannelNext takes the request waiting in the channel now, if there is
// one (ok false: none, or one already with Go): no callback, so a worker
// that answered one request can serve the next at once.
func ChannelNext(c Channel) (r ChannelRequest, ok bool, err error) {
	op, err := intOf(call("channelNext", c.v, int(uintptr(unsafe.Pointer(c.req)))))
	if err != nil || op == 0 {
		return r, false, err
	}
	f := c.req
	return ChannelRequest{Op: op, Offset: f[0], Length: f[1], Span: f[2]}, true, nil
}

// ChannelDone answers a request that moved no bytes back (a write, a
// discard, a flush).
func ChannelDone(c Channel) error { _, err := call("channelDone", c.v); return err }

// ChannelFail answers a request with an error, which the waiting worker
// throws.
func ChannelFail(c Channel, e ErrorText) error {
	_, err := call("channelFail", c.v, e.Name, e.Message)
	return err
}

// ChannelEnd ends the channel: its requests, a waiting one included, throw
// e from then on, and the JS loop stops waiting.
func ChannelEnd(c Channel, e ErrorText) error {
	_, err := call("channelEnd", c.v, e.Name, e.Message)
	return err
}

// --- messages to the page ---

// Post posts msg to the page (structured clone).
func Post(msg safejs.Value) error { _, err := call("post", msg); return err }

// PostChunk posts a copy of p to the page as request id's export chunk.
func PostChunk(id int, p []byte) error { _, err := call("postChunk", id, Addr(p), len(p)); return err }

// Ready tells the page (or the disk worker, in the helper) that Go has
// started.
func Ready() error { _, err := call("ready"); return err }

// --- test hooks (present only in the test build's worker, web/test) ---

// TestHook calls a test-only helper by name; in a production worker it
// fails (the helper does not exist).
func TestHook(name string, args ...any) (safejs.Value, error) { return call(name, args...) }

// StreamSink is a backend file that takes a File's stream straight from the
// worker's JS, without passing its bytes through Go memory, handing each
// buffer to a checksum job as it goes: the fast import. Both backends'
// files implement it (internal/opfs, internal/idb).
type StreamSink interface {
	TakeStream(ctx context.Context, s Stream, size int64, job CRCJob, progress func(done int64)) error
}
