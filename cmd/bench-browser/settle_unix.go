//go:build unix

package main

import "syscall"

// settle writes the host's dirty pages out (sync(2)), so a timed run does
// not pay for the writeback of the one before it.
func settle() { syscall.Sync() }
