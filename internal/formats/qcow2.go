package formats

import "io"

// placeholder until the qcow2 reader lands
func probeQcow2(r io.ReaderAt, size int64) bool { return false }
func openQcow2(o *opener, src Source) (Image, error) {
	return nil, &unsupportedYet{"qcow2"}
}
