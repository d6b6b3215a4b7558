# Quince top-level build.
#   make            release build into build/
#   make test       sanitised build (ASan+UBSan) into build/san, then all tests
#   make tsan       ThreadSanitizer build into build/tsan, unit tests + the verifier's thread tests
#   make bench      throughput figures (release build)
#   make fuzz       libFuzzer targets (clang), FUZZ_SECONDS each (default 60)
#   make demo       end-to-end demo on a software TPM (DEMO_ARGS=--no-web: without the web page)
#   make deps       install the Debian packages the build and tests need (only if missing)
#   make install    programs, config, systemd units, man pages, state directory (PREFIX, DESTDIR)
#   make deb        Debian packages (debhelper) into build/deb/

VERSION      := 0.1.0
BUILD        ?= build
SAN          ?= 0
CC           ?= cc
PREFIX       ?= /usr/local
DESTDIR      ?=
BINDIR       ?= $(PREFIX)/bin
MANDIR       ?= $(PREFIX)/share/man
UNITDIR      ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR   ?= /etc
STATEDIR     ?= /var/lib/quince
FUZZ_SECONDS ?= 60

PKGS := openssl libcjson libpcre2-8 libcurl sqlite3 libmicrohttpd gnutls \
        tss2-esys tss2-tctildr tss2-mu tss2-rc libarchive libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_GNU_SOURCE -DQUINCE_VERSION=\"$(VERSION)\" -pthread \
           -Icommon $(PKG_CFLAGS)
LDFLAGS += -pthread -Wl,--as-needed
LDLIBS  := $(PKG_LIBS) -lm

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1
LDFLAGS += -fsanitize=address,undefined
endif
# ThreadSanitizer (make tsan): alone, ASan and TSan do not mix.
ifeq ($(TSAN),1)
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer -O1
LDFLAGS += -fsanitize=thread
endif

COMMON_SRC   := $(sort $(wildcard common/*.c))
AGENT_SRC    := $(sort $(wildcard agent/*.c))
VERIFIER_SRC := $(sort $(wildcard verifier/*.c))
TENANT_SRC   := $(sort $(wildcard tenant/*.c))
UNIT_SRC     := $(sort $(wildcard tests/unit/test_*.c))
TOOLS_SRC    := $(sort $(wildcard tests/tools/*.c))
BENCH_SRC    := $(sort $(wildcard bench/*.c))
FLEET_SRC    := $(sort $(wildcard tests/tools/fleet/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBQ      := $(BUILD)/libquince.a
LIBAGENT  := $(BUILD)/libagent.a
LIBVERIF  := $(BUILD)/libverifier.a
LIBTENANT := $(BUILD)/libtenant.a
BINS      := $(BUILD)/quince-agent $(BUILD)/quince-verifier $(BUILD)/quince-tenant
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(TOOLS_SRC))
BENCH_BINS:= $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

nomain = $(filter-out %/main.o,$(call obj,$(1)))

.PHONY: all deps test unit integration bench bench-fleet fuzz demo install man deb clean check-deps tools tsan
.DEFAULT_GOAL := all

FLEET_BIN := $(BUILD)/tests/tools/quince-fleet

all: $(BINS) $(TOOL_BINS) $(FLEET_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CMOCKA_CFLAGS) -MMD -MP -c $< -o $@

# The web page's static files are assembled into this object (.incbin).
$(BUILD)/obj/tenant/webapp_assets.o: $(wildcard tenant/web/*)

$(LIBQ): $(call obj,$(COMMON_SRC))
	@rm -f $@; ar rcs $@ $^
$(LIBAGENT): $(call nomain,$(AGENT_SRC))
	@rm -f $@; ar rcs $@ $^
$(LIBVERIF): $(call nomain,$(VERIFIER_SRC))
	@rm -f $@; ar rcs $@ $^
$(LIBTENANT): $(call nomain,$(TENANT_SRC))
	@rm -f $@; ar rcs $@ $^

$(BUILD)/quince-agent: $(call obj,$(AGENT_SRC)) $(LIBQ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/quince-verifier: $(call obj,$(VERIFIER_SRC)) $(LIBQ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/quince-tenant: $(call obj,$(TENANT_SRC)) $(LIBQ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests link the common library and every binary's non-main objects.
$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(LIBAGENT) $(LIBVERIF) $(LIBTENANT) $(LIBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -Wl,--start-group $(LIBAGENT) $(LIBVERIF) $(LIBTENANT) $(LIBQ) -Wl,--end-group $(LDLIBS) $(CMOCKA_LIBS)

$(BUILD)/tests/tools/%: $(BUILD)/obj/tests/tools/%.o $(LIBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIBTENANT) $(LIBVERIF) $(LIBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -Wl,--start-group $(LIBTENANT) $(LIBVERIF) $(LIBQ) -Wl,--end-group $(LDLIBS)

# The fleet simulator: one program in several files (tests/tools/fleet/fleet.h).
$(FLEET_BIN): $(call obj,$(FLEET_SRC)) $(LIBQ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tools: $(TOOL_BINS) $(FLEET_BIN)

# ---- dependencies -------------------------------------------------------------------------
check-deps:
	@packaging/install-deps.sh --check >/dev/null 2>&1

deps:
	@if ! packaging/install-deps.sh --check >/dev/null 2>&1; then \
	    echo "quince: installing missing build/test packages"; packaging/install-deps.sh; \
	 fi

# ---- tests --------------------------------------------------------------------------------
# Sanitised build in its own directory, then every unit and integration test.
test: deps
	$(MAKE) --no-print-directory SAN=1 BUILD=build/san all unit-bins
	@tests/run.sh build/san

unit-bins: $(UNIT_BINS)

unit: deps
	$(MAKE) --no-print-directory SAN=1 BUILD=build/san all unit-bins
	@tests/run.sh build/san unit

integration: deps
	$(MAKE) --no-print-directory SAN=1 BUILD=build/san all unit-bins
	@tests/run.sh build/san integration

# ThreadSanitizer build in build/tsan, then the unit tests and the integration tests that run the
# verifier's threads (tests/tsan.sh; TSAN_TESTS picks them): any ThreadSanitizer report fails.
TSAN_TESTS ?= verifier poller fake_agent mtls
tsan: deps
	$(MAKE) --no-print-directory TSAN=1 BUILD=build/tsan all unit-bins
	@tests/tsan.sh build/tsan $(TSAN_TESTS)

bench: deps
	$(MAKE) --no-print-directory BUILD=build/rel build/rel/quince-tenant build/rel/quince-agent build/rel/quince-verifier build/rel/tests/tools/ima_gen \
	    build/rel/tests/tools/quince-fleet $(patsubst $(BUILD)/%,build/rel/%,$(BENCH_BINS))
	@bench/run.sh build/rel

# The fleet figures alone (release verifiers and quince-fleet: one verifier, then three sharing
# one database; a few minutes).
bench-fleet: deps
	$(MAKE) --no-print-directory BUILD=build/rel build/rel/quince-verifier build/rel/quince-tenant build/rel/tests/tools/quince-fleet
	@bench/bench_fleet.sh build/rel
	@bench/bench_fleet_ha.sh build/rel

fuzz: deps
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

demo: deps
	$(MAKE) --no-print-directory all
	@packaging/demo/run.sh $(BUILD) $(DEMO_ARGS)

# ---- installing ---------------------------------------------------------------------------
# Man pages from the programs' own --help (help2man): they cannot drift from the code.
MANPAGES := $(BUILD)/man/quince-agent.8 $(BUILD)/man/quince-verifier.8 $(BUILD)/man/quince-tenant.1
UNITS    := $(wildcard packaging/systemd/*.service)

man: $(MANPAGES)
$(BUILD)/man/quince-agent.8: $(BUILD)/quince-agent
	@mkdir -p $(dir $@)
	help2man --no-info --section 8 --name "Quince remote-attestation agent" --output $@ $<
$(BUILD)/man/quince-verifier.8: $(BUILD)/quince-verifier
	@mkdir -p $(dir $@)
	help2man --no-info --section 8 --name "Quince verifier and registrar" --output $@ $<
$(BUILD)/man/quince-tenant.1: $(BUILD)/quince-tenant
	@mkdir -p $(dir $@)
	help2man --no-info --section 1 --name "manage agents of a Quince or Keylime verifier" --output $@ $<

install: $(BINS) $(MANPAGES)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/quince $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -d -m 0700 $(DESTDIR)$(STATEDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	# The units name the binaries where this install puts them.
	for u in $(UNITS); do \
	    sed -e 's|/usr/local/bin/|$(BINDIR)/|g' $$u >$(DESTDIR)$(UNITDIR)/$${u##*/} && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -m 0644 $(BUILD)/man/quince-tenant.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(BUILD)/man/quince-agent.8 $(BUILD)/man/quince-verifier.8 $(DESTDIR)$(MANDIR)/man8/
	test -e $(DESTDIR)$(SYSCONFDIR)/quince/quince.conf || \
	    install -m 0644 packaging/quince.conf $(DESTDIR)$(SYSCONFDIR)/quince/quince.conf

# Debian packages: a clean copy of the tree with packaging/debian as its debian/, built by
# dpkg-buildpackage (a release build with dpkg-buildflags' hardening flags); the .debs land in
# DEBDIR (build/deb).
DEBDIR ?= build/deb
deb:
	rm -rf $(DEBDIR) && mkdir -p $(DEBDIR)/quince-$(VERSION)
	tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C $(DEBDIR)/quince-$(VERSION)
	rm -rf $(DEBDIR)/quince-$(VERSION)/debian
	cp -r packaging/debian $(DEBDIR)/quince-$(VERSION)/debian
	cd $(DEBDIR)/quince-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls $(DEBDIR)/*.deb

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
