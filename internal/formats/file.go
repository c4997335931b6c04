package formats

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"aerodisk/internal/diskerr"
)

// Opening images from the host file system (the CLI and tests). In the
// browser, sources come from storage backends instead.

// FileSource opens path read-only as a Source named by its absolute,
// symlink-resolved path (so backing cycles are recognised however a file is
// named).
func FileSource(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return Source{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return Source{}, err
	}
	if fi.IsDir() {
		f.Close()
		return Source{}, fmt.Errorf("%s is a directory", path)
	}
	name := path
	if abs, err := filepath.Abs(path); err == nil {
		name = abs
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			name = real
		}
	}
	return Source{Name: name, R: f, Size: fi.Size(), Close: f.Close}, nil
}

// FileResolver finds a backing file the way qemu-img does: an absolute name
// as it is, a relative one against the directory of the image that names it.
// Windows-style names recorded by VHD tools (`.\base.vhd`, `C:\vms\base.vhd`)
// fall back to their last component in that directory.
func FileResolver(parent, backing string) (Source, error) {
	dir := filepath.Dir(parent)
	candidates := []string{backing}
	if !filepath.IsAbs(backing) {
		candidates[0] = filepath.Join(dir, backing)
	}
	if i := strings.LastIndexAny(backing, `\/:`); i >= 0 && strings.ContainsAny(backing, `\:`) {
		candidates = append(candidates, filepath.Join(dir, backing[i+1:]))
	}
	var firstErr error
	for _, p := range candidates {
		src, err := FileSource(p)
		if err == nil {
			return src, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return Source{}, diskerr.New("", ErrBackingNotFound, "%q (backing file of %s): %v", backing, parent, firstErr)
}

// OpenFile opens the image at path; backing files are found with
// FileResolver unless opts.Resolve is set. Close closes the file too.
func OpenFile(path string, opts Options) (Image, error) {
	src, err := FileSource(path)
	if err != nil {
		return nil, err
	}
	if opts.Resolve == nil {
		opts.Resolve = FileResolver
	}
	img, err := Open(src, opts)
	if err != nil {
		src.Close()
		return nil, err
	}
	return &ownedImage{Image: img, closeSrc: src.Close}, nil
}
