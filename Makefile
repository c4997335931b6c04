# aerodisk — see README.md. `make test` installs what the tests need.
GO        ?= go
FUZZTIME  ?= 60s
PORT      ?= 8080

.PHONY: all build test deps fuzz bench-native serve clean

all: build

build:
	$(GO) build -o bin/aerodisk ./cmd/aerodisk

deps:
	./scripts/install-deps.sh
	$(GO) mod download

# Every test: unit, format readers against qemu-img, fuzz seed corpora, CLI.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# Runs each fuzz target for FUZZTIME (go test allows one -fuzz target per run).
FUZZ_TARGETS = \
	./internal/formats:FuzzQcow2 \
	./internal/formats:FuzzVHD \
	./internal/formats:FuzzDC42 \
	./internal/formats:FuzzISO \
	./internal/formats:FuzzDetectAndRead \
	./internal/sparse:FuzzAeroSpar
fuzz: deps
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "== $$fn ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# Native conversion speed against qemu-img on a 2 GiB qcow2 holding ~512 MiB.
bench-native: deps
	$(GO) run ./cmd/bench-native

serve:
	@echo "make serve: the browser page arrives with the browser-engine issue;"
	@echo "until then use the CLI: go run ./cmd/aerodisk --help"

clean:
	rm -rf bin
