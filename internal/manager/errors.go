package manager

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

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
	defaultMsgQuota  = "There is not enough storage space for this disk. Delete disks you no longer need, or free space on this device, and try again."
	defaultMsgInUse  = "This disk is open in another tab; close it there first."
	defaultMsgNoDisk = "That disk does not exist (it may have been deleted in another tab)."
	defaultMsgNewer  = "The disk catalog was written by a newer version of this program, so it was left as it is. Use that version to manage these disks."
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

// ErrorMessage is the sentence shown to a person for err: the specific
// explanation without the category words a program needs.
func ErrorMessage(err error) string {
	var de *diskerr.Error
	hasDetail := errors.As(err, &de)
	if errors.Is(err, catalog.ErrNewer) {
		return defaultMsgNewer
	}
	var remote *catalog.RemoteError
	if errors.As(err, &remote) {
		return fmt.Sprintf("“%s” is a remote disk: its bytes live on a server, and remote disks are not supported here yet. It stays listed and untouched.", remote.Name)
	}
	switch ErrorName(err) {
	case NameAbort:
		return defaultMsgAbort
	case NameInUse:
		return defaultMsgInUse
	case NameCorrupt:
		if hasDetail {
			return fmt.Sprintf("This %s image is damaged or incomplete: %s.", formatName(de.Format), de.Msg)
		}
	case NameUnsupported:
		if hasDetail {
			return fmt.Sprintf("This %s image cannot be read here: %s.", formatName(de.Format), de.Msg)
		}
	case NameNotFound:
		if errors.Is(err, catalog.ErrNotFound) {
			return defaultMsgNoDisk
		}
	case NameQuota:
		// Our own space check says how much is needed; a browser's refusal
		// mid-write carries only technical words.
		if rest, ok := strings.CutPrefix(err.Error(), ErrQuota.Error()+": "); ok && strings.HasPrefix(rest, "this disk needs") {
			return capitalize(rest) + "."
		}
		return defaultMsgQuota
	}
	if hasDetail && de.Msg != "" && !errors.Is(err, ErrQuota) {
		return capitalize(de.Msg) + "."
	}
	msg := err.Error()
	for _, s := range []error{catalog.ErrInvalid, catalog.ErrNotFound, ErrQuota, ErrUnsupportedBackend} {
		if errors.Is(err, s) {
			if rest, ok := strings.CutPrefix(msg, s.Error()+": "); ok {
				return capitalize(rest) + "."
			}
		}
	}
	if ErrorName(err) == NameQuota {
		return defaultMsgQuota
	}
	return capitalize(msg)
}

func formatName(f string) string {
	if f == "" {
		return "disk"
	}
	return f
}

func capitalize(s string) string {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
