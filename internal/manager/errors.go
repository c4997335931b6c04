package manager

import (
	"context"
	"errors"
	"io/fs"

	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
)

// Error names the JS API rejects with (Error.name).
const (
	NameAbort        = "AbortError"
	NameQuota        = "QuotaExceededError"
	NameNotFound     = "NotFoundError"
	NameInUse        = "InUseError"
	NameUnsupported  = "UnsupportedFormatError"
	NameCorrupt      = "CorruptImageError"
	NameInvalid      = "InvalidArgumentError"
	NameInternal     = "Error"
	defaultMsgAbort  = "The operation was cancelled."
	defaultMsgQuota  = "There is not enough storage space for this disk."
	defaultMsgInUse  = "This disk is open in another tab; close it there first."
	defaultMsgNoDisk = "That disk does not exist (it may have been deleted in another tab)."
)

// ErrorName maps an error to the name the JS API uses, so a page can react
// to the category without parsing messages.
func ErrorName(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return NameAbort
	case errors.Is(err, ErrQuota):
		return NameQuota
	case errors.Is(err, ErrInUse):
		return NameInUse
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, diskerr.ErrBackingNotFound), errors.Is(err, fs.ErrNotExist):
		return NameNotFound
	case errors.Is(err, catalog.ErrInvalid), errors.Is(err, diskerr.ErrBadSize):
		return NameInvalid
	case errors.Is(err, diskerr.ErrCorrupt):
		return NameCorrupt
	case errors.Is(err, diskerr.ErrUnsupported), errors.Is(err, diskerr.ErrUnknownFormat), errors.Is(err, ErrUnsupportedBackend):
		return NameUnsupported
	}
	return NameInternal
}

// ErrorMessage is the sentence shown to a person for err.
func ErrorMessage(err error) string {
	switch ErrorName(err) {
	case NameAbort:
		return defaultMsgAbort
	case NameQuota:
		if errors.Is(err, ErrQuota) && err.Error() != ErrQuota.Error() {
			return err.Error()
		}
		return defaultMsgQuota
	case NameInUse:
		return defaultMsgInUse
	case NameNotFound:
		if errors.Is(err, catalog.ErrNotFound) {
			return defaultMsgNoDisk
		}
	}
	return err.Error()
}
