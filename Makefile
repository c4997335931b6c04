# aerodisk — see README.md. `make test` installs what the tests need.
GO        ?= go
FUZZTIME  ?= 60s
PORT      ?= 8080

.PHONY: all build test types lint deps fuzz bench-native bench wasm serve clean

all: build

build:
	$(GO) build -o bin/aerodisk ./cmd/aerodisk

deps:
	./scripts/install-deps.sh
	$(GO) mod download

# Every test: the API's types, unit, format readers against qemu-img, fuzz
# seed corpora, CLI, and the browser suite (internal/browsertest) in Debian's
# headless chromium. The browser tests build their own wasm; `wasm` here
# proves `make serve` works. `types` runs after deps, which installs npm.
test: deps wasm
	$(MAKE) --no-print-directory types
	$(MAKE) --no-print-directory lint
	$(GO) test -count=1 -timeout 20m ./...

# go vet and staticcheck (pinned), natively and for the worker's js/wasm
# packages.
STATICCHECK = bin/staticcheck-$(STATICCHECK_VERSION)
STATICCHECK_VERSION = v0.8.2
lint: $(STATICCHECK)
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./wasm ./internal/opfs ./internal/idb ./internal/jsutil
	$(STATICCHECK) ./...
	GOOS=js GOARCH=wasm $(STATICCHECK) ./wasm ./internal/opfs ./internal/idb ./internal/jsutil

$(STATICCHECK):
	GOBIN=$(CURDIR)/bin/tmp-staticcheck $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv bin/tmp-staticcheck/staticcheck $@ && rmdir bin/tmp-staticcheck

# web/disk_manager.d.ts, checked: TypeScript (pinned in package-lock.json)
# compiles web/types-test/, a page's use of the whole API (tsconfig.json).
# --no-install: never fetch the unrelated npm package named "tsc".
types: node_modules/.package-lock.json
	npx --no-install tsc --noEmit -p tsconfig.json

# npm ci when node_modules is missing or older than the lockfile.
node_modules/.package-lock.json: package-lock.json package.json
	npm ci --no-audit --no-fund
	@touch $@

# The worker: Go compiled to WebAssembly, plus Go's JS glue for it.
wasm:
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags=-s -o web/aerodisk.wasm ./wasm
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" web/wasm_exec.js

# Runs each fuzz target for FUZZTIME (go test allows one -fuzz target per run).
# Minimising a new interesting input is bounded to 100 runs: with the
# default (60 s each) the coordinator stalls minimising the large seeds (a
# 400 KiB DiskCopy image) and the fuzzer runs a few dozen inputs in a minute
# instead of thousands a second.
FUZZ_TARGETS = \
	./internal/formats:FuzzQcow2 \
	./internal/formats:FuzzVHD \
	./internal/formats:FuzzDC42 \
	./internal/formats:FuzzISO \
	./internal/formats:FuzzDetectAndRead \
	./internal/sparse:FuzzAeroSpar \
	./internal/layer:FuzzLayer \
	./internal/layer:FuzzDelta
fuzz: deps
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "== $$fn ($$pkg) for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg; \
	done

# Native conversion speed against qemu-img on a 2 GiB qcow2 holding ~512 MiB.
bench-native: deps
	$(GO) run ./cmd/bench-native

# Import/export speed and memory in headless chromium against plain-JS
# baselines measured in the same browser, in one run (cmd/bench-browser).
bench: deps
	$(GO) run ./cmd/bench-browser

# The page on http://127.0.0.1:$(PORT)/ (static files with a strict CSP).
serve: wasm
	$(GO) run ./cmd/aerodisk serve --port $(PORT)

clean:
	rm -rf bin web/aerodisk.wasm web/wasm_exec.js
