module aerodisk

go 1.25

require github.com/klauspost/compress v1.20.3

require github.com/hack-pad/safejs v0.1.1 // indirect
