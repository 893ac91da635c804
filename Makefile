# thinmeta — plain GNU Makefile (STYLE.md §4)
PREFIX ?= /usr/local
SBINDIR = $(DESTDIR)$(PREFIX)/sbin
MANDIR  = $(DESTDIR)$(PREFIX)/share/man
LIBDIR  = $(DESTDIR)$(PREFIX)/lib
INCDIR  = $(DESTDIR)$(PREFIX)/include/thinmeta
PCDIR   = $(LIBDIR)/pkgconfig

VERSION := $(shell sed -n 's/^#define THINMETA_VERSION "\(.*\)"/\1/p' lib/util/cli.h)
DATE    := 2026-11-24
BUILD   ?= build

CC ?= cc
CFLAGS ?= -O2 -g
# "override": these stay even when CFLAGS/LDFLAGS are given on the command
# line (make asan, make fuzz, distribution builds).
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	  -Wmissing-prototypes -MMD -MP
SAN_FLAGS ?=
override CFLAGS += $(SAN_FLAGS)
override LDFLAGS += $(SAN_FLAGS)
override CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Ilib $(shell pkg-config --cflags expat zlib libxxhash)
override LDLIBS += $(shell pkg-config --libs expat zlib libxxhash) -laio -pthread
TEST_CFLAGS := $(shell pkg-config --cflags criterion 2>/dev/null)
TEST_LIBS := $(shell pkg-config --libs criterion 2>/dev/null)

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRCS := $(sort $(wildcard lib/*/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB_A    := $(BUILD)/libthinmeta.a

TOOL_SRCS := $(sort $(wildcard tools/*.c))
TOOLS     := $(TOOL_SRCS:tools/%.c=$(BUILD)/bin/%)

DEVTOOL_SRCS := $(sort $(wildcard tests/tools/*.c))
DEVTOOLS     := $(DEVTOOL_SRCS:tests/tools/%.c=$(BUILD)/devbin/%)
# LD_PRELOAD shims for the tests (no sanitizers: they wrap libc calls)
SHIM_SRCS := $(sort $(wildcard tests/tools/shim/*.c))
SHIMS     := $(SHIM_SRCS:tests/tools/shim/%.c=$(BUILD)/devbin/%.so)

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

MANS := $(sort $(wildcard man/*.8))
BUILT_MANS := $(MANS:man/%=$(BUILD)/man/%)

PUBLIC_HEADERS := $(sort $(wildcard lib/*/*.h))

.SECONDARY:

PHONY_FUZZ := fuzz
.PHONY: all lib tools devtools man check fuzz fuzz-build testnew testend unit-tests image-tests asan install deps clean \
	check-layers check-headers check-man bench

all: lib tools devtools man

lib: $(LIB_A)
tools: $(TOOLS)
devtools: $(DEVTOOLS) $(SHIMS)
man: $(BUILT_MANS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/tools/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $< $(LIB_A) $(LDLIBS) -o $@

$(BUILD)/devbin/%: $(BUILD)/tests/tools/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $< $(LIB_A) $(LDLIBS) -o $@

$(BUILD)/devbin/%.so: tests/tools/shim/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -O2 -fPIC -shared $< -o $@ -ldl

$(BUILD)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(TEST_CFLAGS) $(CFLAGS) -Wno-missing-prototypes -c $< -o $@

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $< $(LIB_A) $(LDLIBS) $(TEST_LIBS) -o $@

$(BUILD)/man/%.8: man/%.8
	@mkdir -p $(dir $@)
	$(Q)sed -e 's/@DATE@/$(DATE)/g' -e 's/@VERSION@/$(VERSION)/g' $< > $@

$(BUILD)/thinmeta.pc: FORCE
	@mkdir -p $(dir $@)
	$(Q)printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: thinmeta\nDescription: dm-thin pool metadata library\nVersion: %s\nLibs: -L$${libdir} -lthinmeta %s\nCflags: -I$${includedir}/thinmeta\n' \
		'$(PREFIX)' '$(VERSION)' '$(shell pkg-config --libs expat zlib libxxhash) -laio -pthread' > $@

# ---------------------------------------------------------------- tests
unit-tests: $(UNIT_BINS)
	$(Q)fail=0; for t in $(UNIT_BINS); do \
		echo "== $$t"; $$t --jobs=2 || fail=1; \
	done; exit $$fail

image-tests: all
	$(Q)BUILD=$(BUILD) tests/run-tests.sh

# Runs every stage even when one fails; the tool/image runner's
# "N passed, N failed" line comes last.
check: all $(UNIT_BINS)
	$(Q)failed=; \
	$(MAKE) -s unit-tests || failed="$$failed unit-tests"; \
	$(MAKE) -s check-layers || failed="$$failed check-layers"; \
	$(MAKE) -s check-headers || failed="$$failed check-headers"; \
	$(MAKE) -s check-man || failed="$$failed check-man"; \
	[ -z "$$failed" ] || echo "make check: FAILED stages:$$failed"; \
	$(MAKE) -s image-tests || failed="$$failed image-tests"; \
	[ -z "$$failed" ] || { echo "make check: FAILED stages:$$failed"; exit 1; }

# e2fsprogs-style image cases: scaffold, then record expect.1 (review it!)
testnew:
	@test -n "$(T)" || { echo "usage: make testnew T=<tool>_<what> FIXTURE=<kernel fixture>"; exit 2; }
	@mkdir -p tests/image/$(T)
	@echo "describe $(T) here" > tests/image/$(T)/name
	@echo "$(or $(FIXTURE),basic)" > tests/image/$(T)/fixture
	@touch tests/image/$(T)/args
	@echo "created tests/image/$(T): edit name and args, then make testend T=$(T)"

testend: all
	@test -d "tests/image/$(T)" || { echo "usage: make testend T=<case>"; exit 2; }
	$(Q)rm -f tests/image/$(T)/expect.1; \
	BUILD=$(BUILD) TOP=$(CURDIR) THINMETA_RECORD=1 T=image_$(T) tests/run-tests.sh >/dev/null; \
	echo "recorded tests/image/$(T)/expect.1:"; cat tests/image/$(T)/expect.1

check-layers:
	$(Q)tests/check-layers.sh

check-headers:
	$(Q)for h in $(PUBLIC_HEADERS); do \
		echo "#include \"$${h#lib/}\"" | $(CC) $(CPPFLAGS) $(CFLAGS) -x c -fsyntax-only - \
			|| { echo "header $$h does not compile alone"; exit 1; }; \
	done; echo "headers: ok"

check-man: man
	$(Q)tests/check-man.sh $(BUILD)

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g" \
		SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		THINMETA_SLOW_TESTS=0 check

# Fuzzing (not part of check): make fuzz CC=clang [FUZZ_SECONDS=60]; the
# harnesses and seed corpora alone: make fuzz-build CC=clang (docs/fuzzing.md)
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
FUZZERS := metadata xml xml_fastpath
FUZZ_ENV := ASAN_OPTIONS=allocator_may_return_null=1 THINMETA_FUZZ_IMAGE=build-fuzz/image.bin
fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=clang CFLAGS="-O1 -g" SAN_FLAGS="$(FUZZ_FLAGS)" lib
	@mkdir -p build-fuzz/fuzz build-fuzz/corpus-metadata build-fuzz/corpus-xml build-fuzz/corpus-xml_fastpath
	for f in $(FUZZERS); do \
		clang $(CPPFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined \
			-DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION tests/fuzz/fuzz_$$f.c \
			build-fuzz/libthinmeta.a $(LDLIBS) -o build-fuzz/fuzz/fuzz_$$f || exit 1; \
	done
	gzip -dc fixtures/kernel/snapshots/metadata.bin.gz > build-fuzz/image.bin
	for c in xml xml_fastpath; do \
		for d in fixtures/kernel/*/; do cp $$d/ref-thin_dump.xml build-fuzz/corpus-$$c/$$(basename $$d).xml; done; \
		cp tests/fuzz/seeds/*.xml build-fuzz/corpus-$$c/; \
	done

fuzz: fuzz-build
	$(FUZZ_ENV) build-fuzz/fuzz/fuzz_metadata -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=build-fuzz/ -max_len=200 build-fuzz/corpus-metadata
	$(FUZZ_ENV) build-fuzz/fuzz/fuzz_xml -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build-fuzz/ \
		-max_len=4096 -dict=tests/fuzz/xml.dict build-fuzz/corpus-xml
	$(FUZZ_ENV) build-fuzz/fuzz/fuzz_xml_fastpath -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=build-fuzz/ -max_len=4096 -dict=tests/fuzz/xml.dict build-fuzz/corpus-xml_fastpath

# the block-device comparison (as LVM runs the tools) first: it needs root and loop devices
bench: all
	bench/run.sh --blockdev
	bench/run.sh

# ---------------------------------------------------------------- install
install: all $(BUILD)/thinmeta.pc
	install -d $(SBINDIR) $(MANDIR)/man8 $(LIBDIR) $(PCDIR) $(INCDIR)
	install -m 755 $(TOOLS) $(SBINDIR)/
	install -m 644 $(BUILT_MANS) $(MANDIR)/man8/
	install -m 644 $(LIB_A) $(LIBDIR)/
	install -m 644 $(BUILD)/thinmeta.pc $(PCDIR)/
	for h in $(PUBLIC_HEADERS); do \
		case $$h in *-internal.h) continue;; esac; \
		install -d $(INCDIR)/$$(dirname $${h#lib/}); \
		install -m 644 $$h $(INCDIR)/$${h#lib/}; \
	done

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential pkg-config \
		libaio-dev libexpat1-dev zlib1g-dev libxxhash-dev libcriterion-dev \
		thin-provisioning-tools python3 time groff-base xxhash strace
	tests/get-tpt1.sh $(BUILD)/ref-1.x

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJS:.o=.d) $(TOOL_SRCS:tools/%.c=$(BUILD)/tools/%.d) $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%.d) $(DEVTOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/tools/%.d)

# thinmeta.pc carries PREFIX: rebuilt on every use
FORCE:
.PHONY: FORCE
