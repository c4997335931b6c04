// Package jsapi is the JavaScript API's vocabulary, and only that: the
// Error.name each kind of error rejects with and the sentence a person
// reads. The core (internal/manager and below) returns typed errors and
// facts; this package turns them into names and sentences, once. It is
// platform-neutral so that it is tested natively; the worker (wasm/) uses
// it to answer the page.
package jsapi

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"aerodisk/internal/catalog"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/manager"
	"aerodisk/internal/sizefmt"
)

// Error names the JS API rejects with (Error.name; web/disk_manager.d.ts).
const (
	NameAbort       = "AbortError"
	NameQuota       = "QuotaExceededError"
	NameNotFound    = "NotFoundError"
	NameInUse       = "InUseError"
	NameUnsupported = "UnsupportedFormatError"
	NameCorrupt     = "CorruptImageError"
	NameInvalid     = "InvalidArgumentError"
	NameReadOnly    = "ReadOnlyError"
	NameInternal    = "Error"
)

var names = map[manager.ErrorKind]string{
	manager.KindInternal: NameInternal, manager.KindAbort: NameAbort, manager.KindQuota: NameQuota,
	manager.KindNotFound: NameNotFound, manager.KindInUse: NameInUse, manager.KindUnsupported: NameUnsupported,
	manager.KindCorrupt: NameCorrupt, manager.KindInvalid: NameInvalid, manager.KindReadOnly: NameReadOnly,
}

// ErrorName is the Error.name the JS API rejects err with, so a page can
// react to its kind without reading the message.
func ErrorName(err error) string {
	if err == nil {
		return ""
	}
	return names[manager.KindOf(err)]
}

// Sentences for errors that carry no facts of their own.
const (
	msgAbort    = "The operation was cancelled."
	msgQuota    = "There is not enough storage space for this disk. Delete disks you no longer need, or free space on this device, and try again."
	msgInUse    = "This disk is open in another tab; close it there first."
	msgNoDisk   = "That disk does not exist (it may have been deleted in another tab)."
	msgNewer    = "The disk catalog was written by a newer version of this program, so it was left as it is. Use that version to manage these disks."
	msgReadOnly = "This disk is open read-only, so writes and discards are refused."
)

// ErrorMessage is the sentence shown to a person for err, built from the
// error's facts: one sentence, saying what is wrong, without the kind's
// words a program needs (the page shows it as it is).
func ErrorMessage(err error) string {
	var (
		de      *diskerr.Error
		space   *manager.SpaceError
		remote  *catalog.RemoteError
		notW    *manager.NotWritableError
		devOpen *manager.DeviceOpenError
		base    *manager.BaseError
		merging *manager.MergePendingError
	)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, catalog.ErrNewer):
		return msgNewer
	case errors.As(err, &remote):
		return fmt.Sprintf("“%s” is a remote disk: its bytes live on a server, and remote disks are not supported here yet. It stays listed and untouched.", remote.Name)
	case errors.As(err, &space):
		return fmt.Sprintf("This disk needs %s but only %s is free.", sizefmt.Human(space.Need), sizefmt.Human(space.Free))
	case errors.As(err, &notW):
		if notW.Kind == catalog.KindCD {
			return fmt.Sprintf("“%s” is a CD, and a CD is never writable; open it read-only.", notW.Name)
		}
		return fmt.Sprintf("“%s” is stored as %s, which mode \"direct\" can only read; open it with mode \"overlay\" to write to it.", notW.Name, notW.Format)
	case errors.As(err, &base):
		return fmt.Sprintf("“%s” is the base of %s, so %s: a base stays as it is while overlays read it.", base.Name, quotedList(base.Overlays, "overlay"), base.Refused)
	case errors.As(err, &merging):
		return fmt.Sprintf("A merge of “%s” is still running (or will resume when the page is reloaded); try again when it has finished.", merging.Name)
	case errors.As(err, &devOpen):
		if devOpen.Writable {
			return fmt.Sprintf("“%s” is open for writing as a block device in this page; close that device first.", devOpen.Name)
		}
		return fmt.Sprintf("“%s” is open as a block device in this page; close that device first.", devOpen.Name)
	}
	hasDetail := errors.As(err, &de)
	switch manager.KindOf(err) {
	case manager.KindAbort:
		return msgAbort
	case manager.KindInUse:
		return msgInUse
	case manager.KindReadOnly:
		return msgReadOnly
	case manager.KindQuota:
		// A browser's refusal mid-write carries only technical words.
		return msgQuota
	case manager.KindNotFound:
		if errors.Is(err, catalog.ErrNotFound) {
			return msgNoDisk
		}
	case manager.KindCorrupt:
		if hasDetail && de.Format != "" {
			return fmt.Sprintf("This %s image is damaged or incomplete: %s.", de.Format, de.Msg)
		}
	case manager.KindUnsupported:
		if hasDetail && de.Format != "" {
			return fmt.Sprintf("This %s image cannot be read here: %s.", de.Format, de.Msg)
		}
	}
	if hasDetail && de.Msg != "" {
		return sentence(de.Msg)
	}
	return sentence(err.Error())
}

// sentence capitalises s and ends it with one period.
func sentence(s string) string {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:] + "."
}

// quotedList names things for a sentence: the overlay “a”, the overlays
// “a” and “b”, the overlays “a”, “b” and “c”.
func quotedList(names []string, noun string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "“" + n + "”"
	}
	switch len(q) {
	case 0:
		return "overlays"
	case 1:
		return "the " + noun + " " + q[0]
	}
	return "the " + noun + "s " + strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
