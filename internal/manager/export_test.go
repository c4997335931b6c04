package manager

import (
	"time"

	"aerodisk/internal/catalog"
)

// SetReadRetries replaces the catalog read retries (tests) and returns a
// function that restores them.
func SetReadRetries(d []time.Duration) func() {
	old := readRetries
	readRetries = d
	return func() { readRetries = old }
}

// OpenHeadForTest opens disk id's head layer for writing, as a machine's
// device would (tests write through it); done closes it.
func (m *Manager) OpenHeadForTest(id string) (top interface {
	WriteAt(p []byte, off int64) (int, error)
	Discard(off, n int64) error
}, done func() error, err error) {
	cat, err := m.read()
	if err != nil {
		return nil, nil, err
	}
	d, err := cat.Get(id)
	if err != nil {
		return nil, nil, err
	}
	v, err := m.openView(cat, d, headOf(d), true)
	if err != nil {
		return nil, nil, err
	}
	return v.layers[len(v.layers)-1], v.Close, nil
}

// ChangeRecordForTest changes disk id's record under the catalog lock.
func (m *Manager) ChangeRecordForTest(id string, fn func(d *catalog.Disk)) error {
	return m.update(func(c *catalog.Catalog) error {
		d, err := c.Get(id)
		if err != nil {
			return err
		}
		fn(d)
		return nil
	}, nil)
}

var LayerFileName = layerFileName
var IsLayerFile = isLayerFile
