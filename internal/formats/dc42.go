package formats

import "io"

func probeDC42(r io.ReaderAt, size int64) bool { return false }
func openDC42(o *opener, src Source) (Image, error) { return nil, &unsupportedYet{"dc42"} }
