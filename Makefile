# yun build: one Makefile, no generated configure step.
#
#   make              build/yund and build/yun (optimised, with -Werror)
#   make SAN=1        the same with AddressSanitizer + UndefinedBehaviorSanitizer
#   make check        build and run the cmocka unit tests
#   make e2e          run the pytest end-to-end suite against real QEMU
#   make test         both (this is what README and .ci/run call)
#   make format       clang-format every C file in place
#
# Every directory under src/ except daemon/ and cli/ is compiled into one static
# archive, libyun.a; the two programs and every unit test link against it, so the
# daemon, the CLI and the simulator all run the very same code.

CC      ?= cc
# Debian's python3 (where python3-pytest lives), not a pyenv one first on PATH.
PYTHON  ?= /usr/bin/python3
BUILD   ?= build
PKGS    := libevent libevent_pthreads jansson sqlite3 libcurl
CFLAGS  ?= -O2 -g
# -Wno-format-truncation: messages are cut to fixed buffers on purpose.
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wno-format-truncation \
           -Isrc $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lglpk -lm -lpthread

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

.PHONY: all check e2e test format clean
all: $(BUILD)/yund $(BUILD)/yun

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

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

check: $(TEST_BINS)
	@./scripts/check-layers.sh
	@./tests/unit/run.sh $(TEST_BINS)

e2e: all
	YUN_BUILD=$(BUILD) $(PYTHON) -m pytest -q $(PYTEST_ARGS) tests/e2e

test: check e2e

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c')

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
