package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"aerodisk/internal/checksum"
	"aerodisk/internal/convert"
	"aerodisk/internal/formats"
	"aerodisk/internal/sizefmt"
	"aerodisk/internal/sparse"
)

func oneArg(f *flags, what string) (string, error) {
	if len(f.args) != 1 {
		return "", usageError(fmt.Sprintf("expected one %s, got %d arguments", what, len(f.args)))
	}
	return f.args[0], nil
}

// blockSizeOption reads --block-size (0 when absent: sparse.ChooseBlockSize).
// sparse validates the value itself (checkAeroSpar).
func blockSizeOption(f *flags) (uint32, error) {
	bs, ok := f.values["--block-size"]
	if !ok {
		return 0, nil
	}
	n, err := sizefmt.Parse(bs)
	if err != nil || n > 1<<30 {
		return 0, usageError(fmt.Sprintf("bad --block-size %q", bs))
	}
	return uint32(n), nil
}

// checkAeroSpar refuses, before any output exists, an AEROSPAR layout that
// sparse would refuse: a bad block size, or one whose table Aero's readers
// cannot load (ErrBadSize: exit status 1).
func checkAeroSpar(f *flags, size int64, blockSize uint32) error {
	if _, err := sparse.BlankSize(size, blockSize); err != nil {
		if bs, ok := f.values["--block-size"]; ok {
			return fmt.Errorf("--block-size %s: %w", bs, err)
		}
		return err
	}
	return nil
}

// openFileArg opens the one FILE argument with the -f and
// --accept-bad-checksum options.
func openFileArg(f *flags) (string, formats.Image, error) {
	path, err := oneArg(f, "FILE")
	if err != nil {
		return "", nil, err
	}
	opts, err := formatOption(f)
	if err != nil {
		return "", nil, err
	}
	img, err := openImage(path, opts)
	return path, img, err
}

func formatOption(f *flags) (formats.Options, error) {
	var opts formats.Options
	if name, ok := f.values["-f"]; ok {
		ff, err := formats.ParseFormat(name)
		if err != nil {
			return opts, err
		}
		opts.Format = ff
	}
	opts.AcceptBadChecksum = f.bools["--accept-bad-checksum"]
	return opts, nil
}

// allocatedBytes sums the Data extents: what a sparse copy has to store.
func allocatedBytes(img formats.Image) (int64, error) {
	var n int64
	for e, err := range formats.Extents(img, 0, img.Size()) {
		if err != nil {
			return 0, err
		}
		if e.Kind == formats.Data {
			n += e.Len
		}
	}
	return n, nil
}

func runInfo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"-f"}, []string{"--json", "--accept-bad-checksum"})
	if err != nil {
		return err
	}
	path, img, err := openFileArg(f)
	if err != nil {
		return err
	}
	defer img.Close()
	info := img.Info()
	alloc, err := allocatedBytes(img)
	if err != nil {
		return err
	}
	if f.bools["--json"] {
		out := struct {
			Filename string `json:"filename"`
			formats.Info
			Allocated int64 `json:"allocated-bytes"`
		}{path, info, alloc}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "    ")
		return enc.Encode(out)
	}
	fmt.Fprintf(stdout, "image: %s\n", path)
	printInfo(stdout, info, alloc, "")
	return nil
}

func printInfo(w io.Writer, info formats.Info, alloc int64, indent string) {
	fmt.Fprintf(w, "%sfile format: %s\n", indent, info.Format)
	fmt.Fprintf(w, "%svirtual size: %s (%d bytes)\n", indent, sizefmt.Human(info.VirtualSize), info.VirtualSize)
	fmt.Fprintf(w, "%sfile size: %s (%d bytes)\n", indent, sizefmt.Human(info.FileSize), info.FileSize)
	if alloc >= 0 {
		fmt.Fprintf(w, "%sallocated: %s (%d bytes)\n", indent, sizefmt.Human(alloc), alloc)
	}
	if info.ClusterSize > 0 {
		fmt.Fprintf(w, "%scluster_size: %d\n", indent, info.ClusterSize)
	}
	if info.BackingFile != "" {
		fmt.Fprintf(w, "%sbacking file: %s\n", indent, info.BackingFile)
	}
	if len(info.Details) > 0 {
		fmt.Fprintf(w, "%sFormat specific information:\n", indent)
		keys := make([]string, 0, len(info.Details))
		for k := range info.Details {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s    %s: %v\n", indent, k, info.Details[k])
		}
	}
	if info.Backing != nil {
		fmt.Fprintf(w, "%sbacking image:\n", indent)
		printInfo(w, *info.Backing, -1, indent+"    ")
	}
}

func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"-f", "-O", "--block-size"}, []string{"-p", "--accept-bad-checksum"})
	if err != nil {
		return err
	}
	if len(f.args) != 2 {
		return usageError("convert needs IN and OUT")
	}
	in, out := f.args[0], f.args[1]
	opts, err := formatOption(f)
	if err != nil {
		return err
	}
	target, ok := f.values["-O"]
	if !ok {
		return usageError("convert needs -O raw|aerospar")
	}
	blockSize, err := blockSizeOption(f)
	if err != nil {
		return err
	}
	img, err := openImage(in, opts)
	if err != nil {
		return err
	}
	defer img.Close()
	if target == "aerospar" {
		if err := checkAeroSpar(f, img.Size(), blockSize); err != nil {
			return err
		}
	}
	dst, err := createOutput(out)
	if err != nil {
		return err
	}
	defer dst.Discard()
	copts := progressOptions(f, stderr)
	switch target {
	case "raw":
		_, err = convert.ToRaw(ctx, img, dst.Storage(), copts)
	case "aerospar":
		_, err = convert.ToAeroSpar(ctx, img, dst.Storage(), blockSize, copts)
	default:
		return usageError(fmt.Sprintf("cannot write format %q (want raw or aerospar)", target))
	}
	if f.bools["-p"] {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	return dst.Commit()
}

// progressOptions shows progress on stderr when -p was given.
func progressOptions(f *flags, stderr io.Writer) convert.Options {
	if !f.bools["-p"] {
		return convert.Options{}
	}
	return convert.Options{Progress: progressPrinter(stderr)}
}

// progressPrinter prints qemu-img style "    (12.34/100%)" updates.
func progressPrinter(w io.Writer) func(convert.Progress) {
	return func(p convert.Progress) {
		pct := 100.0
		if p.Total > 0 {
			pct = float64(p.Done) * 100 / float64(p.Total)
		}
		fmt.Fprintf(w, "    (%.2f/100%%)\r", pct)
	}
}

func runCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"-O", "--size", "--block-size", "-b"}, nil)
	if err != nil {
		return err
	}
	out, err := oneArg(f, "OUT")
	if err != nil {
		return err
	}
	if base, ok := f.values["-b"]; ok {
		return createOverlay(f, base, out)
	}
	sizeArg, ok := f.values["--size"]
	if !ok {
		return usageError("create needs --size (e.g. 60G, 1440K)")
	}
	size, err := sizefmt.Parse(sizeArg)
	if err != nil {
		return err
	}
	if size%512 != 0 {
		return fmt.Errorf("size %d is not a multiple of 512 bytes", size)
	}
	blockSize, err := blockSizeOption(f)
	if err != nil {
		return err
	}
	target := f.values["-O"]
	if target == "aerospar" || target == "" {
		if err := checkAeroSpar(f, size, blockSize); err != nil {
			return err
		}
	}
	dst, err := createOutput(out)
	if err != nil {
		return err
	}
	defer dst.Discard()
	switch target {
	case "aerospar", "":
		d, err := sparse.Create(dst.Storage(), size, blockSize)
		if err != nil {
			return err
		}
		if err := d.Close(); err != nil {
			return err
		}
	case "raw":
		if err := dst.Storage().Truncate(size); err != nil {
			return err
		}
	default:
		return usageError(fmt.Sprintf("cannot create format %q (want aerospar or raw)", target))
	}
	return dst.Commit()
}

func runChecksum(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"-f"}, []string{"-p", "--accept-bad-checksum"})
	if err != nil {
		return err
	}
	path, img, err := openFileArg(f)
	if err != nil {
		return err
	}
	defer img.Close()
	copts := progressOptions(f, stderr)
	res, err := convert.Convert(ctx, img, nil, copts)
	if f.bools["-p"] {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s  %s\n", checksum.Hex(res.Checksum), path)
	return nil
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, []string{"-f"}, []string{"--accept-bad-checksum"})
	if err != nil {
		return err
	}
	start := time.Now()
	_, img, err := openFileArg(f)
	if err != nil {
		return err
	}
	defer img.Close()
	// Opening validated the headers and tables; reading every allocated
	// extent validates the rest (L2 tables, bitmaps, compressed clusters).
	res, err := convert.Convert(ctx, img, nil, convert.Options{})
	if err != nil {
		return err
	}
	info := img.Info()
	fmt.Fprintf(stdout, "No errors were found on the image.\n%s, %s (%d bytes), crc32 %s, checked in %v\n",
		info.Format, sizefmt.Human(img.Size()), img.Size(), checksum.Hex(res.Checksum), time.Since(start).Round(time.Millisecond))
	return nil
}
