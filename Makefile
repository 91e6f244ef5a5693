# libllmroute - see README.md. GNU make.
#
#   make            library (static + shared), the llmroute CLI, examples
#   make check      the whole test suite (installs missing Debian packages)
#   make demo       the CLI against the bundled provider emulator
#   make asan       the suite under AddressSanitizer + UBSan
#   make tsan       the threaded tests under ThreadSanitizer
#   make install PREFIX=/usr/local DESTDIR=    /    make uninstall

VERSION_MAJOR := $(shell sed -n 's/^\#define LLMR_VERSION_MAJOR \([0-9]*\).*/\1/p' include/llmroute.h)
VERSION_MINOR := $(shell sed -n 's/^\#define LLMR_VERSION_MINOR \([0-9]*\).*/\1/p' include/llmroute.h)
VERSION_PATCH := $(shell sed -n 's/^\#define LLMR_VERSION_PATCH \([0-9]*\).*/\1/p' include/llmroute.h)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SONAME  := libllmroute.so.$(VERSION_MAJOR)

PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
PCDIR   ?= $(LIBDIR)/pkgconfig
DESTDIR ?=

B       ?= build
CC      ?= cc
PKG_CONFIG ?= pkg-config
SANITIZE ?=
OPT     ?= -O2 -g

DEP_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl libcjson 2>/dev/null)
DEP_LIBS   := $(shell $(PKG_CONFIG) --libs libcurl libcjson 2>/dev/null || echo -lcurl -lcjson)

WARN    := -Wall -Wextra -Werror -Wshadow -Wconversion -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wformat=2
CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(OPT) $(WARN) \
           -Iinclude $(DEP_CFLAGS)
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS_SAN := -fsanitize=$(SANITIZE)
endif
LIB_CFLAGS := $(CFLAGS_BASE) -fPIC -fvisibility=hidden -DLLMR_BUILDING
# tests and tools: same warnings, but cmocka's macros trip -Wconversion
TEST_CFLAGS := $(filter-out -Wconversion -Wmissing-prototypes,$(CFLAGS_BASE)) -Isrc -Itests/support
LIBS    := $(DEP_LIBS) -lmbedcrypto -lpthread -lm

LIB_SRC := $(wildcard src/*.c src/providers/*.c)
LIB_OBJ := $(patsubst src/%.c,$(B)/obj/%.o,$(LIB_SRC)) $(B)/obj/catalog_data.o
STATIC  := $(B)/libllmroute.a
SHARED  := $(B)/libllmroute.so.$(VERSION)
CLI     := $(B)/llmroute
EXAMPLES := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
UNIT_TESTS := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))
INT_TESTS  := $(patsubst tests/integration/%.c,$(B)/tests/%,$(wildcard tests/integration/test_*.c))
SUPPORT_SRC := $(wildcard tests/support/*.c)

.PHONY: all lib cli examples tests check test-run deps deps-test demo asan tsan \
        install uninstall clean bench fuzz

all: lib cli examples

lib: $(STATIC) $(SHARED)
cli: $(CLI)
examples: $(EXAMPLES)
tests: $(UNIT_TESTS) $(INT_TESTS)

# V=1 shows the full commands
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @echo "  $(1) $(2)"
endif

$(B)/obj/%.o: src/%.c $(wildcard src/*.h src/providers/*.h include/*.h include/llmroute/*.h)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(LIB_CFLAGS) -c $< -o $@

# the built-in model catalog: data/models.json as a C string
$(B)/catalog_data.c: data/models.json
	@mkdir -p $(dir $@)
	$(call say,GEN,$@)
	$(Q){ echo '/* generated from data/models.json by the Makefile */'; \
	  echo 'extern const char llmr__catalog_builtin_json[];'; \
	  echo 'const char llmr__catalog_builtin_json[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@

$(B)/obj/catalog_data.o: $(B)/catalog_data.c
	$(call say,CC,$<)
	$(Q)$(CC) $(LIB_CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(call say,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -Wl,--as-needed \
	  $(LDFLAGS_SAN) -o $@ $^ $(LIBS)
	ln -sf libllmroute.so.$(VERSION) $(B)/$(SONAME)
	ln -sf $(SONAME) $(B)/libllmroute.so

$(CLI): $(wildcard cli/*.c cli/*.h) $(STATIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) $(filter %.c,$^) -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS)

$(B)/examples/%: examples/%.c $(STATIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) $< -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS)

$(B)/tests/%: tests/unit/%.c $(STATIC) $(SUPPORT_SRC) $(wildcard tests/support/*.h)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(TEST_CFLAGS) $< $(SUPPORT_SRC) -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS) -lcmocka

$(B)/tests/%: tests/integration/%.c $(STATIC) $(SUPPORT_SRC) $(wildcard tests/support/*.h)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(TEST_CFLAGS) $< $(SUPPORT_SRC) -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS) -lcmocka

# ---- dependencies ----------------------------------------------------------

deps:
	@sh scripts/deps.sh build

deps-test:
	@sh scripts/deps.sh test

# ---- tests -----------------------------------------------------------------

# The whole suite: unit and integration tests, the export and man-page
# checks, the install + pkg-config test. Ends with "N passed, N failed".
check: deps-test
	@$(MAKE) --no-print-directory all tests
	@B=$(B) sh tests/run.sh all

# Run the suite of an already-built tree (used by asan/tsan).
test-run:
	@B=$(B) sh tests/run.sh $(SUITE)

asan: deps-test
	@$(MAKE) --no-print-directory B=build-asan SANITIZE=address,undefined OPT="-O1 -g" all tests
	@B=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 sh tests/run.sh tests

tsan: deps-test
	@$(MAKE) --no-print-directory B=build-tsan SANITIZE=thread OPT="-O1 -g" all tests
	@B=build-tsan TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  sh tests/run.sh threads

demo: deps-test
	@$(MAKE) --no-print-directory all
	@B=$(B) sh scripts/demo.sh

# ---- fuzzing: libFuzzer targets built with clang (tests/fuzz/README.md) ----

FUZZ_CC      ?= clang
FUZZ_B       ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_NAMES   := sse stream_openai stream_anthropic stream_gemini openai_answer
FUZZ_BINS    := $(patsubst %,$(B)/fuzz/fuzz_%,$(FUZZ_NAMES))

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-bins deps-fuzz clean-fuzz \
        bench-smoke bench-build

deps-fuzz:
	@sh scripts/deps.sh fuzz

# the library and targets with -fsanitize=fuzzer,address,undefined
fuzz-build: deps-fuzz
	@$(MAKE) --no-print-directory B=$(FUZZ_B) CC=$(FUZZ_CC) OPT="-O1 -g" \
	  SANITIZE=fuzzer-no-link,address,undefined fuzz-bins

fuzz-bins: $(FUZZ_BINS)

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/harness.c tests/fuzz/harness.h \
    tests/support/answer_diff.c tests/support/answer_diff.h $(STATIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) -Isrc -Itests/support -fsanitize=fuzzer $< \
	  tests/fuzz/harness.c tests/support/answer_diff.c \
	  -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS)

# each target for FUZZ_SECONDS (default 60), FUZZ_JOBS (default: nproc) at once
fuzz: fuzz-build
	@B=$(FUZZ_B) sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)

# the CI-sized run: committed reproducers, then 10 s per target
fuzz-smoke: fuzz-build
	@B=$(FUZZ_B) sh tests/fuzz/run.sh 10 $(FUZZ_NAMES)

clean-fuzz:
	rm -rf $(FUZZ_B)
clean: clean-fuzz

# ---- benchmarks (bench/README.md); never part of the tests ----------------

BENCH_BINS := $(B)/bench/bench_decode $(B)/bench/bench_ttft $(B)/bench/bench_server \
              $(B)/bench/bench_failover

bench-build: $(BENCH_BINS)

$(B)/bench/bench_decode: bench/decode.c bench/bench.h $(STATIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) -Isrc $< -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS)

$(B)/bench/bench_ttft: bench/ttft.c bench/bench.h $(STATIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) $< -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS)

$(B)/bench/bench_failover: bench/failover.c bench/bench.h $(STATIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) $< -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS)

$(B)/bench/bench_server: bench/server.c
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) $< -o $@ $(LDFLAGS_SAN) -lpthread

# non-streaming overhead, memory, peers, profile (bench/README.md)
BENCH_BINS += $(B)/bench/bench_upstream $(B)/bench/bench_overhead
bench-build: $(B)/bench/bench_upstream $(B)/bench/bench_overhead

$(B)/bench/bench_upstream: bench/upstream.c
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) $< -o $@ $(LDFLAGS_SAN) -lpthread

$(B)/bench/bench_overhead: bench/overhead.c bench/bench.h $(STATIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) $< -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS)

# decode throughput + TTFT + failover; writes bench/RESULTS.md (about a minute)
bench: deps
	@$(MAKE) --no-print-directory bench-build
	@B=$(B) sh bench/run.sh full bench/RESULTS.md

# proves the programs run (a few seconds); prints, writes nothing
bench-smoke: deps
	@$(MAKE) --no-print-directory bench-build
	@B=$(B) sh bench/run.sh smoke

# the Portkey gateway and the OpenAI Node SDK beside llmr_complete (npm
# packages installed into $(B)/peers); prints Markdown. `make bench` runs it
# too when node and npm are there.
.PHONY: bench-peers bench-profile
bench-peers: deps
	@$(MAKE) --no-print-directory bench-build
	@B=$(B) sh bench/peers.sh

# callgrind over 2,000 llmr_complete and 2,000 raw libcurl calls; writes
# $(B)/bench/profile.md (bench/PROFILE.md is the reading of it)
bench-profile: deps
	@$(MAKE) --no-print-directory bench-build
	@B=$(B) sh bench/profile.sh

# the ledger: append (each fsync policy), query, verify rates and memory over
# 1,000,000 records, 5 runs each (LEDGER_BENCH_ARGS="--records N --runs R
# --dir DIR"); prints a Markdown table (make bench puts it in RESULTS.md)
BENCH_BINS += $(B)/bench/bench_ledger
bench-build: $(B)/bench/bench_ledger

$(B)/bench/bench_ledger: bench/ledger_bench.c $(STATIC)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS_BASE) -Isrc $< -o $@ $(STATIC) $(LDFLAGS_SAN) $(LIBS)

.PHONY: bench-ledger
bench-ledger: $(B)/bench/bench_ledger
	@$(B)/bench/bench_ledger $(LEDGER_BENCH_ARGS)

# ---- install ---------------------------------------------------------------

pkgconfig/llmroute.pc: pkgconfig/llmroute.pc.in include/llmroute.h Makefile
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCDIR@|$(INCDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

$(B)/llmroute.pc: pkgconfig/llmroute.pc.in include/llmroute.h
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCDIR@|$(INCDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

install: all
	@rm -f $(B)/llmroute.pc
	@$(MAKE) --no-print-directory $(B)/llmroute.pc
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR)/llmroute $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(PCDIR) $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libllmroute.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libllmroute.so
	install -m 644 include/llmroute.h $(DESTDIR)$(INCDIR)/
	install -m 644 include/llmroute/provider.h $(DESTDIR)$(INCDIR)/llmroute/
	install -m 644 $(B)/llmroute.pc $(DESTDIR)$(PCDIR)/llmroute.pc
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/
	install -m 644 man/man3/*.3 $(DESTDIR)$(MANDIR)/man3/
	install -d $(DESTDIR)$(PREFIX)/share/llmroute
	install -m 644 data/models.json $(DESTDIR)$(PREFIX)/share/llmroute/models.json
	if ls man/man1/*.1 >/dev/null 2>&1; then install -m 644 man/man1/*.1 $(DESTDIR)$(MANDIR)/man1/; fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libllmroute.a $(DESTDIR)$(LIBDIR)/libllmroute.so \
	  $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libllmroute.so.$(VERSION) \
	  $(DESTDIR)$(INCDIR)/llmroute.h $(DESTDIR)$(PCDIR)/llmroute.pc \
	  $(DESTDIR)$(BINDIR)/llmroute $(DESTDIR)$(PREFIX)/share/llmroute/models.json
	-rmdir $(DESTDIR)$(PREFIX)/share/llmroute 2>/dev/null
	rm -f $(DESTDIR)$(INCDIR)/llmroute/provider.h
	-rmdir $(DESTDIR)$(INCDIR)/llmroute 2>/dev/null
	for f in man/man3/*.3; do rm -f $(DESTDIR)$(MANDIR)/man3/$$(basename $$f); done
	for f in man/man1/*.1; do [ -e "$$f" ] && rm -f $(DESTDIR)$(MANDIR)/man1/$$(basename $$f); done; true

clean:
	rm -rf build build-asan build-tsan pkgconfig/llmroute.pc
