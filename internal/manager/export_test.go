package manager

import "time"

// SetReadRetries replaces the catalog read retries (tests) and returns a
// function that restores them.
func SetReadRetries(d []time.Duration) func() {
	old := readRetries
	readRetries = d
	return func() { readRetries = old }
}
