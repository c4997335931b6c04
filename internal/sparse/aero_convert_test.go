package sparse_test

// Conversion output against Aero's readers (testutil.AeroCheck, internal/testutil/aerorules.go).
// An external test package, so that it can use internal/convert.

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"aerodisk/internal/convert"
	"aerodisk/internal/diskerr"
	"aerodisk/internal/formats"
	"aerodisk/internal/sparse"
	"aerodisk/internal/storage"
	"aerodisk/internal/testutil"
)

func rawImage(t *testing.T, data []byte) formats.Image {
	t.Helper()
	img, err := formats.Open(formats.Source{Name: "in.img", R: bytes.NewReader(data), Size: int64(len(data))}, formats.Options{Format: formats.Raw})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestAeroAcceptsConverted: converting an all-zero image and an image with
// data gives files all of Aero's checks accept, with the same content.
func TestAeroAcceptsConverted(t *testing.T) {
	withData := testutil.MixedData(6<<20+1536, 9)
	clear(withData[1<<20 : 3<<20])
	for _, c := range []struct {
		name string
		data []byte
		bs   uint32
		size int // expected file size, 0: don't care
	}{
		{"all zero 64M", make([]byte, 64<<20), 0, 1 << 20},
		{"all zero 512", make([]byte, 512), 0, 1 << 20},
		{"all zero 4K blocks", make([]byte, 1<<20), 4096, 4096},
		{"with data", withData, 0, 0},
		{"with data 4K blocks", withData, 4096, 0},
		{"with data 512 blocks", withData[:1<<20], 512, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := storage.NewMem(nil)
			if _, err := convert.ToAeroSpar(context.Background(), rawImage(t, c.data), st, c.bs, convert.Options{}); err != nil {
				t.Fatal(err)
			}
			n := int64(len(st.Bytes()))
			if c.size != 0 && n != int64(c.size) {
				t.Fatalf("file is %d bytes, want %d", n, c.size)
			}
			if err := testutil.AeroCheck(st, n); err != nil {
				t.Fatalf("Aero refuses the converted file: %v", err)
			}
			got, err := testutil.AeroContent(st, n)
			if err != nil || !bytes.Equal(got, c.data) {
				t.Fatalf("Aero reads different content (%v)", err)
			}
			d, err := sparse.Open(st, false)
			if err != nil {
				t.Fatal(err)
			}
			if want, err := sparse.FileSize(d.Size(), d.BlockSize(), d.AllocatedBlocks()); err != nil || want != n {
				t.Fatalf("FileSize %d, %v; file %d", want, err, n)
			}
		})
	}
}

// TestAeroRefusedBlockSize: a 512-byte block size for an 8 GiB image makes
// a table Aero's TS reader refuses: conversion fails with ErrBadSize.
func TestAeroRefusedBlockSize(t *testing.T) {
	st := storage.NewMem(nil)
	if _, err := sparse.NewWriter(st, 8<<30, 512); !errors.Is(err, diskerr.ErrBadSize) {
		t.Fatalf("NewWriter(8 GiB, 512) = %v", err)
	}
	if _, err := sparse.Create(st, 8<<30, 512); !errors.Is(err, diskerr.ErrBadSize) {
		t.Fatalf("Create(8 GiB, 512) = %v", err)
	}
	if len(st.Bytes()) != 0 {
		t.Fatal("something was written")
	}
}
