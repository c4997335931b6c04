//go:build js && wasm

package main

// Block devices in the worker (docs/browser.md, "Block devices"): openDisk
// opens a manager.Device and answers with a handle; devRead, devWrite,
// devDiscard, devFlush and devClose name it in args.dev. A device's
// requests run one at a time, in the order the page sent them: each device
// has a queue that onMessage fills synchronously (message order) and one
// goroutine drains, so a read sent after a write reads what it wrote
// whichever goroutine the scheduler would have run first.
//
// Bytes never pass through JSON: a write's bytes arrive as an ArrayBuffer
// the page transferred (its own copy, made before write() returned), a
// read's leave in an ArrayBuffer transferred to the page — a new one, or
// the one a readInto lent. Between them and the disk the bytes go through
// one Go buffer per device, in pieces of at most devicePiece, read and
// written by the disk file's own ReadAt/WriteAt (on OPFS straight between
// that buffer and the sync access handle).

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/blockdev"
	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
	"aerodisk/wasm/jsapi"
)

// devicePiece bounds the Go memory one device holds for moving bytes, and
// the size of each ReadAt/WriteAt a long request is cut into (a multiple
// of the sector size, so every piece is aligned).
const devicePiece = 4 << 20

// deviceInfo is openDisk's answer.
type deviceInfo struct {
	Dev        int    `json:"dev"`
	SizeBytes  int64  `json:"sizeBytes"`
	SectorSize int    `json:"sectorSize"`
	ReadOnly   bool   `json:"readOnly"`
	DiskID     string `json:"diskId"`
	// ChannelBytes is the size of the SharedArrayBuffer channel() makes
	// (BlockDevice keeps it private).
	ChannelBytes int `json:"channelBytes"`
}

// devices are the worker's open devices, by handle.
var devices struct {
	mu   sync.Mutex
	next int
	open map[int]*openDevice
}

type openDevice struct {
	handle int
	dev    *manager.Device
	buf    []byte // the piece buffer, grown to at most devicePiece

	mu      sync.Mutex
	queue   []func()
	running bool

	// The device's synchronous channels (below): touched only by jobs of
	// the queue, so in request order.
	chans []*channel
	ended bool // closed: no new channel
}

// openDisk opens a device and registers it.
func (dm *diskManager) openDisk(r *request, str func(string) string) (any, error) {
	writable, err := jsutil.Bool(r.args, "writable")
	if err != nil {
		return nil, diskerr.New("", catalog.ErrInvalid, "writable must be true or false")
	}
	dev, err := dm.m.OpenDisk(r.ctx, str("id"), manager.DeviceOptions{Writable: writable, Mode: str("mode")})
	if err != nil {
		return nil, err
	}
	devices.mu.Lock()
	devices.next++
	d := &openDevice{handle: devices.next, dev: dev}
	if devices.open == nil {
		devices.open = map[int]*openDevice{}
	}
	devices.open[d.handle] = d
	devices.mu.Unlock()
	return deviceInfo{Dev: d.handle, SizeBytes: dev.Size(), SectorSize: dev.SectorSize(), ReadOnly: dev.ReadOnly(), DiskID: dev.DiskID(),
		ChannelBytes: channelHeaderBytes + channelDataBytes}, nil
}

// onDeviceMessage queues a device request (it runs inside onMessage's
// js.Func callback, so it must not block). devClose takes the device out
// of the table at once: requests sent after it find no device.
func (w *worker) onDeviceMessage(op string, msg safejs.Value) {
	id, _ := jsutil.Int(msg, "id")
	args, _ := msg.Get("args")
	h, _ := jsutil.Int(args, "dev")
	r := &request{id: int(id), op: op, args: args, ctx: context.Background()}
	devices.mu.Lock()
	d := devices.open[int(h)]
	if d != nil && op == "devClose" {
		delete(devices.open, int(h))
	}
	devices.mu.Unlock()
	if d == nil {
		go reply(r.id, nil, manager.ErrDeviceClosed)
		return
	}
	d.enqueue(func() {
		if replied, err := d.run(r); !replied {
			reply(r.id, nil, err)
		}
	})
}

// closeDevices closes every open device (DiskManager.close): each after
// the requests already queued for it.
func closeDevices() (any, error) {
	devices.mu.Lock()
	all := devices.open
	devices.open = nil
	devices.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range all {
		wg.Add(1)
		d.enqueue(func() {
			defer wg.Done()
			d.endChannels()
			d.dev.Close()
		})
	}
	wg.Wait()
	return nil, nil
}

func (d *openDevice) enqueue(job func()) {
	d.mu.Lock()
	d.queue = append(d.queue, job)
	start := !d.running
	d.running = true
	d.mu.Unlock()
	if start {
		go d.drain()
	}
}

func (d *openDevice) drain() {
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.running = false
			d.mu.Unlock()
			return
		}
		job := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		job()
	}
}

// run performs one request; replied reports that it posted its own answer
// (a read's bytes).
func (d *openDevice) run(r *request) (replied bool, err error) {
	off, err := jsutil.Int(r.args, "offset")
	if err != nil {
		return false, diskerr.New("", catalog.ErrInvalid, "offset must be a number")
	}
	switch r.op {
	case "devRead":
		return d.read(r, off)
	case "devWrite":
		return false, d.write(r, off)
	case "devDiscard":
		n, err := jsutil.Int(r.args, "length")
		if err != nil {
			return false, diskerr.New("", catalog.ErrInvalid, "length must be a number")
		}
		return false, d.dev.Discard(off, n)
	case "devFlush":
		return false, d.dev.Flush()
	case "devClose":
		d.endChannels()
		return false, d.dev.Close()
	}
	return false, diskerr.New("", catalog.ErrInvalid, "unknown operation %q", r.op)
}

// piece returns the piece buffer, n bytes long (n ≤ devicePiece).
func (d *openDevice) piece(n int) []byte {
	if len(d.buf) < n {
		d.buf = make([]byte, min(devicePiece, max(n, 2*len(d.buf))))
	}
	return d.buf[:n]
}

// read answers devRead with the bytes in an ArrayBuffer: args.buf, lent by
// readInto (at least length bytes), or a new one.
func (d *openDevice) read(r *request, off int64) (bool, error) {
	n, err := jsutil.Int(r.args, "length")
	if err != nil {
		return false, diskerr.New("", catalog.ErrInvalid, "length must be a number")
	}
	if err := blockdev.CheckRange(off, n, d.dev.Size()); err != nil {
		return false, err
	}
	var buf jsutil.Buffer
	if jsutil.Has(r.args, "buf") {
		v, _ := r.args.Get("buf")
		var size int
		if buf, size, err = jsutil.BufferOf(v); err != nil {
			return false, diskerr.New("", catalog.ErrInvalid, "%v", err)
		}
		if int64(size) < n {
			return false, diskerr.New("", catalog.ErrInvalid, "the buffer holds %d bytes, fewer than the %d to read", size, n)
		}
	} else if buf, err = jsutil.NewBuffer(int(n)); err != nil {
		return false, err
	}
	for done := int64(0); done < n; {
		p := d.piece(int(min(n-done, devicePiece)))
		if _, err := d.dev.ReadAt(p, off+done); err != nil {
			return false, err
		}
		if err := jsutil.CopyToBuffer(buf, int(done), p); err != nil {
			return false, err
		}
		done += int64(len(p))
	}
	return true, jsutil.ReplyBuffer(r.id, buf)
}

// write writes args.bytes, an ArrayBuffer, at off. The whole range is
// checked first, so a request that breaks the rule writes nothing.
func (d *openDevice) write(r *request, off int64) error {
	v, err := r.args.Get("bytes")
	if err != nil {
		return err
	}
	buf, size, err := jsutil.BufferOf(v)
	if err != nil {
		return diskerr.New("", catalog.ErrInvalid, "%v", err)
	}
	n := int64(size)
	if err := blockdev.CheckRange(off, n, d.dev.Size()); err != nil {
		return err
	}
	for done := int64(0); done < n; {
		p := d.piece(int(min(n-done, devicePiece)))
		if err := jsutil.CopyFromBuffer(p, buf, int(done)); err != nil {
			return err
		}
		if _, err := d.dev.WriteAt(p, off+done); err != nil {
			return err
		}
		done += int64(len(p))
	}
	return nil
}

// --- the synchronous channel (docs/browser.md, "Synchronous channel") ---
//
// An emulator compiled from C runs in a worker of its own and blocks on
// I/O. BlockDevice.channel() makes a SharedArrayBuffer (channelBytes, the
// size openDisk told it) and a MessageChannel and sends both here
// (devChannel); the page hands {sab, port} to the emulator's worker, whose
// BlockChannel (web/block_channel.js) writes a request into the buffer's
// header, notifies, and blocks in Atomics.wait. Here a JS loop waits with
// Atomics.waitAsync and calls channelWake, which queues the request on the
// device's queue like any of the page's: a channel's requests and the
// page's run one at a time, in the order they arrived. On OPFS the job
// runs before control returns to JavaScript (Go runs every goroutine a
// callback woke before it pauses), so a read is answered within the JS
// task that saw it, with one copy between wasm memory and the buffer's
// data area; on IndexedDB (or the first write, which commits the stale
// checksum under a Web Lock) the job awaits its promises like any other
// and answers when it is done. Every check and every error is Go's: the
// range rules (blockdev.CheckRange), the sentence and the Error.name the
// emulator's worker throws (wasm/jsapi).

// The channel's SharedArrayBuffer: a header of channelHeaderBytes (state
// words, the request, three error records; the layout is
// web/block_channel.js's and web/disk_worker.js's, docs/browser.md) and a
// data area of channelDataBytes, the most one request moves. BlockChannel
// cuts longer reads and writes into pieces of that size, each naming the
// whole remaining range (span) so that a range that breaks the rules is
// refused before the first piece moves.
const (
	channelHeaderBytes = 4096
	channelDataBytes   = 1 << 20
)

// The op word of a request.
const (
	chRead    = 1
	chWrite   = 2
	chDiscard = 3
	chFlush   = 4
	chEnd     = 5 // the emulator's BlockChannel.close(), through the port
)

var (
	// errNotIsolated refuses channel() in a page that cannot share memory.
	errNotIsolated = diskerr.New("", manager.ErrUnsupportedBackend,
		"the synchronous channel needs a SharedArrayBuffer, which a page has only when it is cross-origin isolated: "+
			"serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, "+
			"as aerodisk serve does")
	errChannelClosed = diskerr.New("", catalog.ErrInvalid, "the channel is closed")
	// errStopped is what a channel throws once the disk worker no longer
	// answers (it was terminated, or Go exited): written into the buffer
	// when the channel opens, since nobody can say it later.
	errStopped = errors.New("the disk worker stopped answering, so the channel has ended")
)

// channel is one open channel of a device.
type channel struct {
	id    int
	d     *openDevice
	js    jsutil.Channel
	ended bool // set by a job of d's queue

	misses, rest int // serve's polling (see there)
}

// channels are the worker's open channels, by id, for channelWake.
var channels struct {
	mu   sync.Mutex
	next int
	open map[int]*channel

	once    sync.Once
	wake    safejs.Func
	wakeErr error
}

func errorText(err error) jsutil.ErrorText {
	return jsutil.ErrorText{Name: jsapi.ErrorName(err), Message: jsapi.ErrorMessage(err)}
}

func init() {
	// devChannel is a device request that carries a SharedArrayBuffer and
	// a MessagePort; it reaches the device's queue from here.
	layerOps["devChannel"] = func(r *request, _ *manager.Manager, _ safejs.Value, _ func(string) string) (any, error) {
		return nil, openChannel(r)
	}
}

// openChannel answers devChannel: {dev, sab, port}.
func openChannel(r *request) error {
	if !jsutil.CrossOriginIsolated() {
		return errNotIsolated
	}
	h, _ := jsutil.Int(r.args, "dev")
	devices.mu.Lock()
	d := devices.open[int(h)]
	devices.mu.Unlock()
	if d == nil {
		return manager.ErrDeviceClosed
	}
	sab, err := r.args.Get("sab")
	if err != nil {
		return err
	}
	n, err := jsutil.SharedLength(sab)
	if err != nil {
		return diskerr.New("", catalog.ErrInvalid, "%v", err)
	}
	if want := channelHeaderBytes + channelDataBytes; n != want {
		return diskerr.New("", catalog.ErrInvalid, "the channel's SharedArrayBuffer holds %d bytes, not %d", n, want)
	}
	port, err := r.args.Get("port")
	if err != nil {
		return err
	}
	wake, err := channelWake()
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	d.enqueue(func() { done <- d.addChannel(sab, port, wake) })
	return <-done
}

// addChannel registers a channel (a job of d's queue).
func (d *openDevice) addChannel(sab, port safejs.Value, wake safejs.Func) error {
	if d.ended {
		return manager.ErrDeviceClosed
	}
	channels.mu.Lock()
	channels.next++
	c := &channel{id: channels.next, d: d}
	channels.mu.Unlock()
	js, err := jsutil.ChannelOpen(c.id, sab, port, wake, jsutil.ChannelInfo{
		DataBytes: channelDataBytes, SizeBytes: d.dev.Size(), SectorSize: d.dev.SectorSize(), ReadOnly: d.dev.ReadOnly(),
		Closed: errorText(errChannelClosed), Stopped: errorText(errStopped),
	})
	if err != nil {
		return diskerr.New("", catalog.ErrInvalid, "%v", err)
	}
	c.js = js
	channels.mu.Lock()
	if channels.open == nil {
		channels.open = map[int]*channel{}
	}
	channels.open[c.id] = c
	channels.mu.Unlock()
	d.chans = append(d.chans, c)
	return nil
}

// channelWake is the function the JS loop calls with each request:
// (id, op, offset, length, span). It runs inside a JS callback, so it only
// queues the request.
func channelWake() (safejs.Func, error) {
	channels.once.Do(func() {
		channels.wake, channels.wakeErr = safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
			if len(args) < 5 {
				return nil
			}
			var f [5]float64
			for i := range f {
				f[i], _ = args[i].Float()
			}
			channels.mu.Lock()
			c := channels.open[int(f[0])]
			channels.mu.Unlock()
			if c != nil {
				op, off, n, span := int(f[1]), f[2], f[3], f[4]
				c.d.enqueue(func() { c.serve(op, off, n, span) })
			}
			return nil
		})
	})
	return channels.wake, channels.wakeErr
}

// endChannels ends every channel of d: the device is closing (a job of
// d's queue). A request that was waiting throws the device's closed error.
func (d *openDevice) endChannels() {
	d.ended = true
	for _, c := range d.chans {
		c.end(manager.ErrDeviceClosed)
	}
	d.chans = nil
}

// end ends c with err (a job of its device's queue).
func (c *channel) end(err error) {
	if c.ended {
		return
	}
	c.ended = true
	channels.mu.Lock()
	delete(channels.open, c.id)
	channels.mu.Unlock()
	jsutil.ChannelEnd(c.js, errorText(err))
}

// serve performs one request of c and answers it (a job of the device's
// queue), then polls for the next for up to channelPoll: an emulator
// reading or writing in a burst sends its next request within
// microseconds, and one taken here costs no JS→Go callback (about 12 µs
// each, measured on the 2-core machine; a whole 4 KiB round trip is ~25).
// A burst served this way returns to the event loop after channelBurst.
// After channelMisses polls in a row that found nothing, the next
// channelRest answers do not poll, so a channel used now and then costs
// no CPU.
func (c *channel) serve(op int, off, n, span float64) {
	c.serveOne(op, off, n, span)
	if c.rest > 0 {
		c.rest--
		return
	}
	start := time.Now()
	last := start
	for !c.ended {
		r, ok, err := jsutil.ChannelNext(c.js)
		if err != nil {
			return
		}
		now := time.Now()
		if ok {
			c.misses = 0
			c.serveOne(r.Op, r.Offset, r.Length, r.Span)
			if now.Sub(start) > channelBurst {
				return // the next one comes through the JS loop
			}
			last = time.Now()
			continue
		}
		if now.Sub(last) > channelPoll {
			if c.misses++; c.misses >= channelMisses {
				c.misses, c.rest = 0, channelRest
			}
			return
		}
	}
}

// How long serve polls, and how long a burst keeps the event loop waiting.
const (
	channelPoll   = 50 * time.Microsecond
	channelBurst  = 2 * time.Millisecond
	channelMisses = 4
	channelRest   = 64
)

// serveOne performs one request and answers it.
func (c *channel) serveOne(op int, off, n, span float64) {
	if c.ended {
		return // the device closed after the request came: its waiter was told
	}
	if op == chEnd {
		c.end(errChannelClosed)
		d := c.d
		for i, o := range d.chans {
			if o == c {
				d.chans = append(d.chans[:i], d.chans[i+1:]...)
				break
			}
		}
		return
	}
	err := c.do(op, off, n, span)
	if err == nil && op != chRead {
		err = jsutil.ChannelDone(c.js)
	}
	if err != nil {
		jsutil.ChannelFail(c.js, errorText(err))
	}
}

// do performs one request; a read answers with its bytes itself.
func (c *channel) do(op int, off, n, span float64) error {
	dev := c.d.dev
	offset, ok1 := whole(off)
	length, ok2 := whole(n)
	switch op {
	case chFlush:
		return dev.Flush()
	case chDiscard:
		if !ok1 || !ok2 {
			return diskerr.New("", catalog.ErrInvalid, "offset and length must be whole numbers of bytes")
		}
		return dev.Discard(offset, length)
	case chRead, chWrite:
		total, ok3 := whole(span)
		if !ok1 || !ok2 || !ok3 {
			return diskerr.New("", catalog.ErrInvalid, "offset and length must be whole numbers of bytes")
		}
		// The whole remaining range first: nothing moves for a request
		// that breaks the rules.
		if err := blockdev.CheckRange(offset, total, dev.Size()); err != nil {
			return err
		}
		if length <= 0 || length > total || length > channelDataBytes {
			return diskerr.New("", catalog.ErrInvalid, "a channel request moves between 1 and %d bytes of its range, not %d", channelDataBytes, length)
		}
		p := c.d.piece(int(length))
		if op == chWrite {
			if err := jsutil.ChannelTake(c.js, p); err != nil {
				return err
			}
			_, err := dev.WriteAt(p, offset)
			return err
		}
		if _, err := dev.ReadAt(p, offset); err != nil {
			return err
		}
		return jsutil.ChannelRead(c.js, p)
	}
	return diskerr.New("", catalog.ErrInvalid, "unknown channel request %d", op)
}

// whole converts a JS number to a whole number of bytes (ok false: a
// fraction, NaN, or beyond 2^53).
func whole(f float64) (int64, bool) {
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}
