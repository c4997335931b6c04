package formats

import "io"

func probeISO(r io.ReaderAt, size int64) bool { return false }
func openISO(o *opener, src Source) (Image, error) { return nil, &unsupportedYet{"iso"} }
