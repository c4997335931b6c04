package jsapi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"aerodisk/internal/blockdev"
	"aerodisk/internal/catalog"
	"aerodisk/internal/dirstore"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/manager"
	"aerodisk/internal/testutil"
)

func TestErrorNames(t *testing.T) {
	for err, want := range map[error]string{
		context.Canceled:    NameAbort,
		manager.ErrQuota:    NameQuota,
		manager.ErrInUse:    NameInUse,
		catalog.ErrInvalid:  NameInvalid,
		os.ErrNotExist:      NameNotFound,
		catalog.ErrNewer:    NameUnsupported,
		diskerr.ErrCorrupt:  NameCorrupt,
		diskerr.ErrReadOnly: NameReadOnly,
		diskerr.ErrBadSize:  NameInvalid, // a block range that breaks the sector rule
		errors.New("boom"):  NameInternal,
	} {
		if got := ErrorName(fmt.Errorf("wrapped: %w", err)); got != want {
			t.Errorf("%v: %s, want %s", err, got, want)
		}
	}
	if ErrorName(nil) != "" {
		t.Error("a nil error has a name")
	}
}

// TestErrorMessagesForPeople: each sentence is built from the error's facts,
// once — no category sentence before it, one period at the end.
func TestErrorMessagesForPeople(t *testing.T) {
	dir := t.TempDir()
	st, err := dirstore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(st)
	if err != nil {
		t.Fatal(err)
	}
	cut := testutil.WriteFile(t, dir, "cut.dc42", testutil.DC42("x", make([]byte, 409600), nil)[:5000])
	in, err := dirstore.OpenInput(cut)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	_, importErr := m.Import(context.Background(), in, manager.ImportOptions{})
	_, sizeErr := m.CreateBlank(context.Background(), manager.BlankOptions{Name: "x", SizeBytes: 1000})
	_, getErr := m.Get("nope")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{importErr, "This dc42 image is damaged or incomplete: file is 5000 bytes, header says 409684 (84 + 409600 data + 0 tags)."},
		{sizeErr, "A disk size must be a positive multiple of 512 bytes up to 2,199,023,255,552 bytes (2.2 TB), not 1000."},
		{getErr, "That disk does not exist (it may have been deleted in another tab)."},
		{&manager.SpaceError{Need: 3 << 30, Free: 1 << 30}, "This disk needs 3.22 GB but only 1.07 GB is free."},
		{diskerr.New("", manager.ErrQuota, "%s: wrote 5 of 9 bytes", "x.img"), msgQuota},
		{&catalog.RemoteError{Name: "Win98"}, "“Win98” is a remote disk: its bytes live on a server, and remote disks are not supported here yet. It stays listed and untouched."},
		{fmt.Errorf("metadata.json: %w", catalog.ErrNewer), msgNewer},
		{context.Canceled, msgAbort},
		{diskerr.New("", catalog.ErrInvalid, "a disk name needs 1 to 255 characters"), "A disk name needs 1 to 255 characters."},
		{diskerr.New("vmdk", diskerr.ErrUnsupported, "VMDK images are not supported yet"), "This vmdk image cannot be read here: VMDK images are not supported yet."},
		// Block devices.
		{diskerr.New("", diskerr.ErrReadOnly, "the disk is open read-only"), msgReadOnly},
		{&manager.NotWritableError{Name: "Disc", Kind: "cd", Format: "iso"}, "“Disc” is a CD, and a CD is never writable; open it read-only."},
		{&manager.NotWritableError{Name: "Win98", Kind: "hdd", Format: "qcow2"}, "“Win98” is stored as qcow2, which mode \"direct\" can only read; open it with mode \"overlay\" to write to it."},
		{&manager.DeviceOpenError{Name: "Win98", Writable: true}, "“Win98” is open for writing as a block device in this page; close that device first."},
		{&manager.DeviceOpenError{Name: "Win98"}, "“Win98” is open as a block device in this page; close that device first."},
		{blockdev.CheckRange(513, 512, 1<<20), "Offset 513 and length 512 must be multiples of 512 bytes."},
		{fmt.Errorf("opening: %w", manager.ErrDeviceClosed), "The device is closed."},
	} {
		if got := ErrorMessage(tc.err); got != tc.want {
			t.Errorf("%v:\n got %q\nwant %q", tc.err, got, tc.want)
		}
	}
}

// A sentence that starts with a quotation mark keeps it whole: the first
// character is a rune, not a byte.
func TestSentenceKeepsLeadingRune(t *testing.T) {
	if got := sentence("“lots” is not a size"); got != "“lots” is not a size." {
		t.Fatalf("sentence = %q", got)
	}
	if got := sentence("élan"); got != "Élan." {
		t.Fatalf("sentence = %q", got)
	}
}

func TestLayerSentences(t *testing.T) {
	for _, c := range []struct {
		err  error
		name string
		want string
	}{
		{&manager.BaseError{Name: "base", Refused: "it cannot be deleted", Overlays: []string{"work"}}, "InUseError",
			"“base” is the base of the overlay “work”, so it cannot be deleted: a base stays as it is while overlays read it."},
		{&manager.BaseError{Name: "b", Refused: "it cannot be written", Overlays: []string{"x", "y", "z"}}, "InUseError",
			"“b” is the base of the overlays “x”, “y” and “z”, so it cannot be written: a base stays as it is while overlays read it."},
		{&manager.MergePendingError{Name: "d"}, "InUseError",
			"A merge of “d” is still running (or will resume when the page is reloaded); try again when it has finished."},
	} {
		if got := ErrorName(c.err); got != c.name {
			t.Errorf("%v: name %s, want %s", c.err, got, c.name)
		}
		if got := ErrorMessage(c.err); got != c.want {
			t.Errorf("%v:\n got %s\nwant %s", c.err, got, c.want)
		}
	}
}
