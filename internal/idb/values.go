//go:build js && wasm

package idb

import (
	"syscall/js"

	"github.com/hack-pad/safejs"
)

// Reading records through safejs: a record another tool wrote (or a
// damaged one) may have any shape, and syscall/js panics on a wrong one
// (Get on undefined, Float on a string). go-indexeddb hands out js.Value;
// everything this package reads of one goes through these, which never
// panic. Keys built here (js.ValueOf of strings, numbers and arrays of
// them) cannot panic either.

// field returns v[name] when v is an object.
func field(v js.Value, name string) (safejs.Value, bool) {
	s := safejs.Safe(v)
	if s.Type() != safejs.TypeObject || s.IsNull() {
		return safejs.Undefined(), false
	}
	f, err := s.Get(name)
	return f, err == nil
}

// strField is v[name] when it is a string.
func strField(v js.Value, name string) (string, bool) {
	f, ok := field(v, name)
	if !ok || f.Type() != safejs.TypeString {
		return "", false
	}
	s, err := f.String()
	return s, err == nil
}

// numField is v[name] when it is a number.
func numField(v js.Value, name string) (float64, bool) {
	f, ok := field(v, name)
	if !ok || f.Type() != safejs.TypeNumber {
		return 0, false
	}
	n, err := f.Float()
	return n, err == nil
}

// isObject reports whether v is a (non-null) object.
func isObject(v js.Value) bool {
	s := safejs.Safe(v)
	return s.Type() == safejs.TypeObject && !s.IsNull()
}

// str is v when it is a string.
func str(v js.Value) (string, bool) {
	s := safejs.Safe(v)
	if s.Type() != safejs.TypeString {
		return "", false
	}
	out, err := s.String()
	return out, err == nil
}

// keyIndex is the second element of a [id, index] key, when it is one.
func keyIndex(k js.Value) (int64, bool) {
	s := safejs.Safe(k)
	if s.Type() != safejs.TypeObject || s.IsNull() {
		return 0, false
	}
	if n, err := s.Length(); err != nil || n != 2 {
		return 0, false
	}
	e, err := s.Index(1)
	if err != nil || e.Type() != safejs.TypeNumber {
		return 0, false
	}
	f, err := e.Float()
	return int64(f), err == nil
}

// newObject is a new empty JS object with the given fields.
func newObject(fields map[string]any) (js.Value, error) {
	ctor, err := safejs.Global().Get("Object")
	if err != nil {
		return js.Value{}, err
	}
	o, err := ctor.New()
	if err != nil {
		return js.Value{}, err
	}
	for k, v := range fields {
		if err := o.Set(k, v); err != nil {
			return js.Value{}, err
		}
	}
	return safejs.Unsafe(o), nil
}

// nowMs is Date.now().
func nowMs() float64 {
	d, err := safejs.Global().Get("Date")
	if err != nil {
		return 0
	}
	v, err := d.Call("now")
	if err != nil {
		return 0
	}
	f, _ := v.Float()
	return f
}
