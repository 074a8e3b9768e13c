# pdns-relay - see README.md. Targets: all test unit e2e bench fuzz run clean.
# Switches: USE_WERROR=1 (CI), SANITIZE=address,undefined, O=2, NO_SIMD=1
# (the portable code only, as on a CPU without AVX2/AVX-512 or not x86).

CC       ?= cc
O        ?= 2
PKGS     := libsodium hiredis libwebsockets jansson libuv libidn2 libsystemd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   ?= -O$(O) -g
# relay/ in layers, each using only those below it (tests/layers checks):
#   core <- wire <- store, mixer <- policy <- stages (relay/) <- net, api <- cli <- daemon
LAYERS   := relay/core relay/wire relay/store relay/net relay/api relay/cli relay
INCLUDES := $(addprefix -I,$(LAYERS)) -Imixer -Ipolicy
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wformat=2 \
            -Wno-missing-field-initializers -MMD -MP $(INCLUDES) \
            $(PKG_CFLAGS)
ifeq ($(USE_WERROR),1)
CFLAGS   += -Werror
endif
ifeq ($(NO_SIMD),1)
CFLAGS   += -DPDNS_NO_SIMD
BUILD    ?= build-nosimd
endif
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=$(SANITIZE)
BUILD    ?= build-san
endif
BUILD    ?= build
LDLIBS   += $(PKG_LIBS) -lssl -lcrypto -lm

PY       := /usr/bin/python3

LUA_SRC  := $(wildcard relay/store/lua/*.lua)
LUA_HDR  := $(LUA_SRC:relay/store/lua/%.lua=$(BUILD)/gen/%.lua.h)
WEB_SRC  := $(wildcard relay/api/console/*)
WEB_HDR  := $(foreach f,$(WEB_SRC),$(BUILD)/gen/console_$(subst .,_,$(notdir $(f))).h)
CFLAGS   += -I$(BUILD)/gen

CORE_SRC := $(filter-out relay/main.c,$(wildcard $(addsuffix /*.c,$(LAYERS)) mixer/*.c policy/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
BIN      := $(BUILD)/pdns-relay
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

.PHONY: all test unit e2e bench fuzz run clean deps install

all: $(BIN) pdns-relay $(BUILD)/pdnsrelay.so

pdns-relay: $(BIN)
	ln -sf $(BIN) $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# Lua scripts for Redis, compiled in as C strings
$(BUILD)/gen/%.lua.h: relay/store/lua/%.lua
	@mkdir -p $(dir $@)
	{ echo 'static const char $(subst .,_,$*)_lua[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@

$(BUILD)/relay/store/store.o: $(LUA_HDR)

# the console's pages, compiled in as C strings (console_index_html, ...)
define web_rule
$(BUILD)/gen/console_$(subst .,_,$(notdir $(1))).h: $(1)
	@mkdir -p $$(dir $$@)
	{ echo 'static const char console_$(subst .,_,$(notdir $(1)))[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$$$/\\n"/' $$<; \
	  echo ';'; } > $$@
endef
$(foreach f,$(WEB_SRC),$(eval $(call web_rule,$(f))))

$(BUILD)/relay/api/console.o: $(WEB_HDR)

# -O3 keeps the eight-lane BLAKE2b's message words in registers (7 % faster
# than -O2, measured with bench_batch)
$(BUILD)/relay/wire/hashmany.o: CFLAGS += -O3
# and the CSV parser's mask steps are inlined into one straight line (5 %
# faster, measured with bench_csv)
$(BUILD)/relay/wire/csv.o: CFLAGS += -O3

# the optional Redis module (relay/store/module/pdnsrelay.c): loaded into
# redis-server, so built without the sanitizers (Redis is not) and alone
MODULE_FLAGS = $(filter-out -fsanitize=% -fno-sanitize-recover=% -MMD -MP,$(CFLAGS)) -fPIC -shared
$(BUILD)/pdnsrelay.so: relay/store/module/pdnsrelay.c relay/store/module/ixtree.c \
                       relay/store/module/query.c relay/store/module/sweep.c \
                       relay/store/module/ixtree.h \
                       relay/store/module/rmapi.h
	@mkdir -p $(dir $@)
	$(CC) $(MODULE_FLAGS) $(filter-out -fsanitize=%,$(LDFLAGS)) -o $@ $(filter %.c,$^)

$(BUILD)/libpdns.a: $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(BUILD)/relay/main.o $(BUILD)/libpdns.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpdns.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libpdns.a $(LDFLAGS) $(LDLIBS) -lcmocka

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libpdns.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libpdns.a $(LDFLAGS) $(LDLIBS)

unit: $(UNIT_BIN)
	$(PY) tests/layers/check_layers.py
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; (cd tests/unit && ../../$$t); done

# under the sanitizers the tests marked slow (long waits that test timing,
# not memory) are left out. With python3-pytest-xdist the tests run
# E2E_JOBS at a time, two by default: about half the time (most of it is
# waiting on the processes they start; each worker takes its ports from a
# range of its own). E2E_JOBS=1: one by one.
E2E_JOBS ?= 2
XDIST := $(shell $(PY) -c 'import xdist' 2>/dev/null && echo yes)
e2e: $(BIN) $(BUILD)/pdnsrelay.so
	PDNS_RELAY_BIN=$(abspath $(BIN)) PDNS_RELAY_MODULE=$(abspath $(BUILD)/pdnsrelay.so) $(PY) -m pytest -q -p no:cacheprovider --durations=12 \
	  $(if $(and $(XDIST),$(filter-out 1,$(E2E_JOBS))),-n $(E2E_JOBS)) \
	  $(if $(SANITIZE),-m "not slow") tests/e2e

test: unit e2e

BENCH_RECORDS ?= 1000000
$(BUILD)/bench/iprof: tests/bench/iprof.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

bench: $(BIN) $(BENCH_BIN) $(BUILD)/bench/iprof
	@mkdir -p $(BUILD)/bench
	$(PY) tests/bench/gen_csv.py $(BENCH_RECORDS) > $(BUILD)/bench/bench.csv
	$(BUILD)/bench/bench_csv $(BUILD)/bench/bench.csv
	$(BUILD)/bench/bench_mixer $(BENCH_RECORDS)
	$(BUILD)/bench/bench_privacy 24
	$(BUILD)/bench/bench_policy
	$(BUILD)/bench/bench_canary
	$(BUILD)/bench/bench_batch $(BENCH_RECORDS) $(BIN)
	$(BUILD)/bench/bench_ixtree $(BENCH_RECORDS)
	PDNS_RELAY_BIN=$(abspath $(BIN)) $(PY) tests/bench/forward_bench.py
	BENCH_RECORDS=$(BENCH_RECORDS) PDNS_RELAY_BIN=$(abspath $(BIN)) $(PY) tests/bench/ingest_bench.py
	BENCH_RECORDS=$(BENCH_RECORDS) PDNS_RELAY_BIN=$(abspath $(BIN)) $(PY) tests/bench/store_bench.py
	BENCH_RECORDS=$(BENCH_RECORDS) PDNS_RELAY_BIN=$(abspath $(BIN)) $(PY) tests/bench/cluster_bench.py
	PDNS_RELAY_BIN=$(abspath $(BIN)) $(PY) tests/bench/preauth_bench.py
	PDNS_RELAY_BIN=$(abspath $(BIN)) $(PY) tests/bench/queue_bench.py
	PDNS_RELAY_BIN=$(abspath $(BIN)) $(PY) tests/bench/stream_bench.py

# libFuzzer targets (clang). FUZZ_SECONDS bounds each run.
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE $(INCLUDES) -I$(BUILD)/gen $(PKG_CFLAGS) \
               -fsanitize=fuzzer,address,undefined
# the relay's objects are built once for all targets
FUZZ_OBJ := $(CORE_SRC:%.c=build-fuzz/obj/%.o)
build-fuzz/obj/%.o: %.c $(LUA_HDR)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
# one rule per target: `make -j2 fuzz` runs two at a time
FUZZ_NAMES := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_RUNS := $(addprefix fuzz-run-,$(FUZZ_NAMES))
fuzz: $(FUZZ_RUNS)
.PHONY: $(FUZZ_RUNS)
$(FUZZ_RUNS): fuzz-run-%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p build-fuzz/corpus-$*
	@clang $(FUZZ_CFLAGS) -o build-fuzz/$* $< $(FUZZ_OBJ) $(PKG_LIBS) -lssl -lcrypto -lm
	@if ! build-fuzz/$* -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    -artifact_prefix=build-fuzz/$*- build-fuzz/corpus-$* tests/fuzz/corpus/$* \
	    > build-fuzz/$*.log 2>&1; then \
	  tail -n 40 build-fuzz/$*.log; echo "$* found a failure: build-fuzz/$*-*"; exit 1; \
	fi; echo "== $* ($(FUZZ_SECONDS) s)"; tail -n 3 build-fuzz/$*.log

run:
	./scripts/demo.sh

# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc]: the binary,
# the systemd unit, the man pages, the documentation, and the example configuration and
# policies under SYSCONFDIR/pdns-relay (copy relay.example.json to
# relay.json and edit it); the state directory /var/lib/pdns-relay (0700).
# Build first (`make`); INSTALL_BIN says which binary to install.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
INSTALL_BIN ?= $(BIN)
install:
	@test -x $(INSTALL_BIN) || { echo "make install: no $(INSTALL_BIN): run make first" >&2; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/doc/pdns-relay \
	    $(DESTDIR)/lib/systemd/system $(DESTDIR)$(SYSCONFDIR)/pdns-relay/partners \
	    $(DESTDIR)$(SYSCONFDIR)/pdns-relay/partners.example
	install -d $(DESTDIR)$(PREFIX)/lib/pdns-relay
	install -m 0755 $(dir $(INSTALL_BIN))pdnsrelay.so $(DESTDIR)$(PREFIX)/lib/pdns-relay/pdnsrelay.so
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/pdns-relay/keys $(DESTDIR)/var/lib/pdns-relay
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/sbin/pdns-relay
	install -m 0644 man/pdns-relay.8 $(DESTDIR)$(PREFIX)/share/man/man8/pdns-relay.8
	install -m 0644 man/pdns-relay.conf.5 man/pdns-relay-policy.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/pdns-relay/
	sed 's|/usr/sbin/pdns-relay|$(PREFIX)/sbin/pdns-relay|; s|/etc/pdns-relay|$(SYSCONFDIR)/pdns-relay|' \
	    dist/pdns-relay.service > $(DESTDIR)/lib/systemd/system/pdns-relay.service
	chmod 0644 $(DESTDIR)/lib/systemd/system/pdns-relay.service
	install -m 0640 conf/relay.example.json $(DESTDIR)$(SYSCONFDIR)/pdns-relay/relay.example.json
	install -m 0640 conf/partners/*.json $(DESTDIR)$(SYSCONFDIR)/pdns-relay/partners.example/

clean:
	rm -rf build build-san build-fuzz build-nosimd pdns-relay

-include $(CORE_OBJ:.o=.d) $(BUILD)/relay/main.d $(UNIT_BIN:=.d)
