// Package overlay works on chains of layers (docs/overlays.md): the block
// device of a layered disk, the merges that remove a layer (copying down
// into a writable base, or up into the layer above), and the changed blocks
// between a base and a layer, of which a delta is made. It is
// platform-neutral and knows nothing of catalogs: the manager decides which
// layers exist and records the outcome.
//
// Every long operation runs in steps: between blocks it asks its Pacer,
// which yields to block requests after ~5 ms of work (seed 001's per-frame
// storage_tick) and reports progress.
package overlay

import (
	"context"
	"io"
	"time"

	"aerodisk/internal/blockdev"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/layer"
)

// MaxChain is the most layers a disk's chain may have (the head included).
const MaxChain = 16

// Device is the block device of a chain whose top layer is l: reads see
// the whole chain, writes and discards go into l.
type Device struct {
	l        *layer.Layer
	readOnly bool
}

// NewDevice makes the device of the chain topped by l (which has its Below
// set). readOnly refuses writes even when l is writable.
func NewDevice(l *layer.Layer, readOnly bool) *Device {
	return &Device{l: l, readOnly: readOnly || !l.Writable()}
}

var _ blockdev.Device = (*Device)(nil)

func (d *Device) Size() int64         { return d.l.Size() }
func (d *Device) ReadOnly() bool      { return d.readOnly }
func (d *Device) Layer() *layer.Layer { return d.l }

func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckRange(off, int64(len(p)), d.l.Size()); err != nil {
		return 0, err
	}
	return d.l.ReadAt(p, off)
}

func (d *Device) WriteAt(p []byte, off int64) (int, error) {
	if err := d.writable(off, int64(len(p))); err != nil {
		return 0, err
	}
	return d.l.WriteAt(p, off)
}

func (d *Device) Discard(off, n int64) error {
	if err := d.writable(off, n); err != nil {
		return err
	}
	return d.l.Discard(off, n)
}

func (d *Device) writable(off, n int64) error {
	if err := blockdev.CheckRange(off, n, d.l.Size()); err != nil {
		return err
	}
	if d.readOnly {
		return diskerr.New("", diskerr.ErrReadOnly, "the disk is open read-only")
	}
	return nil
}

func (d *Device) Flush() error { return d.l.Flush() }
func (d *Device) Close() error { return d.l.Close() }

// Pacer runs a long operation in steps. Step is called between blocks: it
// returns ctx's error when the operation is cancelled, and after Budget of
// work it calls Yield (which lets block requests run) before the next one.
type Pacer struct {
	Ctx      context.Context
	Budget   time.Duration // 0: 5 ms
	Yield    func()        // nil: nothing to yield to
	Progress func(done, total int64)

	started time.Time
}

// DefaultBudget is the work done between two yields.
const DefaultBudget = 5 * time.Millisecond

func (p *Pacer) step(done, total int64) error {
	if p == nil {
		return nil
	}
	if p.Ctx != nil {
		if err := p.Ctx.Err(); err != nil {
			return err
		}
	}
	budget := p.Budget
	if budget <= 0 {
		budget = DefaultBudget
	}
	if p.started.IsZero() {
		p.started = time.Now()
	} else if time.Since(p.started) >= budget {
		if p.Progress != nil {
			p.Progress(done, total)
		}
		if p.Yield != nil {
			p.Yield()
		}
		p.started = time.Now()
	}
	return nil
}

func (p *Pacer) finish(total int64) {
	if p != nil && p.Progress != nil {
		p.Progress(total, total)
	}
}

// count is the number of blocks a layer has.
func count(l *layer.Layer) (int64, error) {
	var n int64
	err := l.Walk(func(int64, layer.State) bool { n++; return true })
	return n, err
}

// Target is a writable base a layer is committed into: a raw file or an
// AEROSPAR disk (whose Discard frees blocks), or another layer.
type Target interface {
	io.WriterAt
	Discard(off, n int64) error
	Flush() error
}

// CommitDown copies every block of top into dst (the disk top sits on),
// block by block; top is not changed. Afterwards dst reads as the chain
// did. It can be stopped at any block and run again from the start: a copy
// of a block is the block's bytes, so a second run writes the same bytes.
func CommitDown(top *layer.Layer, dst Target, p *Pacer) error {
	total, err := count(top)
	if err != nil {
		return err
	}
	buf := make([]byte, top.BlockSize())
	var done int64
	var stepErr error
	err = top.Walk(func(b int64, s layer.State) bool {
		if stepErr = p.step(done, total); stepErr != nil {
			return false
		}
		off := b * top.BlockSize()
		n := min(top.BlockSize(), top.Size()-off)
		if s == layer.Zero {
			stepErr = dst.Discard(off, n)
		} else if _, stepErr = top.ReadBlock(b, buf[:n]); stepErr == nil {
			_, stepErr = dst.WriteAt(buf[:n], off)
		}
		done++
		return stepErr == nil
	})
	if err = firstErr(err, stepErr); err != nil {
		return err
	}
	if err := dst.Flush(); err != nil {
		return err
	}
	p.finish(total)
	return nil
}

// MergeUp copies into upper every block of lower that upper lacks, so that
// upper reads the same with lower's parent below it as it did with lower.
// upper's view never changes, whatever moment it stops; running it again
// copies what is left.
func MergeUp(lower, upper *layer.Layer, p *Pacer) error {
	if lower.BlockSize() != upper.BlockSize() || lower.Size() != upper.Size() {
		return diskerr.New("aerolayr", diskerr.ErrUnsupported, "layers of %d/%d bytes and %d/%d-byte blocks cannot be merged",
			lower.Size(), upper.Size(), lower.BlockSize(), upper.BlockSize())
	}
	total, err := count(lower)
	if err != nil {
		return err
	}
	buf := make([]byte, lower.BlockSize())
	var done int64
	var stepErr error
	err = lower.Walk(func(b int64, s layer.State) bool {
		if stepErr = p.step(done, total); stepErr != nil {
			return false
		}
		done++
		var have layer.State
		if have, _, stepErr = upper.Lookup(b); stepErr != nil || have != layer.Absent {
			return stepErr == nil
		}
		if s == layer.Zero {
			stepErr = upper.SetZero(b, 1)
			return stepErr == nil
		}
		n := min(lower.BlockSize(), lower.Size()-b*lower.BlockSize())
		if _, stepErr = lower.ReadBlock(b, buf[:n]); stepErr == nil {
			stepErr = upper.PutBlock(b, buf[:n])
		}
		return stepErr == nil
	})
	if err = firstErr(err, stepErr); err != nil {
		return err
	}
	if err := upper.Flush(); err != nil {
		return err
	}
	p.finish(total)
	return nil
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Changes is the set of blocks that differ from a base, for a chain of
// layers (bottom first) all of the same geometry: a block any of them has,
// read as the top one sees it. It is a layer.DeltaSource.
type Changes struct {
	Layers []*layer.Layer // bottom first; the last is the view
}

// Changed yields, in block order, every block some layer has: Zero if the
// view reads it as a zero entry, else Data.
func (c Changes) Changed(yield func(b int64, s layer.State) bool) error {
	if len(c.Layers) == 0 {
		return nil
	}
	top := c.Layers[len(c.Layers)-1]
	bs := top.BlockSize()
	perTable := bs / 8
	tables := (top.Blocks() + perTable - 1) / perTable
	// Table by table: a block's state in the view is the state of the
	// topmost layer that has it.
	states := make([]layer.State, perTable)
	for t := range tables {
		clear(states)
		any := false
		for _, l := range c.Layers {
			first := t * perTable
			var err error
			for j := range perTable {
				if first+j >= l.Blocks() {
					break
				}
				var s layer.State
				if s, _, err = l.Lookup(first + j); err != nil {
					return err
				}
				if s != layer.Absent {
					states[j], any = s, true
				}
			}
		}
		if !any {
			continue
		}
		for j, s := range states {
			if s != layer.Absent && !yield(t*perTable+int64(j), s) {
				return nil
			}
		}
	}
	return nil
}

// ReadBlock reads block b as the view sees it.
func (c Changes) ReadBlock(b int64, p []byte) error {
	top := c.Layers[len(c.Layers)-1]
	_, err := top.ReadAt(p, b*top.BlockSize())
	if err == io.EOF {
		err = nil
	}
	return err
}

// RawTarget is a raw disk file as a Target: a discard writes zeros, in
// pieces of one reused buffer.
type RawTarget struct {
	W interface {
		io.WriterAt
		Flush() error
	}
	zeros []byte
}

func (r *RawTarget) WriteAt(p []byte, off int64) (int, error) { return r.W.WriteAt(p, off) }
func (r *RawTarget) Flush() error                             { return r.W.Flush() }
func (r *RawTarget) Discard(off, n int64) error {
	if r.zeros == nil {
		r.zeros = make([]byte, 1<<20)
	}
	for n > 0 {
		c := min(n, int64(len(r.zeros)))
		if _, err := r.W.WriteAt(r.zeros[:c], off); err != nil {
			return err
		}
		off, n = off+c, n-c
	}
	return nil
}
