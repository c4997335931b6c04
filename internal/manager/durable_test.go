package manager_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"aerodisk/internal/catalog"
	"aerodisk/internal/checksum"
	"aerodisk/internal/dirstore"
	"aerodisk/internal/manager"
	"aerodisk/internal/testutil"
)

// library is a store holding three disks of different formats, made through
// the manager, and what each must read back as.
type library struct {
	dir   string
	disks []*catalog.Disk
	want  map[string][]byte // id → logical content
	files map[string]string // file name → CRC32 of its bytes
}

// newLibrary makes a converted disk (AEROSPAR), a raw disk kept as is and a
// blank disk, in that order (so metadata.json.prev lists the first two).
func newLibrary(t *testing.T) *library {
	t.Helper()
	src := t.TempDir()
	dir := t.TempDir()
	m, _ := newManager(t, dir)
	ctx := context.Background()
	l := &library{dir: dir, want: map[string][]byte{}}
	a := testutil.BaseDisk(t, src, "alpha.img", 3<<20, 11)
	b := testutil.WriteFile(t, src, "beta.img", testutil.MixedData(2<<20, 12))
	for _, step := range []func() (*catalog.Disk, error){
		func() (*catalog.Disk, error) { return m.Import(ctx, input(t, a), manager.ImportOptions{Convert: true}) },
		func() (*catalog.Disk, error) { return m.Import(ctx, input(t, b), manager.ImportOptions{}) },
		func() (*catalog.Disk, error) {
			return m.CreateBlank(ctx, manager.BlankOptions{Name: "gamma", SizeBytes: 1 << 20})
		},
	} {
		d, err := step()
		if err != nil {
			t.Fatal(err)
		}
		l.disks = append(l.disks, d)
	}
	l.want[l.disks[0].ID], _ = os.ReadFile(a)
	l.want[l.disks[1].ID], _ = os.ReadFile(b)
	l.want[l.disks[2].ID] = make([]byte, 1<<20)
	l.files = fileSums(t, dir)
	return l
}

// fileSums is the CRC32 of every disk file in dir (not the catalog's).
func fileSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "metadata.json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = crcHex(b)
	}
	return out
}

// checkFilesKept fails if a disk file of l went missing or changed.
func (l *library) checkFilesKept(t *testing.T, dir string) {
	t.Helper()
	now := fileSums(t, dir)
	for name, sum := range l.files {
		if now[name] != sum {
			t.Errorf("disk file %s: CRC %q, was %s (deleted or changed)", name, now[name], sum)
		}
	}
}

// checkReadsBack fails unless every disk of ids is listed and exports its
// content.
func (l *library) checkReadsBack(t *testing.T, m *manager.Manager, ids ...string) {
	t.Helper()
	listed := map[string]bool{}
	for _, d := range must(m.List()) {
		listed[d.ID] = true
	}
	for _, id := range ids {
		if !listed[id] {
			t.Errorf("disk %s is not listed", id)
			continue
		}
		if got := exportBytes(t, m, id, false); !bytes.Equal(got, l.want[id]) {
			t.Errorf("disk %s exports %d bytes (CRC %s), want CRC %s", id, len(got), crcHex(got), crcHex(l.want[id]))
		}
	}
}

func (l *library) ids() []string {
	var ids []string
	for _, d := range l.disks {
		ids = append(ids, d.ID)
	}
	return ids
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		testutil.WriteFile(t, to, e.Name(), b)
	}
	return to
}

// TestTamperedCatalog damages metadata.json every way the issue lists and
// opens the manager: nothing is ever deleted, and every disk is listed
// again (recovered from the previous generation, the next one, or its
// file) — or, for a catalog a newer program wrote, the open is refused
// with a named error and the file is left as it was.
func TestTamperedCatalog(t *testing.T) {
	lib := newLibrary(t)
	meta := func(dir string) []byte { b, _ := os.ReadFile(filepath.Join(dir, "metadata.json")); return b }
	good := string(meta(lib.dir))
	a, b, c := lib.disks[0], lib.disks[1], lib.disks[2]
	write := func(s string) func(string) {
		return func(dir string) { testutil.WriteFile(t, dir, "metadata.json", []byte(s)) }
	}
	noPrev := func(f func(string)) func(string) {
		return func(dir string) { f(dir); os.Remove(filepath.Join(dir, "metadata.json.prev")) }
	}
	remove := func(dir string) { os.Remove(filepath.Join(dir, "metadata.json")) }
	cases := []struct {
		name    string
		tamper  func(dir string)
		errName manager.ErrorKind // the open fails with this kind (0: it succeeds)
		from    string            // the recovery's source generation ("" none, "-" no recovery)
		rebuilt []string          // disks rebuilt from their files
	}{
		{"zero bytes", write(""), 0, "metadata.json.prev", []string{c.ID}},
		{"whitespace", write(" \n\t "), 0, "metadata.json.prev", []string{c.ID}},
		{"empty object", write("{}"), 0, "metadata.json.prev", []string{c.ID}},
		{"null", write("null"), 0, "metadata.json.prev", []string{c.ID}},
		{"disks null", write(`{"version":2,"disks":null}`), 0, "metadata.json.prev", []string{c.ID}},
		{"truncated JSON", write(good[:len(good)/2]), 0, "metadata.json.prev", []string{c.ID}},
		{"not JSON", write("\x00\x01garbage"), 0, "metadata.json.prev", []string{c.ID}},
		{"missing", remove, 0, "metadata.json.prev", []string{c.ID}},
		{"zero bytes, no previous", noPrev(write("")), 0, "", []string{a.ID, b.ID, c.ID}},
		{"missing, no previous", noPrev(remove), 0, "", []string{a.ID, b.ID, c.ID}},
		{"missing with an empty tmp, no previous", noPrev(func(dir string) {
			remove(dir)
			testutil.WriteFile(t, dir, "metadata.json.tmp", nil)
		}), 0, "", []string{a.ID, b.ID, c.ID}},
		{"missing with a stale tmp", func(dir string) {
			// A tmp from long ago names only the first disk: the others
			// come back from their files, not deleted for its silence.
			stale, _ := catalog.Parse([]byte(good))
			for id := range stale.Disks {
				if id != a.ID {
					delete(stale.Disks, id)
				}
			}
			data, _ := stale.Marshal()
			remove(dir)
			os.Remove(filepath.Join(dir, "metadata.json.prev"))
			testutil.WriteFile(t, dir, "metadata.json.tmp", data)
		}, 0, "metadata.json.tmp", []string{b.ID, c.ID}},
		{"newer version", write(strings.Replace(good, `"version":2`, `"version":3`, 1)), manager.KindUnsupported, "-", nil},
		{"wrong types in a record", write(strings.Replace(good, fmt.Sprintf(`"name":%q`, b.Name), `"name":42,"sizeBytes":"big"`, 1)), 0, "-", nil},
		{"a mount of the wrong type", write(strings.Replace(good, `{`, `{"mounts":{"hddId":7,"cdId":["x"]},`, 1)), 0, "-", nil},
		{"a record that is not an object", write(strings.Replace(good, `"disks":{`, `"disks":{"junk":5,`, 1)), 0, "-", nil},
		{"an entry whose file is missing", write(strings.Replace(good, `"disks":{`, `"disks":{"ghost":{"id":"ghost","name":"ghost","backend":"opfs","kind":"hdd","format":"raw","fileName":"ghost.img","sizeBytes":512,"checksum":null},`, 1)), 0, "-", nil},
	}
	if strings.Contains(good, `"mounts"`) {
		t.Fatal("the library's catalog has mounts: the mount case would write a second key")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, lib.dir)
			tc.tamper(dir)
			before := meta(dir)
			st, err := dirstore.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := manager.New(st)
			lib.checkFilesKept(t, dir)
			if tc.errName != manager.KindInternal {
				if manager.KindOf(err) != tc.errName {
					t.Fatalf("open: %v (%s), want %s", err, manager.KindOf(err), tc.errName)
				}
				t.Logf("refused: %v", err)
				if !bytes.Equal(meta(dir), before) {
					t.Error("a catalog that was refused was rewritten")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rep := m.Report()
			if tc.from == "-" {
				if rep.Recovery != nil {
					t.Errorf("recovered a usable catalog: %+v", rep.Recovery)
				}
			} else {
				if rep.Recovery == nil {
					t.Fatal("no recovery reported")
				}
				var rebuilt []string
				for _, r := range rep.Recovery.Recovered {
					rebuilt = append(rebuilt, r.ID)
				}
				want := slices.Clone(tc.rebuilt)
				sort.Strings(want)
				if rep.Recovery.From != tc.from || !slices.Equal(rebuilt, want) {
					t.Errorf("recovery %+v, want from %q rebuilt %v", rep.Recovery, tc.from, want)
				}
				if len(before) > 0 && rep.Recovery.Kept != "" {
					if kept, _ := os.ReadFile(filepath.Join(dir, rep.Recovery.Kept)); !bytes.Equal(kept, before) {
						t.Errorf("the damaged catalog was not kept as %s", rep.Recovery.Kept)
					}
				}
				t.Logf("recovery: %+v", rep.Recovery)
			}
			lib.checkReadsBack(t, m, lib.ids()...)
			// The catalog written now is whole, and a second open changes
			// nothing more.
			m2, err := manager.New(must(dirstore.New(dir)))
			if err != nil {
				t.Fatal(err)
			}
			if r := m2.Report().Recovery; r != nil {
				t.Errorf("a second open recovered again: %+v", r)
			}
			// A change after a recovery keeps every disk.
			if _, err := m2.Rename(a.ID, "renamed"); err != nil {
				t.Fatal(err)
			}
			lib.checkReadsBack(t, m2, lib.ids()...)
			lib.checkFilesKept(t, dir)
		})
	}
}

// TestTamperedRecordsKeepTheirBytes: a record with wrongly typed fields and
// an entry that is not a record survive a rewrite of the catalog exactly.
func TestTamperedRecordsKeepTheirBytes(t *testing.T) {
	lib := newLibrary(t)
	dir := lib.dir
	good, _ := os.ReadFile(filepath.Join(dir, "metadata.json"))
	odd := `{"id":"odd","name":42,"sizeBytes":"big","fileName":"odd.img","remote":{"url":"https://example.invalid/x"}}`
	tampered := strings.Replace(string(good), `"disks":{`, `"disks":{"junk":5,"odd":`+odd+`,`, 1)
	testutil.WriteFile(t, dir, "metadata.json", []byte(tampered))
	m, err := manager.New(must(dirstore.New(dir)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rename(lib.disks[0].ID, "changed"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "metadata.json"))
	for _, want := range []string{`"junk":5`, `"odd":` + odd} {
		if !strings.Contains(string(after), want) {
			t.Errorf("rewritten catalog lost %s:\n%s", want, after)
		}
	}
	for _, n := range m.Report().Notes {
		t.Logf("note: %s", n)
	}
	if len(m.Report().Notes) == 0 {
		t.Error("no note about the entry that is not a record")
	}
}

// TestDeleteRules: a record sharing its file with another deletes only the
// record; records whose file names are not disk files of this store (the
// catalog's own file, a path outside it) are deleted without touching any
// file; a record whose file is missing is deleted.
func TestDeleteRules(t *testing.T) {
	lib := newLibrary(t)
	dir := lib.dir
	outside := testutil.WriteFile(t, filepath.Dir(dir), "x.img", []byte("outside"))
	good, _ := os.ReadFile(filepath.Join(dir, "metadata.json"))
	b := lib.disks[1]
	rec := func(id, file string) string {
		return fmt.Sprintf(`%q:{"id":%q,"name":%q,"backend":"opfs","kind":"hdd","format":"raw","fileName":%q,"sizeBytes":%d,"checksum":null},`, id, id, id, file, len(lib.want[b.ID]))
	}
	extra := rec("twin", b.FileName) + rec("meta", "metadata.json") + rec("escape", "../"+filepath.Base(outside)) + rec("gone", "gone.img")
	testutil.WriteFile(t, dir, "metadata.json", []byte(strings.Replace(string(good), `"disks":{`, `"disks":{`+extra, 1)))
	m, err := manager.New(must(dirstore.New(dir)))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"twin", "meta", "escape", "gone"} {
		if err := m.Delete(id); err != nil {
			t.Errorf("delete %s: %v", id, err)
		}
	}
	lib.checkFilesKept(t, dir)
	lib.checkReadsBack(t, m, lib.ids()...)
	if got, _ := os.ReadFile(outside); string(got) != "outside" {
		t.Error("a file outside the disks folder was touched")
	}
	if _, err := os.Stat(filepath.Join(dir, "metadata.json")); err != nil {
		t.Error("deleting a record named metadata.json removed the catalog")
	}
	if n := len(must(m.List())); n != 3 {
		t.Errorf("%d disks listed, want 3", n)
	}
	// With its twin gone, deleting the disk itself removes the file.
	if err := m.Delete(b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, b.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted disk's file remains: %v", err)
	}
}

// stall is a Faults hook that stops the first matching operation until
// resumed: reached is closed when it stops there.
type stall struct {
	mu      sync.Mutex
	match   func(op dirstore.Op, name string) bool
	hit     bool
	reached chan struct{}
	resume  chan struct{}
}

func newStall(match func(op dirstore.Op, name string) bool) *stall {
	return &stall{match: match, reached: make(chan struct{}), resume: make(chan struct{})}
}

func (s *stall) fault(op dirstore.Op, name string) error {
	s.mu.Lock()
	if s.hit || !s.match(op, name) {
		s.mu.Unlock()
		return nil
	}
	s.hit = true
	s.mu.Unlock()
	close(s.reached)
	<-s.resume
	return nil
}

// afterCreate matches op once a pending file has been created: the
// operations of an import's write and commit, not its first catalog reads.
func afterCreate(want dirstore.Op) func(dirstore.Op, string) bool {
	created := false
	return func(op dirstore.Op, name string) bool {
		if op == dirstore.OpCreate {
			created = true
		}
		return created && op == want
	}
}

func pendingLeft(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), dirstore.PendingSuffix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestTabKilledMidImport kills the importing "tab" (its Store) at each step
// of an import, from the first byte to after the catalog commit, and opens
// the directory again: the import is either listed whole and reads back
// right, or absent with nothing left of it; the other disks are intact.
func TestTabKilledMidImport(t *testing.T) {
	lib := newLibrary(t)
	src := testutil.WriteFile(t, t.TempDir(), "new.img", testutil.MixedData(3<<20, 99))
	want, _ := os.ReadFile(src)
	for _, op := range []dirstore.Op{dirstore.OpCreate, dirstore.OpWrite, dirstore.OpLockCatalog, dirstore.OpWriteCatalog, dirstore.OpCatalogRename, dirstore.OpFinish} {
		t.Run(string(op), func(t *testing.T) {
			dir := copyDir(t, lib.dir)
			st := must(dirstore.New(dir))
			m, err := manager.New(st)
			if err != nil {
				t.Fatal(err)
			}
			s := newStall(afterCreate(op))
			if op == dirstore.OpCreate {
				s = newStall(func(o dirstore.Op, _ string) bool { return o == op })
			}
			st.Faults = s.fault
			done := make(chan error, 1)
			go func() {
				_, err := m.Import(context.Background(), input(t, src), manager.ImportOptions{Name: "new", Convert: true})
				done <- err
			}()
			select {
			case <-s.reached:
			case err := <-done:
				t.Fatalf("the import ended before reaching %s: %v", op, err)
			}
			st.Kill()
			close(s.resume)
			if err := <-done; err == nil {
				t.Fatal("an import whose tab was killed reported success")
			}
			m2, err := manager.New(must(dirstore.New(dir)))
			if err != nil {
				t.Fatal(err)
			}
			lib.checkFilesKept(t, dir)
			lib.checkReadsBack(t, m2, lib.ids()...)
			var found *catalog.Disk
			for _, d := range must(m2.List()) {
				if d.Name == "new" {
					found = d
				}
			}
			if found != nil {
				if got := exportBytes(t, m2, found.ID, false); !bytes.Equal(got, want) {
					t.Error("the import is listed but reads back wrong")
				}
			}
			if p := pendingLeft(t, dir); len(p) != 0 {
				t.Errorf("pending files left after the next open: %v", p)
			}
			files := fileSums(t, dir)
			wantFiles := len(lib.files)
			if found != nil {
				wantFiles++
			}
			if len(files) != wantFiles {
				t.Errorf("%d disk files for %d disks: %v", len(files), wantFiles, files)
			}
			t.Logf("killed at %s: listed=%v, report %+v", op, found != nil, m2.Report())
		})
	}
}

// TestLostRenames: a rename the store reports done but never makes — the
// pending file's move into place, or the catalog's — loses no data.
func TestLostRenames(t *testing.T) {
	lib := newLibrary(t)
	src := testutil.WriteFile(t, t.TempDir(), "new.img", testutil.MixedData(1<<20, 5))
	want, _ := os.ReadFile(src)
	t.Run("finish", func(t *testing.T) {
		dir := copyDir(t, lib.dir)
		st := must(dirstore.New(dir))
		m := must(manager.New(st))
		lost := false
		st.Faults = func(op dirstore.Op, name string) error {
			if op == dirstore.OpFinish && !lost {
				lost = true
				return dirstore.ErrLost
			}
			return nil
		}
		d, err := m.Import(context.Background(), input(t, src), manager.ImportOptions{Name: "new"})
		if err != nil {
			t.Fatal(err)
		}
		st.Kill() // the tab goes away with the file still pending
		m2 := must(manager.New(must(dirstore.New(dir))))
		if r := m2.Report(); !slices.Contains(r.Finished, d.FileName) {
			t.Errorf("report %+v: the pending file was not finished", r)
		}
		lib.want[d.ID] = want
		lib.checkReadsBack(t, m2, append(lib.ids(), d.ID)...)
	})
	t.Run("catalog", func(t *testing.T) {
		dir := copyDir(t, lib.dir)
		st := must(dirstore.New(dir))
		m := must(manager.New(st))
		st.Faults = func(op dirstore.Op, name string) error {
			if op == dirstore.OpCatalogRename {
				return dirstore.ErrLost
			}
			return nil
		}
		d, err := m.Import(context.Background(), input(t, src), manager.ImportOptions{Name: "new"})
		if err != nil {
			t.Fatal(err)
		}
		m2 := must(manager.New(must(dirstore.New(dir))))
		lib.checkReadsBack(t, m2, lib.ids()...)
		lib.checkFilesKept(t, dir)
		if _, err := os.Stat(filepath.Join(dir, d.FileName)); err != nil {
			t.Errorf("the file of an import whose catalog write was lost was removed: %v", err)
		}
	})
}

// TestNonAtomicCatalogMove replaces metadata.json the way Chromium's move()
// looks to another tab (the old file gone for a moment before the new one
// arrives) while another "tab" opens and lists 100 times. Readers under the
// catalog lock never see the gap (retries are off here, so the lock alone
// must hold): nothing is recovered, nothing is lost. A writer that does not
// take our lock (another program in the origin) is ridden out by retries.
func TestNonAtomicCatalogMove(t *testing.T) {
	for _, tc := range []struct {
		name     string
		unlocked bool // the writer replaces the catalog without our lock
	}{{"our lock", false}, {"a writer without our lock", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.unlocked {
				defer manager.SetReadRetries(nil)()
			}
			lib := newLibrary(t)
			meta := filepath.Join(lib.dir, "metadata.json")
			good, _ := os.ReadFile(meta)
			writer := must(dirstore.New(lib.dir))
			writer.Faults = func(op dirstore.Op, name string) error {
				if op == dirstore.OpCatalogRename {
					os.Remove(meta)
					time.Sleep(2 * time.Millisecond)
				}
				return nil
			}
			mw := must(manager.New(writer))
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			replaced := 0
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if tc.unlocked {
						// A gap of 2 ms every 20 ms: retries ride it out.
						os.Remove(meta)
						time.Sleep(2 * time.Millisecond)
						testutil.WriteFile(t, lib.dir, "metadata.json", good)
						time.Sleep(20 * time.Millisecond)
					} else if _, err := mw.Rename(lib.disks[i%3].ID, fmt.Sprint("name ", i)); err != nil {
						t.Error(err)
						return
					}
					replaced++
				}
			}()
			for i := range 100 {
				m, err := manager.New(must(dirstore.New(lib.dir)))
				if err != nil {
					t.Fatalf("open %d: %v", i, err)
				}
				if r := m.Report().Recovery; r != nil {
					t.Fatalf("open %d recovered: %+v", i, r)
				}
				if l := must(m.List()); len(l) != 3 {
					t.Fatalf("open %d lists %d disks", i, len(l))
				}
			}
			close(stop)
			wg.Wait()
			t.Logf("100 opens against %d replacements", replaced)
			lib.checkFilesKept(t, lib.dir)
		})
	}
}

// TestSweepSparesARunningImport: a tab's import stalls between closing its
// file and committing it while another tab opens 20 times; the import then
// completes and reads back whole.
func TestSweepSparesARunningImport(t *testing.T) {
	lib := newLibrary(t)
	src := testutil.WriteFile(t, t.TempDir(), "new.img", testutil.MixedData(2<<20, 6))
	want, _ := os.ReadFile(src)
	st := must(dirstore.New(lib.dir))
	m := must(manager.New(st))
	s := newStall(afterCreate(dirstore.OpLockCatalog))
	st.Faults = s.fault
	done := make(chan *catalog.Disk, 1)
	go func() {
		d, err := m.Import(context.Background(), input(t, src), manager.ImportOptions{Name: "new"})
		if err != nil {
			t.Error(err)
		}
		done <- d
	}()
	<-s.reached
	for range 20 {
		other := must(manager.New(must(dirstore.New(lib.dir))))
		if r := other.Report(); len(r.Swept) > 0 {
			t.Fatalf("another tab swept a running import: %+v", r)
		}
	}
	close(s.resume)
	d := <-done
	if d == nil {
		t.FailNow()
	}
	lib.want[d.ID] = want
	other := must(manager.New(must(dirstore.New(lib.dir))))
	lib.checkReadsBack(t, other, append(lib.ids(), d.ID)...)
}

// TestCancelBeforeCommit: an import cancelled at its commit (after every
// byte is written and checksummed) stores nothing.
func TestCancelBeforeCommit(t *testing.T) {
	lib := newLibrary(t)
	src := testutil.WriteFile(t, t.TempDir(), "new.img", testutil.MixedData(1<<20, 7))
	st := must(dirstore.New(lib.dir))
	m := must(manager.New(st))
	ctx, cancel := context.WithCancel(context.Background())
	match := afterCreate(dirstore.OpLockCatalog)
	st.Faults = func(op dirstore.Op, name string) error {
		if match(op, name) {
			cancel()
		}
		return nil
	}
	_, err := m.Import(ctx, input(t, src), manager.ImportOptions{Name: "cancelled"})
	if manager.KindOf(err) != manager.KindAbort {
		t.Fatalf("import cancelled at its commit: %v", err)
	}
	if n := len(must(m.List())); n != 3 {
		t.Errorf("%d disks listed", n)
	}
	if got := fileSums(t, lib.dir); len(got) != len(lib.files) {
		t.Errorf("files after a cancelled import: %v", got)
	}
	if p := pendingLeft(t, lib.dir); len(p) != 0 {
		t.Errorf("pending files left: %v", p)
	}
}

// TestTransientCatalogErrors: a catalog read that fails a few times, and a
// catalog lock that cannot be taken, never count as "no disks".
func TestTransientCatalogErrors(t *testing.T) {
	lib := newLibrary(t)
	st := must(dirstore.New(lib.dir))
	fails := 2
	st.Faults = func(op dirstore.Op, name string) error {
		if op == dirstore.OpReadCatalog && name == "metadata.json" && fails > 0 {
			fails--
			return errors.New("NotReadableError (injected)")
		}
		return nil
	}
	m, err := manager.New(st)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Report().Recovery; r != nil {
		t.Errorf("a transient read error caused a recovery: %+v", r)
	}
	lib.checkReadsBack(t, m, lib.ids()...)
	st.Faults = func(op dirstore.Op, name string) error {
		if op == dirstore.OpLockCatalog {
			return errors.New("lock refused (injected)")
		}
		return nil
	}
	if _, err := m.List(); err == nil {
		t.Error("List succeeded without the catalog lock")
	}
	if _, err := manager.New(st); err == nil {
		t.Error("open succeeded without the catalog lock")
	}
	st.Faults = nil
	lib.checkReadsBack(t, m, lib.ids()...)
	lib.checkFilesKept(t, lib.dir)
}

// TestSpaceCheckWithoutUsage: after a browser restart the usage figure can
// read 0; the space check still counts what the catalog's disks take.
func TestSpaceCheckWithoutUsage(t *testing.T) {
	lib := newLibrary(t)
	st := must(dirstore.New(lib.dir))
	usage, _, _ := st.Estimate()
	st.Quota = usage + 1<<20
	st.Faults = func(op dirstore.Op, name string) error {
		if op == dirstore.OpEstimate {
			return dirstore.ErrLost
		}
		return nil
	}
	m := must(manager.New(st))
	src := testutil.WriteFile(t, t.TempDir(), "big.img", testutil.MixedData(4<<20, 8))
	_, err := m.Import(context.Background(), input(t, src), manager.ImportOptions{})
	if manager.KindOf(err) != manager.KindQuota {
		t.Fatalf("import beyond the quota with usage reading 0: %v", err)
	}
	t.Log(err)
}

// TestBackingOverConvertedDisk: a qcow2 overlay whose backing file is a raw
// disk imported converted (stored as AEROSPAR) reads that disk's content,
// never its container bytes — the same bytes as qemu-img over the original
// files — and one that names its backing in another format says so.
func TestBackingOverConvertedDisk(t *testing.T) {
	dir := t.TempDir()
	base := testutil.BaseDisk(t, dir, "m64.img", 4<<20, 3)
	top := filepath.Join(dir, "top.qcow2")
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-b", "m64.img", "-F", "raw", top)
	testutil.QemuIO(t, "qcow2", top, "write -P 0x5a 1M 64k", "write -P 0x6b 3M 4k")
	want, _ := os.ReadFile(testutil.QemuRaw(t, "qcow2", top))

	m, _ := newManager(t, t.TempDir())
	ctx := context.Background()
	bd, err := m.Import(ctx, input(t, base), manager.ImportOptions{Convert: true})
	if err != nil {
		t.Fatal(err)
	}
	if bd.Format != "aerospar" {
		t.Fatalf("the base is stored as %s", bd.Format)
	}
	d, err := m.Import(ctx, input(t, top), manager.ImportOptions{Convert: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Checksum.Value != crcHex(want) || !bytes.Equal(exportBytes(t, m, d.ID, false), want) {
		t.Fatalf("overlay over a converted base: checksum %s, want %s", d.Checksum.Value, crcHex(want))
	}
	if len(d.Warnings) != 0 {
		t.Errorf("warnings for a matching backing format: %q", d.Warnings)
	}
	if v := must(m.Verify(ctx, d.ID, nil)); !v.OK {
		t.Errorf("verify: %+v", v)
	}

	// The overlay names its backing as qcow2; the stored disk came as raw.
	top2 := filepath.Join(dir, "top2.qcow2")
	bq := filepath.Join(dir, "m64.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", base, bq)
	testutil.QemuImg(t, "create", "-q", "-f", "qcow2", "-b", "m64.qcow2", "-F", "qcow2", top2)
	testutil.QemuIO(t, "qcow2", top2, "write -P 0x7c 2M 8k")
	want2, _ := os.ReadFile(testutil.QemuRaw(t, "qcow2", top2))
	if _, err := m.Rename(bd.ID, "m64.qcow2"); err != nil {
		t.Fatal(err)
	}
	d2, err := m.Import(ctx, input(t, top2), manager.ImportOptions{Convert: true})
	if err != nil {
		t.Fatal(err)
	}
	if d2.Checksum.Value != crcHex(want2) {
		t.Errorf("overlay naming a qcow2 backing over the raw disk: checksum %s, want %s", d2.Checksum.Value, crcHex(want2))
	}
	if len(d2.Warnings) != 1 || !strings.Contains(d2.Warnings[0], "qcow2") || !strings.Contains(d2.Warnings[0], "raw") {
		t.Errorf("warnings %q, want one naming qcow2 and raw", d2.Warnings)
	}
}

// TestVerifyRules: a disk kept in its container whose container changed
// fails verification even where its logical content reads the same way; a
// disk without a checksum (another tool's) gets one recorded.
func TestVerifyRules(t *testing.T) {
	dir := t.TempDir()
	base := testutil.BaseDisk(t, dir, "v.img", 2<<20, 4)
	q := filepath.Join(dir, "v.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", base, q)
	store := t.TempDir()
	m, _ := newManager(t, store)
	ctx := context.Background()
	d, err := m.Import(ctx, input(t, q), manager.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v := must(m.Verify(ctx, d.ID, nil)); !v.OK || v.SourceOK == nil || !*v.SourceOK {
		t.Fatalf("verify of an intact qcow2: %+v", v)
	}
	// A byte of the header's padding (no meaning to readers) changes.
	p := filepath.Join(store, d.FileName)
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 0xff
	os.WriteFile(p, b, 0o644)
	v, err := m.Verify(ctx, d.ID, nil)
	if err == nil && v.OK {
		t.Errorf("a changed container verified ok: %+v", v)
	}

	// A record without a checksum.
	good, _ := os.ReadFile(filepath.Join(store, "metadata.json"))
	c := must(catalog.Parse(good))
	bl := must(m.CreateBlank(ctx, manager.BlankOptions{Name: "blank", SizeBytes: 1 << 20}))
	good, _ = os.ReadFile(filepath.Join(store, "metadata.json"))
	_ = c
	noSum := strings.Replace(string(good), fmt.Sprintf(`"checksum":{"algorithm":"crc32","value":%q}`, bl.Checksum.Value), `"checksum":null`, 1)
	if noSum == string(good) {
		t.Fatal("could not remove the checksum")
	}
	testutil.WriteFile(t, store, "metadata.json", []byte(noSum))
	v, err = m.Verify(ctx, bl.ID, nil)
	if err != nil || !v.OK || !v.Recorded || v.Checksum != checksum.Hex(checksum.ExtendZeros(0, 1<<20)) {
		t.Fatalf("verify without a checksum: %+v %v", v, err)
	}
	if got := must(m.Get(bl.ID)).Checksum; got == nil || got.Value != v.Checksum {
		t.Errorf("the computed checksum was not recorded: %+v", got)
	}
	if v := must(m.Verify(ctx, bl.ID, nil)); !v.OK || v.Recorded {
		t.Errorf("second verify: %+v", v)
	}
	_ = crc32.ChecksumIEEE
}
