//go:build js && wasm

// Package jsutil is the small layer between Go and the worker's JavaScript:
// awaiting promises, calling the worker's I/O helpers (self.aerodiskIO in
// web/disk_worker.js), and turning DOMExceptions into Go errors that keep
// their name. Every call goes through safejs, so a JS failure is an error,
// never a panic.
package jsutil

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hack-pad/safejs"
)

// DOMError is a JavaScript exception, with its name (QuotaExceededError,
// NotFoundError, NoModificationAllowedError, ...).
type DOMError struct {
	Name, Message string
}

func (e *DOMError) Error() string { return e.Name + ": " + e.Message }

// IsDOM reports whether err is a DOMError with one of the names.
func IsDOM(err error, names ...string) bool {
	var d *DOMError
	if !errors.As(err, &d) {
		return false
	}
	for _, n := range names {
		if d.Name == n {
			return true
		}
	}
	return false
}

var helpers safejs.Value // self.aerodiskIO once found (the zero Value is undefined)

// IO returns self.aerodiskIO, the worker's helper object.
func IO() (safejs.Value, error) {
	if helpers.IsUndefined() {
		v, err := safejs.Global().Get("aerodiskIO")
		if err != nil {
			return v, err
		}
		if v.IsUndefined() {
			return v, errors.New("self.aerodiskIO is missing: the worker script did not set it up")
		}
		helpers = v
	}
	return helpers, nil
}

// call calls aerodiskIO[fn] (io.go declares every helper Go uses). Helpers return {e: {name, message}} instead of
// throwing, so exceptions arrive here with their names.
func call(fn string, args ...any) (safejs.Value, error) {
	h, err := IO()
	if err != nil {
		return safejs.Undefined(), err
	}
	v, err := h.Call(fn, args...)
	if err != nil {
		return v, fmt.Errorf("aerodiskIO.%s: %w", fn, err)
	}
	return unwrap(v)
}

// unwrap turns a helper's {e: ...} result into a *DOMError.
func unwrap(v safejs.Value) (safejs.Value, error) {
	if v.Type() != safejs.TypeObject || v.IsNull() {
		return v, nil
	}
	e, err := v.Get("e")
	if err != nil || e.IsUndefined() {
		return v, nil
	}
	name, _ := Str(e, "name")
	msg, _ := Str(e, "message")
	return safejs.Undefined(), &DOMError{Name: name, Message: msg}
}

// Await waits for a promise. The helpers settle their promises as
// {v: value} or {e: {name, message}} (aerodiskIO.settle), so rejections
// keep their names. It must not be called from inside a js.Func callback.
func Await(p safejs.Value) (safejs.Value, error) {
	settled, err := call("settle", p)
	if err != nil {
		return settled, err
	}
	type result struct {
		v   safejs.Value
		err error
	}
	ch := make(chan result, 1)
	then, err := safejs.FuncOf(func(this safejs.Value, args []safejs.Value) any {
		var r safejs.Value
		if len(args) > 0 {
			r = args[0]
		}
		if _, derr := unwrap(r); derr != nil {
			ch <- result{err: derr}
			return nil
		}
		v, _ := r.Get("v")
		ch <- result{v: v}
		return nil
	})
	if err != nil {
		return safejs.Undefined(), err
	}
	defer then.Release()
	if _, err := settled.Call("then", then); err != nil {
		return safejs.Undefined(), err
	}
	r := <-ch
	return r.v, r.err
}

// callAwait calls an async helper and awaits its promise.
func callAwait(fn string, args ...any) (safejs.Value, error) {
	h, err := IO()
	if err != nil {
		return safejs.Undefined(), err
	}
	p, err := h.Call(fn, args...)
	if err != nil {
		return p, fmt.Errorf("aerodiskIO.%s: %w", fn, err)
	}
	return Await(p)
}

// yieldEvery bounds how long synchronous work keeps the worker's event loop
// from delivering messages (an abort, another tab's request).
const yieldEvery = 50 * time.Millisecond

var lastYield atomic.Int64 // UnixNano of the last yield

// MaybeYield lets the event loop run if yieldEvery has passed since it last
// did. Synchronous I/O paths call it; it costs one macrotask per 50 ms.
// It must not be called from inside a js.Func callback.
func MaybeYield() {
	now := time.Now().UnixNano()
	if now-lastYield.Load() < int64(yieldEvery) {
		return
	}
	lastYield.Store(now)
	callAwait("yield")
}

// Addr is the address of b's first byte in wasm linear memory, which is what
// the helpers view with new Uint8Array(memory.buffer, addr, len). The view is
// made inside each JS call because memory growth detaches old buffers. Go's
// heap does not move, so the address stays valid while b is alive: callers
// keep b alive across the call (it is an argument they still use).
func Addr(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return int(uintptr(unsafe.Pointer(&b[0])))
}

// ErrType: a property has the wrong JavaScript type.
var ErrType = errors.New("wrong type")

// Str reads a string property ("" when absent or null). Any other type is
// ErrType: safejs would render a number as "<number: 42>".
func Str(v safejs.Value, prop string) (string, error) {
	p, err := v.Get(prop)
	if err != nil || p.IsUndefined() || p.IsNull() {
		return "", err
	}
	if p.Type() != safejs.TypeString {
		return "", fmt.Errorf("%w: %s must be a string, not a %s", ErrType, prop, p.Type())
	}
	return p.String()
}

// Has reports whether v has the property prop with a value other than
// undefined (a key the caller set, even to null).
func Has(v safejs.Value, prop string) bool {
	p, err := v.Get(prop)
	return err == nil && !p.IsUndefined()
}

// Int reads an integer property (0 when absent).
func Int(v safejs.Value, prop string) (int64, error) {
	p, err := v.Get(prop)
	if err != nil || p.IsUndefined() || p.IsNull() {
		return 0, err
	}
	f, err := p.Float()
	return int64(f), err
}

// Bool reads a boolean property (false when absent).
func Bool(v safejs.Value, prop string) (bool, error) {
	p, err := v.Get(prop)
	if err != nil || p.IsUndefined() || p.IsNull() {
		return false, err
	}
	return p.Bool()
}

// Lock takes the Web Lock name (navigator.locks, shared by every tab of the
// origin), waiting for it: exclusive, or shared with other shared holders.
// The returned function releases it; calling it again does nothing.
func Lock(name string, exclusive bool) (func(), error) {
	release, err := callAwait("lock", name, exclusive)
	if err != nil {
		return nil, fmt.Errorf("taking the Web Lock %s: %w", name, err)
	}
	return releaser(release), nil
}

// TryLock takes the Web Lock name without waiting. It returns a nil release
// function when another holder has it (shared locks coexist; exclusive ones
// do not).
func TryLock(name string, exclusive bool) (func(), error) {
	release, err := callAwait("tryLock", name, exclusive)
	if err != nil {
		return nil, fmt.Errorf("trying the Web Lock %s: %w", name, err)
	}
	if release.IsNull() || release.IsUndefined() {
		return nil, nil
	}
	return releaser(release), nil
}

// releaser wraps a JS release function; the lock is free again (for this
// worker too) when it returns.
func releaser(release safejs.Value) func() {
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		if p, err := release.Invoke(); err == nil && p.Type() == safejs.TypeObject {
			Await(p)
		}
	}
}

// HeldLocks returns the names of the Web Locks held now in the origin
// (navigator.locks.query()), by any tab.
func HeldLocks() (map[string]bool, error) {
	v, err := callAwait("heldLocks")
	if err != nil {
		return nil, err
	}
	names, err := Strings(v)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

// Strings reads a JS array of strings.
func Strings(v safejs.Value) ([]string, error) {
	n, err := v.Length()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		e, err := v.Index(i)
		if err != nil {
			return nil, err
		}
		s, err := e.String()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Estimate is navigator.storage.estimate(): usage and quota in bytes.
func Estimate() (usage, quota int64, err error) {
	v, err := callAwait("estimate")
	if err != nil {
		return 0, 0, err
	}
	usage, _ = Int(v, "usage")
	quota, _ = Int(v, "quota")
	return usage, quota, nil
}
