# yun build: one Makefile, no generated configure step.
#
#   make              build/yund and build/yun (optimised, with -Werror)
#   make SAN=1        the same with AddressSanitizer + UndefinedBehaviorSanitizer
#   make check        build and run the cmocka unit tests
#   make e2e          run the pytest end-to-end suite against real QEMU
#   make test         both (this is what README and .ci/run call)
#   make deb          the Debian package, build/deb-out/yun_<version>_amd64.deb
#   make format       clang-format every C file in place
#   make fuzz         build the libFuzzer targets (fuzz/fuzz_*.c, clang) and run
#                     each for FUZZ_TIME seconds (default 60) on a scratch corpus
#   make fuzz-regress run each target once over its corpus and regression inputs
#
# Every directory under src/ except daemon/ and cli/ is compiled into one static
# archive, libyun.a; the two programs and every unit test link against it, so the
# daemon, the CLI and the simulator all run the very same code.

CC      ?= cc
# Debian's python3 (where python3-pytest lives), not a pyenv one first on PATH.
PYTHON  ?= /usr/bin/python3
# the slowest tests named in every run (CI has a time budget: .ci/run)
PYTEST_ARGS ?= --durations=20
BUILD   ?= build
PKGS    := libevent libevent_pthreads jansson sqlite3 libpq libcurl
CFLAGS  ?= -O2 -g
# -Wno-format-truncation: messages are cut to fixed buffers on purpose.
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wno-format-truncation \
           -Isrc $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lglpk -lm -lpthread
# The version is debian/changelog's (its first line), the commit git's; both
# are baked into src/lib/version.c only (YUN_COMMIT overrides, e.g. for a
# package built from a copy of the tree outside git).
YUN_VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
YUN_COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
VERSION_DEFS := -DYUN_VERSION_STR='"$(YUN_VERSION)"' -DYUN_COMMIT_STR='"$(YUN_COMMIT)"'

# The fuzz build is one per tree, whatever SAN says (see "fuzzing" below).
FUZZ_BUILD := $(BUILD)/fuzz

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
           -DYUN_FAILPOINTS
LDFLAGS += -fsanitize=address,undefined
BUILD   := $(BUILD)/san
endif

LIB_DIRS := lib store storage compute agent ctl network monitor sched sim api
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(wildcard src/$(d)/*.c))
YUND_SRCS := $(wildcard src/daemon/*.c)
YUN_SRCS  := $(wildcard src/cli/*.c)
TEST_SRCS := $(wildcard tests/unit/test_*.c)

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
YUND_OBJS := $(YUND_SRCS:%.c=$(BUILD)/obj/%.o)
YUN_OBJS  := $(YUN_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check e2e test format clean fuzz fuzz-build fuzz-regress deb
all: $(BUILD)/yund $(BUILD)/yun

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# version.o is rebuilt when the changelog's version or the commit changes.
$(BUILD)/version.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION_DEFS)' | cmp -s - $@ || echo '$(VERSION_DEFS)' > $@
$(BUILD)/obj/src/lib/version.o: src/lib/version.c $(BUILD)/version.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(VERSION_DEFS) -MMD -MP -c $< -o $@
.PHONY: FORCE
FORCE:

$(BUILD)/libyun.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/yund: $(YUND_OBJS) $(BUILD)/libyun.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/yun: $(YUN_OBJS) $(BUILD)/libyun.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libyun.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -Itests/unit -o $@ $< $(BUILD)/libyun.a $(LDLIBS) -lcmocka

# The fuzz regression inputs run first (when clang is there), so the last
# line stays run.sh's "unit: N passed, N failed".
check: $(TEST_BINS)
	@./scripts/check-layers.sh
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then $(MAKE) --no-print-directory fuzz-regress; \
	else echo "fuzz: $(FUZZ_CC) not found, regression inputs not run (make fuzz-regress)"; fi
	@./tests/unit/run.sh $(TEST_BINS)

e2e: all
	YUN_BUILD=$(BUILD) $(PYTHON) -m pytest -q $(PYTEST_ARGS) tests/e2e

test: check e2e

# The Debian package (debian/, docs/packaging.md), under build/deb-out.
deb:
	./scripts/make-deb.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c')

clean:
	rm -rf build

# ---- fuzzing: libFuzzer targets for the pure parsers ----
# Every fuzz/fuzz_NAME.c is a target (no per-target edits here): the library
# sources are compiled again by clang with fuzzer-no-link instrumentation into
# FUZZ_BUILD, and each target is linked with -fsanitize=fuzzer. Seeds are in
# fuzz/corpus/NAME/, crash regressions in fuzz/regress/NAME/.
FUZZ_CC     ?= clang
FUZZ_TIME   ?= 60
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
               -Isrc $(shell pkg-config --cflags $(PKGS)) $(FUZZ_SAN)
FUZZ_OPTS   ?= -timeout=5 -rss_limit_mb=2048 -max_len=65536
FUZZ_SRCS   := $(wildcard fuzz/fuzz_*.c)
FUZZ_NAMES  := $(FUZZ_SRCS:fuzz/fuzz_%.c=%)
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_OBJS   := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libyun.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_BUILD)/libyun.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Ifuzz -o $@ $< $(FUZZ_BUILD)/libyun.a $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# One run per target (make -j2 fuzz runs two at a time), on a scratch copy of
# the seeds so a run never grows the committed corpus; a crash, leak or hang
# (-timeout) fails it, and the input that did it is left in FUZZ_BUILD/NAME/.
fuzz: $(FUZZ_NAMES:%=fuzz-run-%)
fuzz-run-%: $(FUZZ_BUILD)/fuzz_%
	@rm -rf $(FUZZ_BUILD)/$*/corpus && mkdir -p $(FUZZ_BUILD)/$*/corpus fuzz/regress/$*
	@cp -r fuzz/corpus/$*/. fuzz/regress/$*/. $(FUZZ_BUILD)/$*/corpus/ 2>/dev/null || true
	cd $(FUZZ_BUILD)/$* && ./../fuzz_$* $(FUZZ_OPTS) -max_total_time=$(FUZZ_TIME) \
	    -print_final_stats=1 corpus >log 2>&1 || { tail -60 log; exit 1; }
	@grep -h '^stat::number_of_executed_units\|^Done' $(FUZZ_BUILD)/$*/log | tr '\n' ' '; echo "[$*]"

# Each target once over every seed and regression input (files, not
# directories, so libFuzzer runs them instead of fuzzing).
fuzz-regress: $(FUZZ_NAMES:%=fuzz-regress-%)
fuzz-regress-%: $(FUZZ_BUILD)/fuzz_%
	@files=$$(find fuzz/corpus/$* fuzz/regress/$* -type f 2>/dev/null | sort); \
	[ -n "$$files" ] || { echo "fuzz_$*: no inputs in fuzz/corpus/$*" >&2; exit 1; }; \
	$(FUZZ_BUILD)/fuzz_$* $(FUZZ_OPTS) $$files >$(FUZZ_BUILD)/regress-$*.log 2>&1 || \
	    { tail -60 $(FUZZ_BUILD)/regress-$*.log; exit 1; }; \
	echo "fuzz_$*: $$(echo $$files | wc -w) inputs ok"

-include $(shell find $(BUILD)/obj $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
