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
	"sync"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/blockdev"
	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/jsutil"
	"aerodisk/internal/manager"
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
	return deviceInfo{Dev: d.handle, SizeBytes: dev.Size(), SectorSize: dev.SectorSize(), ReadOnly: dev.ReadOnly(), DiskID: dev.DiskID()}, nil
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
