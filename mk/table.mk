# The measured fusion-strategy table (issue 5). Merged into the top-level Makefile.
#
# `make table` builds the static binary and runs `lsfuse experiment table`: every modality of
# configs/quickstart.yaml alone, early / late / hybrid / hierarchical fusion of all of them and hybrid
# without modality dropout, TABLE_SEEDS seeds each, every run a separate training process evaluated
# on TABLE_TEST_ROWS generated avdigits test rows (needs espeak-ng; generated once and cached in
# TABLE_WORK). It prints the markdown table and writes it to TABLE_OUT. About 7 minutes on an idle 2-core
# machine once the test set is cached.

TABLE_SEEDS     ?= 3
TABLE_OUT       ?= docs/TABLE.md
TABLE_WORK      ?= runs/table
TABLE_TEST_ROWS ?= 1000
TABLE_FLAGS     ?=

.PHONY: table
table: build
	bin/lsfuse experiment table --config configs/quickstart.yaml --seeds $(TABLE_SEEDS) --test-rows $(TABLE_TEST_ROWS) \
	  --work-dir $(TABLE_WORK) --out $(TABLE_OUT) $(TABLE_FLAGS)
