//go:build js && wasm && testhooks

package main

// The test build's hooks (go build -tags testhooks; internal/browsertest
// builds the worker this way, `make wasm` never does): operations and open
// options that exist only for the tests, with their JavaScript side in
// web/test/worker_hooks.js, which this build loads into the worker.

import (
	"github.com/hack-pad/safejs"

	"aerodisk/internal/jsutil"
)

func init() {
	if _, err := safejs.Global().Call("importScripts", "./test/worker_hooks.js"); err != nil {
		panic(err) // the test build cannot run without its hooks
	}
	// The helper worker dies as a crash would kill it.
	testOps["debugCrashHelper"] = func(*request) (any, error) {
		_, err := jsutil.TestHook("crashHelper")
		return nil, err
	}
	testOps["debugStats"] = func(*request) (any, error) {
		v, _ := jsutil.TestHook("memoryBytes")
		n, _ := v.Float()
		counts, _ := jsutil.TestHook("streamCounts")
		byob, _ := jsutil.Int(counts, "byob")
		plain, _ := jsutil.Int(counts, "plain")
		// wasm memory only grows, so its size now is its peak.
		return map[string]any{"wasmMemoryBytes": int64(n), "peakWasmMemoryBytes": int64(n),
			"byobStreams": byob, "plainStreams": plain}, nil
	}
	// Test-only DiskManager.open options, each carried out by a JS hook:
	// behave as browsers without sync access handles or byte streams, or
	// run a full GC every 2 ms (chromium with --js-flags=--expose-gc).
	beforeOpen = func(args safejs.Value) error {
		for _, o := range []struct{ arg, hook string }{
			{"_simulateNoSyncAccessHandles", "hideSyncAccessHandles"},
			{"_simulateNoByteStreams", "hideByteStreams"},
			{"_debugCollectGarbageOften", "collectGarbageOften"},
		} {
			if on, _ := jsutil.Bool(args, o.arg); on {
				if _, err := jsutil.TestHook(o.hook); err != nil {
					return err
				}
			}
		}
		return nil
	}
}
