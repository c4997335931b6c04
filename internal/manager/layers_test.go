package manager_test

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"aerodisk/internal/catalog"
	"aerodisk/internal/checksum"
	"aerodisk/internal/dirstore"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/manager"
	"aerodisk/internal/testutil"
)

// layerEnv is a manager over a host directory with one imported disk.
type layerEnv struct {
	t    *testing.T
	dir  string
	st   *dirstore.Store
	m    *manager.Manager
	base *catalog.Disk
	data []byte
	r    *rand.Rand
}

func newLayerEnv(t *testing.T, convert bool) *layerEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := dirstore.New(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(st)
	if err != nil {
		t.Fatal(err)
	}
	data := testutil.MixedData(3<<20, 5)
	src := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := dirstore.OpenInput(src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	d, err := m.Import(context.Background(), in, manager.ImportOptions{Name: "base", Convert: convert, Kind: "hdd"})
	if err != nil {
		t.Fatal(err)
	}
	return &layerEnv{t: t, dir: dir, st: st, m: m, base: d, data: data, r: rand.New(rand.NewPCG(9, 9))}
}

// write writes random bytes (or zeros) into disk id's head layer as a
// machine would, and into the model.
func (e *layerEnv) write(id string, model []byte, ops int) {
	e.t.Helper()
	top, done, err := e.m.OpenHeadForTest(id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() {
		if err := done(); err != nil {
			e.t.Fatal(err)
		}
	}()
	for range ops {
		off := e.r.Int64N(int64(len(model))/512) * 512
		n := min(int64(len(model))-off, 512*(1+e.r.Int64N(300)))
		if e.r.IntN(5) == 0 {
			if err := top.Discard(off, n); err != nil {
				e.t.Fatal(err)
			}
			clear(model[off : off+n])
			continue
		}
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(e.r.Uint32())
		}
		if _, err := top.WriteAt(p, off); err != nil {
			e.t.Fatal(err)
		}
		copy(model[off:], p)
	}
}

func (e *layerEnv) export(id string) []byte {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.m.Export(context.Background(), id, manager.ExportOptions{}, &buf); err != nil {
		e.t.Fatalf("export %s: %v", id, err)
	}
	return buf.Bytes()
}

func (e *layerEnv) exportAt(id, cp string) []byte {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.m.ExportCheckpoint(context.Background(), id, cp, manager.ExportOptions{}, &buf); err != nil {
		e.t.Fatalf("export %s at %s: %v", id, cp, err)
	}
	return buf.Bytes()
}

func (e *layerEnv) mustEqual(what string, got, want []byte) {
	e.t.Helper()
	if !bytes.Equal(got, want) {
		e.t.Fatalf("%s: %d bytes with CRC32 %08x, want %d bytes with CRC32 %08x", what, len(got), crc32.ChecksumIEEE(got), len(want), crc32.ChecksumIEEE(want))
	}
}

func (e *layerEnv) layerFilesOnDisk() []string {
	e.t.Helper()
	files, err := e.st.Files()
	if err != nil {
		e.t.Fatal(err)
	}
	return slices.DeleteFunc(files, func(f string) bool { return !manager.IsLayerFile(f) })
}

// TestOverlayAndCheckpoints walks an overlay through writes, checkpoints
// restored in every order, a revert, and the rules that keep its base
// pristine.
func TestOverlayAndCheckpoints(t *testing.T) {
	for _, convert := range []bool{false, true} {
		t.Run(map[bool]string{false: "raw base", true: "aerospar base"}[convert], func(t *testing.T) {
			e := newLayerEnv(t, convert)
			ov, err := e.m.CreateOverlay(e.base.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			if ov.ParentID != e.base.ID || ov.Name != "base (overlay)" || ov.Checksum == nil || ov.Checksum.Value != e.base.Checksum.Value {
				t.Fatalf("overlay record: %+v", ov)
			}
			e.mustEqual("a new overlay", e.export(ov.ID), e.data)

			m0 := append([]byte(nil), e.data...)
			e.write(ov.ID, m0, 40)
			e.mustEqual("the overlay after writes", e.export(ov.ID), m0)
			e.mustEqual("the base after the overlay's writes", e.export(e.base.ID), e.data)

			// The base is immutable while it has an overlay.
			for what, err := range map[string]error{
				"delete":     e.m.Delete(e.base.ID),
				"checkpoint": func() error { _, err := e.m.TakeCheckpoint(e.base.ID, "x"); return err }(),
			} {
				if !errors.Is(err, manager.ErrInUse) || !strings.Contains(err.Error(), ov.Name) {
					t.Errorf("%s of a base: %v", what, err)
				}
			}

			c1, err := e.m.TakeCheckpoint(ov.ID, "one")
			if err != nil {
				t.Fatal(err)
			}
			m1 := append([]byte(nil), m0...)
			e.write(ov.ID, m1, 40)
			c2, err := e.m.TakeCheckpoint(ov.ID, "two")
			if err != nil {
				t.Fatal(err)
			}
			m2 := append([]byte(nil), m1...)
			e.write(ov.ID, m2, 40)
			e.mustEqual("the head", e.export(ov.ID), m2)
			e.mustEqual("checkpoint one", e.exportAt(ov.ID, c1.ID), m0)
			e.mustEqual("checkpoint two", e.exportAt(ov.ID, c2.ID), m1)

			// Restore in any order; the others stay.
			for _, step := range []struct {
				cp   manager.Checkpoint
				want []byte
			}{{c1, m0}, {c2, m1}, {c1, m0}, {c2, m1}} {
				if _, err := e.m.RestoreCheckpoint(ov.ID, step.cp.ID); err != nil {
					t.Fatal(err)
				}
				e.mustEqual("after restoring "+step.cp.Name, e.export(ov.ID), step.want)
			}
			// Writes after a restore branch off; both checkpoints still read.
			m3 := append([]byte(nil), m1...)
			e.write(ov.ID, m3, 20)
			e.mustEqual("the new branch", e.export(ov.ID), m3)
			e.mustEqual("checkpoint one after branching", e.exportAt(ov.ID, c1.ID), m0)
			cps, err := e.m.ListCheckpoints(ov.ID)
			if err != nil || len(cps) != 2 || cps[0].Name != "one" || cps[1].Name != "two" {
				t.Fatalf("checkpoints: %+v %v", cps, err)
			}

			// Revert: the base again, the checkpoints kept.
			if _, err := e.m.RevertDisk(ov.ID); err != nil {
				t.Fatal(err)
			}
			e.mustEqual("after revert", e.export(ov.ID), e.data)
			e.mustEqual("checkpoint two after revert", e.exportAt(ov.ID, c2.ID), m1)

			// Only the layers something needs are kept on disk.
			d, _ := e.m.Get(ov.ID)
			if got, want := len(e.layerFilesOnDisk()), len(d.Layers.Nodes); got != want || len(d.Garbage) != 0 {
				t.Fatalf("%d layer files for %d layers (garbage %v)", got, want, d.Garbage)
			}

			// Deleting the overlay takes its layers; the base is free again.
			if err := e.m.Delete(ov.ID); err != nil {
				t.Fatal(err)
			}
			if files := e.layerFilesOnDisk(); len(files) != 0 {
				t.Fatalf("layer files left: %v", files)
			}
			if _, err := e.m.TakeCheckpoint(e.base.ID, "now free"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCheckpointOfAPlainDisk: a checkpoint of a disk without layers
// freezes its file; the disk is written through layers from then on.
func TestCheckpointOfAPlainDisk(t *testing.T) {
	e := newLayerEnv(t, false)
	c, err := e.m.TakeCheckpoint(e.base.ID, "pristine")
	if err != nil {
		t.Fatal(err)
	}
	m := append([]byte(nil), e.data...)
	e.write(e.base.ID, m, 30)
	e.mustEqual("the disk", e.export(e.base.ID), m)
	e.mustEqual("the checkpoint", e.exportAt(e.base.ID, c.ID), e.data)
	if _, err := e.m.RestoreCheckpoint(e.base.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	e.mustEqual("restored", e.export(e.base.ID), e.data)
	// The file itself was never written.
	raw, err := os.ReadFile(filepath.Join(e.dir, "store", e.base.FileName))
	if err != nil {
		t.Fatal(err)
	}
	e.mustEqual("the disk's file", raw, e.data)
}

// TestDeleteCheckpointMerges deletes checkpoints whose layers the disk
// still reads through: each is merged into the layer above, nothing reads
// differently, and its file goes.
func TestDeleteCheckpointMerges(t *testing.T) {
	e := newLayerEnv(t, true)
	ov, err := e.m.CreateOverlay(e.base.ID, "work")
	if err != nil {
		t.Fatal(err)
	}
	var models [][]byte
	var cps []manager.Checkpoint
	m := append([]byte(nil), e.data...)
	for i := range 4 {
		e.write(ov.ID, m, 25)
		models = append(models, append([]byte(nil), m...))
		c, err := e.m.TakeCheckpoint(ov.ID, string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		cps = append(cps, c)
	}
	e.write(ov.ID, m, 25)
	before := len(e.layerFilesOnDisk())
	var phases []string
	for _, i := range []int{1, 0, 3} {
		if err := e.m.DeleteCheckpoint(context.Background(), ov.ID, cps[i].ID, func(p manager.Progress) { phases = append(phases, p.Phase) }); err != nil {
			t.Fatal(err)
		}
		e.mustEqual("the head after deleting "+cps[i].Name, e.export(ov.ID), m)
		e.mustEqual("checkpoint c after deleting "+cps[i].Name, e.exportAt(ov.ID, cps[2].ID), models[2])
	}
	if after := len(e.layerFilesOnDisk()); after != before-3 {
		t.Fatalf("%d layer files after three merges, %d before", after, before)
	}
	if len(phases) == 0 || phases[len(phases)-1] != "merge" {
		t.Fatalf("merge progress: %v", phases)
	}
	d, _ := e.m.Get(ov.ID)
	if d.Pending != nil || len(d.Checkpoints) != 1 || len(d.Garbage) != 0 {
		t.Fatalf("record after merges: pending %+v checkpoints %+v garbage %v", d.Pending, d.Checkpoints, d.Garbage)
	}
}

// TestKilledMergeResumes: a merge cut short (its record says pending, its
// upper layer holds part of the lower one) is finished by the next open,
// and nothing reads differently meanwhile.
func TestKilledMergeResumes(t *testing.T) {
	e := newLayerEnv(t, false)
	ov, _ := e.m.CreateOverlay(e.base.ID, "")
	m := append([]byte(nil), e.data...)
	e.write(ov.ID, m, 30)
	c1, _ := e.m.TakeCheckpoint(ov.ID, "one")
	e.write(ov.ID, m, 30)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	e.m.Yield = func() {
		if n++; n == 3 {
			cancel()
		}
	}
	e.m.StepBudget = 1 // a tiny budget: every block is a step
	err := e.m.DeleteCheckpoint(ctx, ov.ID, c1.ID, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the cut merge: %v", err)
	}
	if d, _ := e.m.Get(ov.ID); d.Pending == nil || d.Pending.Op != "merge-up" {
		t.Fatalf("no pending merge recorded: %+v", d.Pending)
	}
	e.mustEqual("the head mid-merge", e.export(ov.ID), m)
	if _, err := e.m.TakeCheckpoint(ov.ID, "x"); !errors.Is(err, manager.ErrInUse) {
		t.Fatalf("a checkpoint during a pending merge: %v", err)
	}
	// The next tab.
	m2, err := manager.New(e.st)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.ResumePending(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.m = m2
	if d, _ := m2.Get(ov.ID); d.Pending != nil || len(d.Layers.Nodes) != 1 {
		t.Fatalf("after resuming: pending %+v, %d layers", d.Pending, len(d.Layers.Nodes))
	}
	e.mustEqual("the head after resuming", e.export(ov.ID), m)
	if files := e.layerFilesOnDisk(); len(files) != 1 {
		t.Fatalf("layer files after resuming: %v", files)
	}
}

func TestCommitOverlay(t *testing.T) {
	for _, convert := range []bool{false, true} {
		t.Run(map[bool]string{false: "raw", true: "aerospar"}[convert], func(t *testing.T) {
			e := newLayerEnv(t, convert)
			ov, _ := e.m.CreateOverlay(e.base.ID, "")
			m := append([]byte(nil), e.data...)
			e.write(ov.ID, m, 50)
			c, _ := e.m.TakeCheckpoint(ov.ID, "cp")
			if err := e.m.CommitOverlay(context.Background(), ov.ID, nil); !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("commit with checkpoints: %v", err)
			}
			if err := e.m.DeleteCheckpoint(context.Background(), ov.ID, c.ID, nil); err != nil {
				t.Fatal(err)
			}
			if err := e.m.CommitOverlay(context.Background(), ov.ID, nil); err != nil {
				t.Fatal(err)
			}
			e.mustEqual("the base after commit", e.export(e.base.ID), m)
			e.mustEqual("the overlay after commit", e.export(ov.ID), m)
			b, _ := e.m.Get(e.base.ID)
			if b.Checksum == nil || !b.Checksum.Stale {
				t.Fatalf("the base's checksum is not marked stale: %+v", b.Checksum)
			}
			if files := e.layerFilesOnDisk(); len(files) != 1 {
				t.Fatalf("layer files after commit: %v", files)
			}
			// Committing a disk that is not an overlay is refused.
			if err := e.m.CommitOverlay(context.Background(), e.base.ID, nil); !errors.Is(err, catalog.ErrInvalid) {
				t.Fatalf("commit of a base: %v", err)
			}
		})
	}
	// A qcow2 base is refused by name.
	e := newLayerEnv(t, false)
	q := filepath.Join(e.dir, "d.qcow2")
	testutil.QemuImg(t, "convert", "-f", "raw", "-O", "qcow2", filepath.Join(e.dir, "disk.img"), q)
	in, _ := dirstore.OpenInput(q)
	defer in.Close()
	qd, err := e.m.Import(context.Background(), in, manager.ImportOptions{Name: "q"})
	if err != nil {
		t.Fatal(err)
	}
	ov, _ := e.m.CreateOverlay(qd.ID, "")
	if err := e.m.CommitOverlay(context.Background(), ov.ID, nil); !errors.Is(err, catalog.ErrInvalid) || !strings.Contains(err.Error(), "qcow2") {
		t.Fatalf("commit into qcow2: %v", err)
	}
}

// TestDeltas: a checkpoint's changes exported as a delta and imported onto
// the same base give the checkpoint's disk; another base, a damaged or a
// cut delta are refused with nothing stored.
func TestDeltas(t *testing.T) {
	e := newLayerEnv(t, false)
	ov, _ := e.m.CreateOverlay(e.base.ID, "")
	m := append([]byte(nil), e.data...)
	e.write(ov.ID, m, 30)
	c1, _ := e.m.TakeCheckpoint(ov.ID, "one")
	e.write(ov.ID, m, 30)

	var delta bytes.Buffer
	f, err := e.m.ExportDelta(context.Background(), ov.ID, c1.ID, &delta)
	if err != nil {
		t.Fatal(err)
	}
	if f.DataBlocks == 0 {
		t.Fatalf("empty delta: %+v", f)
	}
	path := filepath.Join(e.dir, "one.aerodelta")
	os.WriteFile(path, delta.Bytes(), 0o644)
	in, _ := dirstore.OpenInput(path)
	defer in.Close()
	d, err := e.m.ImportDelta(context.Background(), in, e.base.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "one" || d.ParentID != e.base.ID {
		t.Fatalf("imported delta record: %+v", d)
	}
	e.mustEqual("the imported delta", e.export(d.ID), e.exportAt(ov.ID, c1.ID))
	// It is an ordinary overlay now: writable.
	m2 := e.export(d.ID)
	e.write(d.ID, m2, 10)
	e.mustEqual("the imported delta after writes", e.export(d.ID), m2)

	// Another base: refused, saying which base it needs.
	other := newLayerEnv(t, false)
	other.data[0] ^= 1
	os.WriteFile(filepath.Join(other.dir, "x.img"), other.data, 0o644)
	oin, _ := dirstore.OpenInput(filepath.Join(other.dir, "x.img"))
	defer oin.Close()
	ob, err := e.m.Import(context.Background(), oin, manager.ImportOptions{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	before := e.layerFilesOnDisk()
	want := checksum.Hex(crc32.ChecksumIEEE(e.data))
	if _, err := e.m.ImportDelta(context.Background(), in, ob.ID, ""); !errors.Is(err, catalog.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("a delta for another base: %v (want it to name CRC32 %s)", err, want)
	}
	// Damaged and cut deltas.
	for name, b := range map[string][]byte{
		"flipped": func() []byte { c := bytes.Clone(delta.Bytes()); c[len(c)/2] ^= 1; return c }(),
		"cut":     delta.Bytes()[:delta.Len()-700],
	} {
		p := filepath.Join(e.dir, name+".aerodelta")
		os.WriteFile(p, b, 0o644)
		bin, _ := dirstore.OpenInput(p)
		_, err := e.m.ImportDelta(context.Background(), bin, e.base.ID, "")
		bin.Close()
		if !errors.Is(err, diskerr.ErrCorrupt) {
			t.Errorf("%s delta: %v", name, err)
		}
	}
	if after := e.layerFilesOnDisk(); !slices.Equal(after, before) {
		t.Fatalf("refused imports left files: %v, before %v", after, before)
	}
	disks, _ := e.m.List()
	if len(disks) != 4 {
		t.Fatalf("%d disks after refused imports", len(disks))
	}
}

func TestChainLimit(t *testing.T) {
	e := newLayerEnv(t, false)
	ov, _ := e.m.CreateOverlay(e.base.ID, "")
	var err error
	n := 1
	for ; n < 40 && err == nil; n++ {
		_, err = e.m.TakeCheckpoint(ov.ID, "c")
	}
	if !errors.Is(err, catalog.ErrInvalid) || n-1 != 16 {
		t.Fatalf("checkpoint %d: %v", n-1, err)
	}
	d, _ := e.m.Get(ov.ID)
	if len(d.Layers.Nodes) != 16 {
		t.Fatalf("%d layers", len(d.Layers.Nodes))
	}
	if files := e.layerFilesOnDisk(); len(files) != 16 {
		t.Fatalf("a refused checkpoint left a file: %d", len(files))
	}
}

// TestGarbageNeedsProof: a layer file that the record lists as garbage is
// removed at the next open; one that no record mentions stays, reported.
func TestGarbageNeedsProof(t *testing.T) {
	e := newLayerEnv(t, false)
	ov, _ := e.m.CreateOverlay(e.base.ID, "")
	stray := filepath.Join(e.dir, "store", "someone-else.aerolayr")
	os.WriteFile(stray, []byte("not ours"), 0o644)
	listed := manager.LayerFileName(ov.ID, "lgone")
	os.WriteFile(filepath.Join(e.dir, "store", listed), []byte("ours, dropped"), 0o644)
	if err := e.m.ChangeRecordForTest(ov.ID, func(d *catalog.Disk) { d.Garbage = append(d.Garbage, listed) }); err != nil {
		t.Fatal(err)
	}
	next, err := manager.New(e.st)
	if err != nil {
		t.Fatal(err)
	}
	if r := next.Report(); !slices.Equal(r.StrayLayers, []string{"someone-else.aerolayr"}) {
		t.Fatalf("stray layers reported: %q", r.StrayLayers)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "store", listed)); !os.IsNotExist(err) {
		t.Fatal("listed garbage was not removed")
	}
	if _, err := os.Stat(stray); err != nil {
		t.Fatal("a file nobody listed was removed")
	}
	if d, _ := next.Get(ov.ID); len(d.Garbage) != 0 {
		t.Fatalf("garbage still listed in the tab that removed it: %v", d.Garbage)
	}
	// The stored record forgets it with that tab's next commit.
	if d, _ := e.m.Get(ov.ID); len(d.Garbage) != 1 {
		t.Fatalf("another tab's view before the next commit: garbage %v", d.Garbage)
	}
	if _, err := next.Rename(ov.ID, "renamed"); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.m.Get(ov.ID); len(d.Garbage) != 0 {
		t.Fatalf("garbage still stored after the next commit: %v", d.Garbage)
	}
}

// TestKilledCommitResumes: a commit cut short leaves both disks reading
// as before (the base holds some of the overlay's blocks, the overlay all
// of them) and the next open finishes it.
func TestKilledCommitResumes(t *testing.T) {
	e := newLayerEnv(t, true)
	ov, _ := e.m.CreateOverlay(e.base.ID, "")
	m := append([]byte(nil), e.data...)
	e.write(ov.ID, m, 60)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	e.m.StepBudget = 1
	e.m.Yield = func() {
		if n++; n == 5 {
			cancel()
		}
	}
	if err := e.m.CommitOverlay(ctx, ov.ID, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("the cut commit: %v", err)
	}
	e.mustEqual("the overlay mid-commit", e.export(ov.ID), m)
	m2, err := manager.New(e.st)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.ResumePending(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.m = m2
	e.mustEqual("the base after resuming", e.export(e.base.ID), m)
	e.mustEqual("the overlay after resuming", e.export(ov.ID), m)
	if d, _ := m2.Get(ov.ID); d.Pending != nil {
		t.Fatalf("still pending: %+v", d.Pending)
	}
}

func TestFlattenDisk(t *testing.T) {
	e := newLayerEnv(t, false)
	ov, _ := e.m.CreateOverlay(e.base.ID, "")
	m := append([]byte(nil), e.data...)
	e.write(ov.ID, m, 40)
	flat, err := e.m.FlattenDisk(context.Background(), ov.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if flat.ParentID != "" || flat.Layers != nil || flat.Name != "base (overlay) (flat)" || flat.Checksum.Value != checksum.Hex(crc32.ChecksumIEEE(m)) {
		t.Fatalf("flat record: %+v", flat)
	}
	e.mustEqual("the flat copy", e.export(flat.ID), m)
	// It stands alone: the overlay and its base can go.
	if err := e.m.Delete(ov.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Delete(e.base.ID); err != nil {
		t.Fatal(err)
	}
	e.mustEqual("the flat copy alone", e.export(flat.ID), m)
}

// TestCheckpointWhileWriting: checkpoints taken while a device writes the
// disk hold exactly the writes before them, for a direct device (the file
// becomes the frozen base) and then a layered one; the device keeps
// writing; restore is refused while it is open.
func TestCheckpointWhileWriting(t *testing.T) {
	for _, convert := range []bool{false, true} {
		e := newLayerEnv(t, convert)
		ctx := context.Background()
		dev, err := e.m.OpenDisk(ctx, e.base.ID, manager.DeviceOptions{Writable: true})
		if err != nil {
			t.Fatal(err)
		}
		m := append([]byte(nil), e.data...)
		put := func(seed byte) {
			for i := range 20 {
				off := int64((int(seed)*7919+i*104729)%(len(m)/512-16)) * 512
				p := bytes.Repeat([]byte{seed, byte(i)}, 4096)
				if _, err := dev.WriteAt(p, off); err != nil {
					t.Fatal(err)
				}
				copy(m[off:], p)
			}
		}
		put(1)
		c1, err := e.m.TakeCheckpoint(e.base.ID, "one")
		if err != nil {
			t.Fatal(err)
		}
		at1 := append([]byte(nil), m...)
		put(2)
		c2, err := e.m.TakeCheckpoint(e.base.ID, "two")
		if err != nil {
			t.Fatal(err)
		}
		at2 := append([]byte(nil), m...)
		put(3)
		got := make([]byte, len(m))
		if _, err := dev.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		e.mustEqual("the device's view", got, m)
		if _, err := e.m.RestoreCheckpoint(e.base.ID, c1.ID); !errors.Is(err, manager.ErrInUse) {
			t.Fatalf("restore while writing: %v", err)
		}
		if err := dev.Close(); err != nil {
			t.Fatal(err)
		}
		e.mustEqual("checkpoint one", e.exportAt(e.base.ID, c1.ID), at1)
		e.mustEqual("checkpoint two", e.exportAt(e.base.ID, c2.ID), at2)
		e.mustEqual("the head", e.export(e.base.ID), m)

		// A layered disk can be a base too: then it is frozen as it is.
		o1, err := e.m.OpenDisk(ctx, e.base.ID, manager.DeviceOptions{Writable: true, Mode: manager.ModeOverlay})
		if err != nil {
			t.Fatal(err)
		}
		o1.Close()
		if _, err := e.m.OpenDisk(ctx, e.base.ID, manager.DeviceOptions{Writable: true}); !errors.Is(err, manager.ErrInUse) {
			t.Fatalf("writing a layered base: %v", err)
		}
		e.mustEqual("the default overlay of a layered disk", e.export(o1.DiskID()), m)
	}
}

func TestDefaultOverlay(t *testing.T) {
	e := newLayerEnv(t, false)
	ctx := context.Background()
	dev, err := e.m.OpenDisk(ctx, e.base.ID, manager.DeviceOptions{Writable: true, Mode: manager.ModeOverlay})
	if err != nil {
		t.Fatal(err)
	}
	if dev.DiskID() == e.base.ID {
		t.Fatal("mode overlay writes the base")
	}
	if _, err := dev.WriteAt(bytes.Repeat([]byte{7}, 8192), 4096); err != nil {
		t.Fatal(err)
	}
	id := dev.DiskID()
	dev.Close()
	again, err := e.m.OpenDisk(ctx, e.base.ID, manager.DeviceOptions{Writable: true, Mode: manager.ModeOverlay})
	if err != nil {
		t.Fatal(err)
	}
	if again.DiskID() != id {
		t.Fatalf("a second default overlay: %s, then %s", id, again.DiskID())
	}
	again.Close()
	e.mustEqual("the base", e.export(e.base.ID), e.data)
	m := append([]byte(nil), e.data...)
	copy(m[4096:], bytes.Repeat([]byte{7}, 8192))
	e.mustEqual("the default overlay", e.export(id), m)
	// A writable direct open of the base is refused: it has an overlay.
	if _, err := e.m.OpenDisk(ctx, e.base.ID, manager.DeviceOptions{Writable: true}); !errors.Is(err, manager.ErrInUse) {
		t.Fatalf("writing a base: %v", err)
	}
}

// TestMergeWhileWriting deletes a checkpoint whose layer merges into the
// head a device is writing: the device keeps answering between steps and
// nothing reads differently.
func TestMergeWhileWriting(t *testing.T) {
	e := newLayerEnv(t, false)
	ctx := context.Background()
	ov, _ := e.m.CreateOverlay(e.base.ID, "")
	m := append([]byte(nil), e.data...)
	e.write(ov.ID, m, 60)
	c1, _ := e.m.TakeCheckpoint(ov.ID, "one")
	dev, err := e.m.OpenDisk(ctx, ov.ID, manager.DeviceOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	e.m.StepBudget = 1
	writes := 0
	e.m.Yield = func() {
		// A machine's write between two steps of the merge.
		off := int64(writes%50) * 65536
		p := bytes.Repeat([]byte{byte(writes + 1)}, 4096)
		if _, err := dev.WriteAt(p, off); err != nil {
			t.Error(err)
		}
		copy(m[off:], p)
		writes++
	}
	if err := e.m.DeleteCheckpoint(ctx, ov.ID, c1.ID, nil); err != nil {
		t.Fatal(err)
	}
	if writes == 0 {
		t.Fatal("the merge never yielded")
	}
	got := make([]byte, len(m))
	if _, err := dev.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	e.mustEqual("the device after the merge", got, m)
	dev.Close()
	e.mustEqual("the disk after the merge", e.export(ov.ID), m)
	if d, _ := e.m.Get(ov.ID); len(d.Layers.Nodes) != 1 {
		t.Fatalf("%d layers after the merge", len(d.Layers.Nodes))
	}
}

// TestMountOverlay: an overlay (of any format) is mounted as the hard disk;
// its base, which stays as it is, is not.
func TestMountOverlay(t *testing.T) {
	e := newLayerEnv(t, false)
	ov, _ := e.m.CreateOverlay(e.base.ID, "")
	if _, err := e.m.SetMounts(manager.MountChange{SetHdd: true, HddID: &ov.ID}); err != nil {
		t.Fatalf("mounting an overlay: %v", err)
	}
	_, err := e.m.SetMounts(manager.MountChange{SetHdd: true, HddID: &e.base.ID})
	if !errors.Is(err, catalog.ErrInvalid) || !strings.Contains(err.Error(), ov.Name) {
		t.Fatalf("mounting a base: %v", err)
	}
}

// TestDeleteCheckpointUnderAWriter: deleting an older checkpoint while a
// device writes the disk merges its layer into the frozen layer above it,
// which the device opened as its head before a later checkpoint; the merge
// goes through the device's own layers (no second writable handle), the
// disk reads the same at every step, and later layer operations work.
func TestDeleteCheckpointUnderAWriter(t *testing.T) {
	e := newLayerEnv(t, true)
	ctx := context.Background()
	ov, err := e.m.CreateOverlay(e.base.ID, "work")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := e.m.OpenDisk(ctx, ov.ID, manager.DeviceOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	m := append([]byte(nil), e.data...)
	put := func(seed byte) {
		t.Helper()
		for i := range 20 {
			off := int64(e.r.IntN(len(m)/512-16)) * 512
			b := bytes.Repeat([]byte{seed, byte(i)}, 2048)
			if _, err := dev.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
			copy(m[off:], b)
		}
	}
	put(1)
	c1, err := e.m.TakeCheckpoint(ov.ID, "one")
	if err != nil {
		t.Fatal(err)
	}
	put(2)
	c2, err := e.m.TakeCheckpoint(ov.ID, "two")
	if err != nil {
		t.Fatal(err)
	}
	at2 := append([]byte(nil), m...)
	put(3)
	if err := e.m.DeleteCheckpoint(ctx, ov.ID, c1.ID, nil); err != nil {
		t.Fatalf("deleting the older checkpoint under a writer: %v", err)
	}
	d, _ := e.m.Get(ov.ID)
	if d.Pending != nil || len(d.Checkpoints) != 1 {
		t.Fatalf("after the delete: pending %+v, checkpoints %+v", d.Pending, d.Checkpoints)
	}
	got := make([]byte, len(m))
	if _, err := dev.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	e.mustEqual("the device after the merge", got, m)
	put(4)
	c3, err := e.m.TakeCheckpoint(ov.ID, "three")
	if err != nil {
		t.Fatalf("a checkpoint after the merge: %v", err)
	}
	at3 := append([]byte(nil), m...)
	put(5)
	if err := e.m.DeleteCheckpoint(ctx, ov.ID, c2.ID, nil); err != nil {
		t.Fatalf("deleting the second checkpoint: %v", err)
	}
	if _, err := dev.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	e.mustEqual("the device after two merges", got, m)
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	_ = at2
	e.mustEqual("checkpoint three", e.exportAt(ov.ID, c3.ID), at3)
	e.mustEqual("the head", e.export(ov.ID), m)
	d, _ = e.m.Get(ov.ID)
	if d.Pending != nil || len(d.Garbage) != 0 {
		t.Fatalf("record at the end: pending %+v garbage %v", d.Pending, d.Garbage)
	}
	if n := len(e.layerFilesOnDisk()); n != len(d.Layers.Nodes) {
		t.Fatalf("%d layer files for %d layers", n, len(d.Layers.Nodes))
	}
}

// TestDeleteCheckpointWhileAnotherTabWrites: the merge a delete needs
// cannot run beside another tab's writer (it holds the layers), so the
// delete is refused before anything is recorded; that tab can do it.
func TestDeleteCheckpointWhileAnotherTabWrites(t *testing.T) {
	e := newLayerEnv(t, false)
	ctx := context.Background()
	ov, err := e.m.CreateOverlay(e.base.ID, "work")
	if err != nil {
		t.Fatal(err)
	}
	other, err := manager.New(e.st)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := other.OpenDisk(ctx, ov.ID, manager.DeviceOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	for i, seed := range []byte{1, 2, 3} {
		if _, err := dev.WriteAt(bytes.Repeat([]byte{seed}, 8192), int64(i)*65536); err != nil {
			t.Fatal(err)
		}
		if seed < 3 {
			if _, err := other.TakeCheckpoint(ov.ID, string(rune('a'+i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	before, _ := e.m.Get(ov.ID)
	err = e.m.DeleteCheckpoint(ctx, ov.ID, before.Checkpoints[0].ID, nil)
	if !errors.Is(err, manager.ErrInUse) {
		t.Fatalf("deleting beside another tab's writer: %v", err)
	}
	after, _ := e.m.Get(ov.ID)
	if after.Pending != nil || len(after.Checkpoints) != 2 {
		t.Fatalf("the refused delete changed the record: pending %+v, checkpoints %+v", after.Pending, after.Checkpoints)
	}
	if _, err := e.m.ListCheckpoints(ov.ID); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteCheckpoint(ctx, ov.ID, before.Checkpoints[0].ID, nil); err != nil {
		t.Fatalf("the writing tab deletes it: %v", err)
	}
	if _, err := other.TakeCheckpoint(ov.ID, "later"); err != nil {
		t.Fatalf("a checkpoint after the merge: %v", err)
	}
}

// TestCheckpointAfterAnotherTab: an operation prepares from this tab's
// last view of the record; when another tab has moved the disk's head
// since, the commit notices and the operation is done again on the
// record as it is, so nothing of the other tab's is lost.
func TestCheckpointAfterAnotherTab(t *testing.T) {
	e := newLayerEnv(t, false)
	ov, err := e.m.CreateOverlay(e.base.ID, "work")
	if err != nil {
		t.Fatal(err)
	}
	m := append([]byte(nil), e.data...)
	e.write(ov.ID, m, 10)
	a, err := e.m.TakeCheckpoint(ov.ID, "a") // this tab's view: head after a
	if err != nil {
		t.Fatal(err)
	}
	other, err := manager.New(e.st)
	if err != nil {
		t.Fatal(err)
	}
	save := e.m
	e.m = other
	e.write(ov.ID, m, 10)
	e.m = save
	b, err := other.TakeCheckpoint(ov.ID, "b") // moves the head
	if err != nil {
		t.Fatal(err)
	}
	atB := append([]byte(nil), m...)
	c, err := e.m.TakeCheckpoint(ov.ID, "c")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := e.m.Get(ov.ID)
	if len(d.Checkpoints) != 3 || d.Checkpoints[2].ID != c.ID {
		t.Fatalf("checkpoints: %+v", d.Checkpoints)
	}
	e.mustEqual("checkpoint b", e.exportAt(ov.ID, b.ID), atB)
	e.mustEqual("checkpoint c (nothing written after b)", e.exportAt(ov.ID, c.ID), atB)
	if _, err := e.m.RestoreCheckpoint(ov.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.RestoreCheckpoint(ov.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	e.mustEqual("the head restored to c", e.export(ov.ID), atB)

	// The other tab restores c: the head this tab last saw is removed.
	if _, err := other.RestoreCheckpoint(ov.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.TakeCheckpoint(ov.ID, "after the other tab's restore"); err != nil {
		t.Fatalf("a checkpoint from a view whose head file is gone: %v", err)
	}
	if _, err := e.m.RevertDisk(ov.ID); err != nil {
		t.Fatal(err)
	}
	e.mustEqual("reverted", e.export(ov.ID), e.data)
}

// TestCompactLayers: discards and zeroing writes leave a layer's file
// larger than its live clusters; CompactDisk copies each such layer into a
// new file (the head and a frozen one), the disk and its checkpoint read
// as before, the files shrink, the old ones are removed, and a second
// compaction finds nothing to do.
func TestCompactLayers(t *testing.T) {
	e := newLayerEnv(t, false)
	ctx := context.Background()
	ov, err := e.m.CreateOverlay(e.base.ID, "work")
	if err != nil {
		t.Fatal(err)
	}
	m := append([]byte(nil), e.data...)
	churn := func() {
		top, done, err := e.m.OpenHeadForTest(ov.ID)
		if err != nil {
			t.Fatal(err)
		}
		p := bytes.Repeat([]byte{7, 9}, 1<<20)
		if _, err := top.WriteAt(p, 0); err != nil {
			t.Fatal(err)
		}
		copy(m, p)
		if err := top.Discard(0, 3<<19); err != nil { // 1.5 MiB
			t.Fatal(err)
		}
		clear(m[:3<<19])
		if err := done(); err != nil {
			t.Fatal(err)
		}
	}
	churn()
	cp, err := e.m.TakeCheckpoint(ov.ID, "frozen")
	if err != nil {
		t.Fatal(err)
	}
	atCp := append([]byte(nil), m...)
	churn()
	sizeOf := func() (n int64) {
		for _, f := range e.layerFilesOnDisk() {
			fi, err := os.Stat(filepath.Join(e.dir, "store", f))
			if err != nil {
				t.Fatal(err)
			}
			n += fi.Size()
		}
		return n
	}
	before := sizeOf()
	var phases []string
	res, err := e.m.CompactDisk(ctx, ov.ID, func(p manager.Progress) { phases = append(phases, p.Phase) })
	if err != nil {
		t.Fatal(err)
	}
	after := sizeOf()
	if res.Files != 2 || res.ReclaimedBytes <= 0 || before-after != res.ReclaimedBytes {
		t.Fatalf("compaction: %+v; layer files %d bytes before, %d after", res, before, after)
	}
	if len(phases) == 0 || phases[len(phases)-1] != manager.PhaseCompact {
		t.Fatalf("progress phases %v", phases)
	}
	e.mustEqual("the head after compaction", e.export(ov.ID), m)
	e.mustEqual("the checkpoint after compaction", e.exportAt(ov.ID, cp.ID), atCp)
	d, _ := e.m.Get(ov.ID)
	if n := len(e.layerFilesOnDisk()); n != len(d.Layers.Nodes) || len(d.Garbage) != 0 {
		t.Fatalf("%d layer files for %d layers, garbage %v", n, len(d.Layers.Nodes), d.Garbage)
	}
	if again, err := e.m.CompactDisk(ctx, ov.ID, nil); err != nil || again.Files != 0 {
		t.Fatalf("a second compaction: %+v, %v", again, err)
	}
	// A layer a writer holds is left alone.
	dev, err := e.m.OpenDisk(ctx, ov.ID, manager.DeviceOptions{Writable: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Discard(0, 1<<20); err != nil {
		t.Fatal(err)
	}
	clear(m[:1<<20])
	if res, err := e.m.CompactDisk(ctx, ov.ID, nil); err != nil || res.Files != 0 {
		t.Fatalf("compaction beside a writer: %+v, %v", res, err)
	}
	dev.Close()
	e.mustEqual("the head at the end", e.export(ov.ID), m)
}
