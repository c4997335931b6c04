package formats

// unsupportedYet is temporary while readers are written in parallel.
type unsupportedYet struct{ f string }

func (u *unsupportedYet) Error() string { return u.f + " not implemented yet" }
func (u *unsupportedYet) Unwrap() error { return ErrUnsupported }
