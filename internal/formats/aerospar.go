package formats

import "io"

// placeholder until the AEROSPAR reader lands
func probeAeroSpar(r io.ReaderAt, size int64) bool { return false }
func openAeroSpar(o *opener, src Source) (Image, error) {
	return nil, &unsupportedYet{"aerospar"}
}
