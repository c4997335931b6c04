package formats

import "io"

// placeholder until the VHD reader lands
func probeVHD(r io.ReaderAt, size int64) bool { return false }
func openVHD(o *opener, src Source) (Image, error) {
	return nil, &unsupportedYet{"vhd"}
}
