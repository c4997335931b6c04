// Command aerodisk inspects, converts, creates and checksums disk images with
// the same core the browser worker runs. Its conventions follow qemu-img:
//
//	aerodisk info [--json] FILE
//	aerodisk convert [-f FMT] -O raw|aerospar [-p] IN OUT
//	aerodisk create -O aerospar|raw --size 60G OUT
//	aerodisk checksum FILE
//	aerodisk check FILE
//	aerodisk serve [--dir DIR] [--port PORT]
//
// Errors go to stderr with a non-zero exit status. Outputs are written under a
// temporary name beside OUT and renamed only when complete.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"aerodisk/internal/diskerr"
)

const usage = `usage:
  aerodisk info [--json] FILE              describe an image
  aerodisk convert [-f FMT] -O raw|aerospar [-p] IN OUT
                                           convert an image (-p: progress on stderr)
  aerodisk create -O aerospar|raw --size SIZE OUT
                                           create a blank disk (60G, 512M, 1440K, ...)
  aerodisk create [-O aerolayr] -b BASE OUT
                                           create an overlay: OUT's unwritten blocks read
                                           through to BASE (found relative to OUT)
  aerodisk commit [-p] OVERLAY             copy an overlay's writes into its raw or
                                           AEROSPAR base, then empty the overlay
  aerodisk checksum FILE                   CRC32 of the logical content
  aerodisk check FILE                      validate an image's structure
  aerodisk serve [--dir DIR] [--port PORT|--addr HOST:PORT]
                                           serve the page on http://127.0.0.1:8080/
formats: raw, iso, qcow2, vhd (vpc), dc42, aerospar, aerolayr (detected from content)
`

// Exit statuses: 1 for usage and I/O errors, 2 when an image is corrupt
// (qemu-img check's convention), 3 when it uses an unsupported feature.
const (
	exitOK          = 0
	exitError       = 1
	exitCorrupt     = 2
	exitUnsupported = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type command struct {
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"info":     {runInfo},
	"convert":  {runConvert},
	"create":   {runCreate},
	"checksum": {runChecksum},
	"check":    {runCheck},
	"commit":   {runCommit},
	"serve":    {runServe},
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "aerodisk: unknown command %q\n%s", args[0], usage)
		return exitError
	}
	if err := cmd.run(ctx, args[1:], stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "aerodisk %s: %v\n", args[0], err)
		return exitStatus(err)
	}
	return exitOK
}

func exitStatus(err error) int {
	switch {
	case errors.Is(err, diskerr.ErrCorrupt):
		return exitCorrupt
	case errors.Is(err, diskerr.ErrUnsupported):
		return exitUnsupported
	}
	return exitError
}

// usageError is a bad command line.
type usageError string

func (u usageError) Error() string { return string(u) + "\n" + usage }

// flags parses qemu-img style arguments: options may come before or between
// positional arguments; valued options take the next argument or "=value".
type flags struct {
	values map[string]string
	bools  map[string]bool
	args   []string
}

func parseFlags(args []string, valued, boolean []string) (*flags, error) {
	f := &flags{values: map[string]string{}, bools: map[string]bool{}}
	isIn := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			f.args = append(f.args, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			f.args = append(f.args, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		switch {
		case isIn(boolean, name) && !hasVal:
			f.bools[name] = true
		case isIn(valued, name):
			if !hasVal {
				if i+1 >= len(args) {
					return nil, usageError(fmt.Sprintf("option %s needs a value", name))
				}
				i++
				val = args[i]
			}
			f.values[name] = val
		default:
			return nil, usageError(fmt.Sprintf("unknown option %s", a))
		}
	}
	return f, nil
}
