# lsfuse developer targets. `make test` is the README's test command, go test -count=1 ./...
GO ?= go
PKGS := ./...

.PHONY: build test test-short lint fmt bench golden

build:
	CGO_ENABLED=0 $(GO) build -o bin/lsfuse ./cmd/lsfuse

test:
	$(GO) test -count=1 $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags lsfuse_cuda ./cmd/lsfuse ./pkg/cuda
	$(GO) vet -tags cudagpu ./pkg/cuda

fmt:
	gofmt -w $$(git ls-files '*.go')

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Regenerates testdata/golden/ from the reference equations in PyTorch
# (Debian python3-torch, run with /usr/bin/python3).
golden:
	/usr/bin/python3 scripts/golden.py testdata/golden

# Regenerates the small decoder fixtures under testdata/data/ (needs
# espeak-ng, sox, imagemagick, ffmpeg, python3; see testdata/data/README.md).
.PHONY: fixtures
fixtures:
	cd testdata/data && ./make_fixtures.sh

include mk/data.mk

# Side-by-side timing against the PyTorch reference (needs python3-torch);
# results go in docs/PERFORMANCE.md.
.PHONY: bench-compare
bench-compare: build
	scripts/bench-compare.sh $(ROUNDS)
include mk/table.mk
include mk/apps.mk
