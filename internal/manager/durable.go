package manager

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"aerodisk/internal/catalog"
	"aerodisk/internal/formats"
)

// The durability rules (docs/browser.md, "Durability"):
//
//   - The catalog is read under the shared catalog lock and changed under the
//     exclusive one, so no tab of ours ever reads a catalog while another
//     replaces it.
//   - A current catalog that is missing, empty or damaged is never "no
//     disks": it is recovered from the generation before it, else rebuilt
//     from the disk files, and the recovery is reported. A catalog written
//     by a newer program is never rewritten.
//   - A new disk's file is pending from its first byte until the catalog
//     names it: protected by a lease while its tab lives, and removed by a
//     later sweep only when its tab died before the commit. Nothing else is
//     ever removed but by an explicit delete.

// readRetries bound how long a reader waits for a catalog that looks
// missing or damaged to become whole: another program sharing the origin
// (Aero) may be replacing it without our lock. Only the failure path waits.
var readRetries = []time.Duration{10 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond, 100 * time.Millisecond}

// Recovery reports a catalog rebuilt because its current generation could
// not be used.
type Recovery struct {
	// Reason is why the current generation was not used.
	Reason string `json:"reason"`
	// From is the generation the disks were taken from
	// ("metadata.json.prev", …), or "" when none was usable.
	From string `json:"from"`
	// Recovered are the disks rebuilt from their files: in no usable
	// generation, but present.
	Recovered []RecoveredDisk `json:"recovered"`
	// Unlisted are records of the generation used whose file is gone:
	// they are no longer listed (nothing was deleted).
	Unlisted []string `json:"unlisted"`
	// Kept names where the unusable catalog's bytes were kept ("" when it
	// had none).
	Kept string `json:"kept,omitempty"`
}

// RecoveredDisk is one disk rebuilt from its file.
type RecoveredDisk struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	FileName string `json:"fileName"`
	Format   string `json:"format"`
	// Problem says why the file's header could not be read, if it could not.
	Problem string `json:"problem,omitempty"`
}

// OpenReport is what opening the manager found and repaired.
type OpenReport struct {
	// Recovery is set when the catalog had to be recovered.
	Recovery *Recovery `json:"recovery,omitempty"`
	// Finished are pending files whose commit had reached the catalog when
	// their tab died: they were made the disk files the catalog names.
	Finished []string `json:"finished,omitempty"`
	// Swept are pending files of imports whose tab died before the commit:
	// this manager's own unfinished work, removed.
	Swept []string `json:"swept,omitempty"`
	// Notes are parts of the catalog that could not be used (kept as they
	// are in the file).
	Notes []string `json:"notes,omitempty"`
	// StrayLayers are layer files no record names (not even as garbage):
	// no proof they are garbage, so they are left where they are.
	StrayLayers []string `json:"strayLayers,omitempty"`
}

// loaded is the catalog as read under the lock.
type loaded struct {
	cat  *catalog.Catalog
	gen  Generation // the current generation as read
	good bool       // gen parsed as a catalog
}

// fresh reports that the store has never held a catalog or a disk: every
// generation missing, no disk file, no pending file.
func (m *Manager) fresh(gens []Generation) (bool, error) {
	for _, g := range gens {
		if !g.Missing {
			return false, nil
		}
	}
	files, err := m.b.Files()
	if err != nil || len(files) > 0 {
		return false, err
	}
	abandoned, err := m.b.Abandoned()
	return err == nil && len(abandoned) == 0, err
}

// load reads the current catalog with the lock held. needRecovery reports
// a current generation that is not a catalog (after retries); a catalog
// written by a newer program is an error, never recovered over.
func (m *Manager) load() (l loaded, needRecovery error, err error) {
	for attempt := 0; ; attempt++ {
		gens, err := m.b.CatalogGenerations(false)
		if err != nil {
			return l, nil, err
		}
		if len(gens) == 0 {
			return l, nil, errors.New("the backend returned no catalog generation")
		}
		l.gen = gens[0]
		var why error
		switch {
		case l.gen.Err != nil:
			why = fmt.Errorf("%s could not be read: %v", l.gen.Name, l.gen.Err)
		case l.gen.Missing:
			if gens, err = m.b.CatalogGenerations(true); err != nil {
				return l, nil, err
			}
			if ok, err := m.fresh(gens); err != nil {
				return l, nil, err
			} else if ok {
				return loaded{cat: catalog.New(), gen: l.gen}, nil, nil
			}
			why = fmt.Errorf("%s is missing", l.gen.Name)
		default:
			c, err := m.parse(l.gen.Data)
			if errors.Is(err, catalog.ErrNewer) {
				return l, nil, fmt.Errorf("%s: %w", l.gen.Name, err)
			}
			if err == nil {
				return loaded{cat: c, gen: l.gen, good: true}, nil, nil
			}
			why = fmt.Errorf("%s: %w", l.gen.Name, err)
		}
		if attempt >= len(readRetries) {
			return l, why, nil
		}
		time.Sleep(readRetries[attempt])
	}
}

// read returns the current catalog, read under the shared lock (and
// recovered under the exclusive one if it has to be).
func (m *Manager) read() (*catalog.Catalog, error) {
	release, err := m.b.LockCatalog(false)
	if err != nil {
		return nil, err
	}
	l, needRecovery, err := m.load()
	release()
	if err != nil {
		return nil, err
	}
	if needRecovery == nil {
		m.dropGone(l.cat)
		return l.cat, nil
	}
	var c *catalog.Catalog
	err = m.update(func(cur *catalog.Catalog) error { c = cur; return nil }, nil)
	return c, err
}

// update runs fn on the current catalog under the exclusive lock and stores
// the result if fn succeeds; then after, still under the lock. If after
// fails, the catalog is put back as it was and after's error returned.
func (m *Manager) update(fn func(*catalog.Catalog) error, after func() error) error {
	return m.locked(func(l loaded) error { return m.write(l, fn, after) })
}

// locked runs fn on the current catalog (recovered first if it has to be)
// with the exclusive lock held.
func (m *Manager) locked(fn func(loaded) error) error {
	release, err := m.b.LockCatalog(true)
	if err != nil {
		return err
	}
	defer release()
	l, err := m.loadForWrite()
	if err != nil {
		return err
	}
	return fn(l)
}

// write is update's body, with the lock held.
func (m *Manager) write(l loaded, fn func(*catalog.Catalog) error, after func() error) error {
	if err := fn(l.cat); err != nil {
		return err
	}
	forgotten := m.dropGone(l.cat)
	old := m.previous(l)
	if err := m.b.WriteCatalog(l.gen, old, l.cat); err != nil {
		return err
	}
	m.mu.Lock()
	for _, f := range forgotten {
		delete(m.gone, f)
	}
	m.latest = l.cat.Clone()
	m.mu.Unlock()
	if after == nil {
		return nil
	}
	if err := after(); err != nil {
		// The new catalog names a file that did not come to be: go back.
		if old == nil {
			old = catalog.New()
		}
		if rerr := m.b.WriteCatalog(Generation{Name: l.gen.Name, Data: mustMarshal(l.cat)}, l.cat, old); rerr != nil {
			return fmt.Errorf("%w (and restoring the catalog failed: %v)", err, rerr)
		}
		return err
	}
	return nil
}

// previous is the catalog before fn changed it, parsed again.
func (m *Manager) previous(l loaded) *catalog.Catalog {
	if !l.good {
		return nil
	}
	c, err := m.parse(l.gen.Data)
	if err != nil {
		return nil
	}
	return c
}

// recent is disk id's record as this tab last read or wrote it, with no
// I/O (else as read now): a hint for the work an operation does before its
// commit, which the commit checks against the catalog it changes. Another
// tab may have changed the record since.
func (m *Manager) recent(id string) (*catalog.Disk, error) {
	m.mu.Lock()
	var d *catalog.Disk
	if m.latest != nil {
		if cur := m.latest.Disks[id]; cur != nil {
			d = cur.Clone()
		}
	}
	m.mu.Unlock()
	if d != nil {
		return d, nil
	}
	return m.Get(id)
}

// parse is catalog.Parse, remembering the last good catalog parsed: an
// operation reads the catalog two or three times (a read, then the read
// under the exclusive lock, then the catalog before its change), and
// parsing is what costs (milliseconds in wasm) where a clone does not.
func (m *Manager) parse(data []byte) (*catalog.Catalog, error) {
	m.mu.Lock()
	if m.parsed != nil && bytes.Equal(m.parsedFrom, data) {
		c := m.parsed.Clone()
		m.mu.Unlock()
		return c, nil
	}
	m.mu.Unlock()
	c, err := catalog.Parse(data)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.parsed, m.parsedFrom = c.Clone(), data
	m.latest = m.parsed
	m.mu.Unlock()
	return c, nil
}

func mustMarshal(c *catalog.Catalog) []byte {
	b, _ := c.Marshal()
	return b
}

// loadForWrite is load with the exclusive lock held, recovering (and
// storing the recovered catalog) when the current generation is unusable.
func (m *Manager) loadForWrite() (loaded, error) {
	l, needRecovery, err := m.load()
	if err != nil || needRecovery == nil {
		return l, err
	}
	rec, c, err := m.recover(needRecovery)
	if err != nil {
		return l, err
	}
	if err := m.b.WriteCatalog(l.gen, nil, c); err != nil {
		return l, err
	}
	if rec.Kept == "" && len(l.gen.Data) > 0 {
		rec.Kept = keptName(m.b)
	}
	m.noteRecovery(rec)
	// Read back what was stored, so the caller's catalog is the stored one.
	l2, again, err := m.load()
	if err == nil && again != nil {
		err = fmt.Errorf("the recovered catalog could not be read back: %v", again)
	}
	return l2, err
}

// keptName is where a backend keeps an unusable catalog's bytes.
func keptName(b Backend) string {
	if k, ok := b.(interface{ KeptCatalogName() string }); ok {
		return k.KeptCatalogName()
	}
	return ""
}

func (m *Manager) noteRecovery(r *Recovery) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.report.Recovery = r
}

// recover builds a catalog when the current generation cannot be used: the
// newest other generation that is a catalog, plus a record for every disk
// file that nothing names, minus records whose file is gone. It removes
// nothing and touches no file.
func (m *Manager) recover(why error) (*Recovery, *catalog.Catalog, error) {
	rec := &Recovery{Reason: why.Error(), Recovered: []RecoveredDisk{}, Unlisted: []string{}}
	gens, err := m.b.CatalogGenerations(true)
	if err != nil {
		return nil, nil, err
	}
	c := catalog.New()
	for _, g := range gens[1:] {
		if g.Missing || g.Err != nil {
			continue
		}
		if base, err := catalog.Parse(g.Data); err == nil {
			c, rec.From = base, g.Name
			break
		}
	}
	files, err := m.b.Files()
	if err != nil {
		return nil, nil, err
	}
	abandoned, err := m.b.Abandoned()
	if err != nil {
		return nil, nil, err
	}
	present := map[string]bool{}
	for _, f := range append(files, abandoned...) {
		present[f] = true
	}
	for _, d := range c.List() {
		if d.FileName != "" && !present[d.FileName] && !m.sparse() {
			delete(c.Disks, d.ID)
			rec.Unlisted = append(rec.Unlisted, d.ID)
		}
	}
	now := m.nowMs()
	for _, f := range files {
		stem := catalog.FileStem(f)
		if !recoverable(f) || c.Names(f, "") || c.Disks[stem] != nil {
			continue
		}
		d, problem := m.probe(f)
		d.Recovered = &catalog.Recovered{AtMs: now, From: "file"}
		d.CreatedAtMs, d.LastUsedAtMs = now, now
		if problem != "" {
			d.Warnings = append(d.Warnings, "its header could not be read: "+problem)
		}
		if err := c.Add(d); err != nil {
			continue
		}
		rec.Recovered = append(rec.Recovered, RecoveredDisk{ID: d.ID, Name: d.Name, FileName: f, Format: d.Format, Problem: problem})
	}
	sort.Slice(rec.Recovered, func(i, j int) bool { return rec.Recovered[i].ID < rec.Recovered[j].ID })
	return rec, c, nil
}

// knownExtensions are the disk file extensions of the Aero layout.
var knownExtensions = map[string]formats.Format{
	"img": formats.Raw, "iso": formats.ISO, "qcow2": formats.Qcow2, "vhd": formats.VHD,
	"dc42": formats.DC42, "aerospar": formats.AeroSpar,
}

// recoverable reports whether a file is named like a disk file of the Aero
// layout (<id>.<ext>, or a bare id where the backend has no extensions).
// Anything else — another tool's cache, manifest or overlay files — is
// never made a disk.
func recoverable(name string) bool {
	switch strings.Count(name, ".") {
	case 0:
		return name != ""
	case 1:
		_, ok := knownExtensions[strings.TrimPrefix(path.Ext(name), ".")]
		return ok && !strings.HasPrefix(name, ".")
	}
	return false
}

// probe builds a record for a file from its header: the format its
// extension names (or that its content shows), its logical size. A file
// whose header cannot be read is still recovered, with the problem said.
func (m *Manager) probe(fileName string) (*catalog.Disk, string) {
	stem := catalog.FileStem(fileName)
	f := knownExtensions[strings.TrimPrefix(path.Ext(fileName), ".")]
	d := &catalog.Disk{ID: stem, Name: stem, Backend: m.b.Name(), FileName: fileName, Format: string(f)}
	file, err := m.b.Open(fileName, false)
	if err != nil {
		d.Kind = defaultKind(f, 0)
		return d, err.Error()
	}
	defer file.Close()
	size, err := file.Size()
	if err != nil {
		d.Kind = defaultKind(f, 0)
		return d, err.Error()
	}
	d.FileSizeBytes, d.StoredBytes, d.SizeBytes = size, size, size
	img, err := formats.Open(formats.Source{Name: fileName, R: file, Size: size}, readOptions(formats.Options{Format: f}))
	if err != nil && d.Format == "" {
		d.Format = string(formats.Raw)
	}
	if err != nil {
		d.Kind = defaultKind(formats.Format(d.Format), size)
		return d, err.Error()
	}
	defer img.Close()
	d.Format, d.SizeBytes = string(img.Info().Format), img.Size()
	d.Kind = defaultKind(img.Info().Format, img.Size())
	if f == "" && !strings.Contains(fileName, ".") {
		// A backend keyed by id alone (IndexedDB): the record still gets
		// the layout's <id>.<ext> name.
		d.FileName = fileName + "." + extension(img.Info().Format)
	}
	return d, ""
}

// sweep settles pending files whose tab died, under the exclusive lock:
// one the catalog names is made that disk's file (its commit was cut short
// after the catalog was stored), one nothing names is removed — it is this
// manager's own unfinished import. A pending file whose id a record uses
// for another file is left alone: that is not proof.
func (m *Manager) sweep() error { return m.locked(m.settle) }

func (m *Manager) settle(l loaded) error {
	m.mu.Lock()
	m.report.Notes = append([]string(nil), l.cat.Notes...)
	m.mu.Unlock()
	abandoned, err := m.b.Abandoned()
	if err != nil {
		return err
	}
	for _, f := range abandoned {
		var named, sameID bool
		for id, d := range l.cat.Disks {
			named = named || d.FileName == f || slices.Contains(recordLayerFiles(d), f)
			sameID = sameID || id == catalog.FileStem(f) || catalog.FileStem(d.FileName) == catalog.FileStem(f)
		}
		if !named && sameID {
			continue
		}
		if err := m.b.Settle(f, named); err != nil {
			return err
		}
		m.mu.Lock()
		if named {
			m.report.Finished = append(m.report.Finished, f)
		} else {
			m.report.Swept = append(m.report.Swept, f)
		}
		m.mu.Unlock()
	}
	files, err := m.b.Files()
	if err != nil {
		return err
	}
	var stray []string
	for _, f := range files {
		if isLayerFile(f) && !layerNamed(l.cat, f) {
			stray = append(stray, f)
		}
	}
	m.mu.Lock()
	m.report.StrayLayers = stray
	m.mu.Unlock()
	return nil
}

// layerNamed: some record of c names layer file f, as a layer or garbage.
func layerNamed(c *catalog.Catalog, f string) bool {
	for _, d := range c.Disks {
		if slices.Contains(recordLayerFiles(d), f) || slices.Contains(d.Garbage, f) {
			return true
		}
	}
	return false
}

// Report returns what opening the manager found and repaired (and any
// recovery since).
func (m *Manager) Report() OpenReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.report
	r.Finished = append([]string(nil), r.Finished...)
	r.Swept = append([]string(nil), r.Swept...)
	r.Notes = append([]string(nil), r.Notes...)
	r.StrayLayers = append([]string(nil), r.StrayLayers...)
	return r
}
