package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/sizefmt"
)

// ErrorKind is what an error means to a caller that must react to it: the
// JS API turns each kind into an Error.name (wasm/jsapi), the CLI into an
// exit status. The facts for a person stay in the error itself
// (diskerr.Error's Format and Msg, SpaceError, catalog.RemoteError, ...).
type ErrorKind int

// The kinds of error.
const (
	KindInternal    ErrorKind = iota // a fault of ours or of the browser
	KindAbort                        // the caller cancelled
	KindQuota                        // not enough storage space
	KindNotFound                     // no such disk, file or backing file
	KindInUse                        // open in another tab
	KindUnsupported                  // a valid image or disk this program cannot handle (yet)
	KindCorrupt                      // a damaged image or catalog
	KindInvalid                      // an argument breaks a rule
	KindReadOnly                     // a write to a disk or device that is read-only
)

// KindOf classifies err (KindInternal for nil or anything unknown).
func KindOf(err error) ErrorKind {
	switch {
	case err == nil:
		return KindInternal
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return KindAbort
	case errors.Is(err, ErrQuota):
		return KindQuota
	case errors.Is(err, ErrInUse):
		return KindInUse
	case errors.Is(err, diskerr.ErrReadOnly):
		return KindReadOnly
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, diskerr.ErrBackingNotFound), errors.Is(err, fs.ErrNotExist):
		return KindNotFound
	case errors.Is(err, catalog.ErrInvalid), errors.Is(err, diskerr.ErrBadSize):
		return KindInvalid
	case errors.Is(err, diskerr.ErrCorrupt):
		return KindCorrupt
	case errors.Is(err, diskerr.ErrUnsupported), errors.Is(err, diskerr.ErrUnknownFormat), errors.Is(err, ErrUnsupportedBackend):
		return KindUnsupported
	}
	return KindInternal
}

// SpaceError is the space check's refusal: Need bytes are needed and Free
// are free. It is an ErrQuota.
type SpaceError struct{ Need, Free int64 }

func (e *SpaceError) Error() string {
	return fmt.Sprintf("%v: this disk needs %s but only %s is free", ErrQuota, sizefmt.Human(e.Need), sizefmt.Human(e.Free))
}

func (e *SpaceError) Unwrap() error { return ErrQuota }

func (k ErrorKind) String() string {
	switch k {
	case KindAbort:
		return "abort"
	case KindQuota:
		return "quota"
	case KindNotFound:
		return "not found"
	case KindInUse:
		return "in use"
	case KindUnsupported:
		return "unsupported"
	case KindCorrupt:
		return "corrupt"
	case KindInvalid:
		return "invalid"
	case KindReadOnly:
		return "read-only"
	}
	return "internal"
}
