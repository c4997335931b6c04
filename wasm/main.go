//go:build js && wasm

// Command wasm is aerodisk's Web Worker: it receives requests from
// web/disk_manager.js, runs them on the disk manager, and answers.
//
// Protocol (structured-cloned messages):
//
//	page → worker  {id, op, args}          a request
//	               {op: "abort", target}   cancel request `target`
//	               {op: "pull", target}    the page wants one more export chunk
//	               {id, op: "devRead"|"devWrite"|…, args: {dev, …}}  a block device request (device.go)
//	worker → page  {ready: true}           once, when the module has started
//	               {id, progress}          {phase, processedBytes, totalBytes, bytesPerSecond}
//	               {id, chunk}             export data (an ArrayBuffer, transferred)
//	               {id, ok: true, json}    the result, JSON-encoded
//	               {id, ok: true, bytes}   a device read's bytes (an ArrayBuffer, transferred)
//	               {id, ok: false, error}  {name, message}: name is one of the API's error names
package main

import (
	"context"
	"sync"

	"github.com/hack-pad/safejs"

	"aerodisk/internal/jsutil"
)

func main() {
	if role, _ := jsutil.Str(safejs.Global(), "aerodiskRole"); role == "helper" {
		serveHelper()
		if err := jsutil.Ready(); err != nil {
			panic(err)
		}
		select {}
	}
	w := &worker{running: map[int]*request{}}
	handler, err := safejs.FuncOf(func(this safejs.Value, args []safejs.Value) any {
		if len(args) > 0 {
			w.onMessage(args[0])
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	if err := safejs.Global().Set("aerodiskHandle", handler); err != nil {
		panic(err)
	}
	if err := jsutil.Ready(); err != nil {
		panic(err)
	}
	select {} // serve forever
}

// worker tracks running requests so they can be aborted and fed credits.
type worker struct {
	mu      sync.Mutex
	running map[int]*request
	dm      *diskManager
}

type request struct {
	id      int
	op      string
	args    safejs.Value
	ctx     context.Context
	cancel  context.CancelFunc
	credits chan struct{} // export flow control: one per chunk the page asked for
}

// onMessage runs inside a js.Func callback, so it must not block: requests
// are handed to goroutines.
func (w *worker) onMessage(msg safejs.Value) {
	op, _ := jsutil.Str(msg, "op")
	switch op {
	case "abort", "pull":
		target, _ := jsutil.Int(msg, "target")
		w.mu.Lock()
		r := w.running[int(target)]
		w.mu.Unlock()
		if r == nil {
			return
		}
		if op == "abort" {
			r.cancel()
			return
		}
		select {
		case r.credits <- struct{}{}:
		default: // the page never asks for more than the buffer holds
		}
		return
	case "devRead", "devWrite", "devDiscard", "devFlush", "devClose":
		w.onDeviceMessage(op, msg)
		return
	}
	id, _ := jsutil.Int(msg, "id")
	args, _ := msg.Get("args")
	ctx, cancel := context.WithCancel(context.Background())
	r := &request{id: int(id), op: op, args: args, ctx: ctx, cancel: cancel, credits: make(chan struct{}, 64)}
	w.mu.Lock()
	w.running[r.id] = r
	w.mu.Unlock()
	go func() {
		defer func() {
			cancel()
			w.mu.Lock()
			delete(w.running, r.id)
			w.mu.Unlock()
		}()
		result, err := w.dispatch(r)
		reply(r.id, result, err)
	}()
}
