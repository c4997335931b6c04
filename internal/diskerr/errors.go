// Package diskerr holds the sentinel errors shared by every image reader and
// writer, so callers (the CLI, the browser worker) can map any failure to one
// user-facing category with errors.Is.
package diskerr

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt: the image's structures contradict each other or the file.
	ErrCorrupt = errors.New("corrupt image")
	// ErrTruncated: a structure or data lies past the end of the file.
	// It is a kind of ErrCorrupt.
	ErrTruncated = fmt.Errorf("%w: truncated", ErrCorrupt)
	// ErrChecksum: a stored checksum does not match. A kind of ErrCorrupt.
	ErrChecksum = fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	// ErrBackingCycle: a backing chain refers back to itself. A kind of ErrCorrupt.
	ErrBackingCycle = fmt.Errorf("%w: backing chain loops", ErrCorrupt)
	// ErrUnsupported: a valid image uses a feature this reader does not implement.
	ErrUnsupported = errors.New("unsupported image feature")
	// ErrUnknownFormat: the content matches no known format.
	ErrUnknownFormat = errors.New("unknown image format")
	// ErrBadSize: a size is not acceptable (not a multiple of 512, zero, too large).
	ErrBadSize = errors.New("invalid disk size")
	// ErrBackingNotFound: a backing file named by the image cannot be found.
	ErrBackingNotFound = errors.New("backing file not found")
	// ErrReadOnly: a write was attempted on an image opened read-only.
	ErrReadOnly = errors.New("image is read-only")
)

// Error carries the format and a human explanation around a sentinel.
// errors.Is(err, ErrCorrupt) etc. work through Unwrap.
type Error struct {
	Format string // "qcow2", "vhd", ... ; may be empty
	Msg    string // what exactly is wrong, for a person
	Err    error  // one of the sentinels above
}

func (e *Error) Error() string {
	if e.Format == "" {
		return fmt.Sprintf("%v: %s", e.Err, e.Msg)
	}
	return fmt.Sprintf("%s: %v: %s", e.Format, e.Err, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// New builds an *Error; msg is formatted with args.
func New(format string, sentinel error, msg string, args ...any) error {
	return &Error{Format: format, Msg: fmt.Sprintf(msg, args...), Err: sentinel}
}
