# sizeup build.
#
# Public targets: all, test, asan, tsan, test-neon, fuzz, deps, deps-neon, run, install, clean
# (see `make help`).
# test, asan, fuzz and run install missing Debian packages first (target deps), then call this
# Makefile again, so pkg-config is asked only after the packages are there.

SHELL       := /bin/bash
CC          ?= cc
BUILD       ?= build
PREFIX      ?= /usr/local
DESTDIR     ?=
SIZEUP_FIXTURES ?= ../shared/fixtures
export SIZEUP_FIXTURES
ARGS        ?=
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)

# Debian packages the build, the tests and the fuzzer need (python3: tests/oaisrv.py, the
# OpenAI-compatible test server of test_remote and e2e/remote.sh).
DEB_PKGS := make gcc clang pkg-config libncurses-dev libreadline-dev libcurl4-openssl-dev \
            libvulkan-dev glslc libcmocka-dev libpcre2-dev libssl-dev libjansson-dev \
            mesa-vulkan-drivers vulkan-validationlayers libclang-rt-14-dev tmux \
            nginx openssl jq python3

PKGS        := ncursesw readline libcurl vulkan libpcre2-8 libcrypto jansson
PKG_CFLAGS   = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libvulkan is opened at run time (engine/vk_device.c), so sizeup starts and says so clearly on
# a machine without a Vulkan loader; only its headers are used at build time.
PKG_LIBS     = $(shell pkg-config --libs $(filter-out vulkan,$(PKGS)) 2>/dev/null)
CMOCKA_LIBS  = $(shell pkg-config --libs cmocka 2>/dev/null)

WARN        := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS      ?= -O2 -g
SAN_FLAGS   ?=
ALL_CFLAGS   = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SAN_FLAGS) -I. -I$(BUILD)/gen \
               $(PKG_CFLAGS) -MMD -MP
LDLIBS       = $(PKG_LIBS) -lm -lpthread

ENGINE_SRC  := $(wildcard engine/*.c)
DL_SRC      := $(wildcard downloads/*.c)
UI_SRC      := $(wildcard ui/*.c)
APP_SRC     := $(filter-out app/main.c,$(wildcard app/*.c))
LIB_SRC     := $(ENGINE_SRC) $(DL_SRC) $(UI_SRC) $(APP_SRC)
LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/shaders.o
MAIN_OBJ    := $(BUILD)/obj/app/main.o

# Shader modules: every shaders/*.comp, plus the variants listed in shaders/variants.txt (one
# shared body compiled with different macros; see that file).
SHADER_COMP := $(sort $(wildcard shaders/*.comp))
VARIANT_TXT := shaders/variants.txt
VARIANT_ROWS := $(shell sed -e 's/\#.*//' -e '/^[[:space:]]*$$/d' -e 's/[[:space:]][[:space:]]*/:/g' $(VARIANT_TXT))
VARIANTS    := $(foreach r,$(VARIANT_ROWS),$(word 1,$(subst :, ,$(r))))
SHADERS     := $(sort $(SHADER_COMP:shaders/%.comp=%) $(VARIANTS))
SPV_INC     := $(SHADERS:%=$(BUILD)/gen/spv/%.inc)
GLSLC_FLAGS := --target-env=vulkan1.2 -O -Werror
# The list of modules, rewritten only when it changes, so adding or removing a shader or a
# variant regenerates the table (defined before the rules that name it as a prerequisite).
SHADER_LIST := $(BUILD)/gen/shader-list.txt
$(shell mkdir -p $(BUILD)/gen; echo "$(SHADERS)" | cmp -s - $(SHADER_LIST) || echo "$(SHADERS)" > $(SHADER_LIST))

TEST_SRC    := $(wildcard tests/test_*.c)
TEST_BIN    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
E2E         := $(sort $(wildcard tests/e2e/*.sh))

.PHONY: all help test asan tsan test-neon fuzz fuzz-run deps deps-neon run install clean build-tests \
        run-tests check-fixtures
.DEFAULT_GOAL := all

all: $(BUILD)/sizeup

help:
	@echo "make            build build/sizeup"
	@echo "make run        install missing packages, build, run build/sizeup \$$ARGS (default none: the chat TUI)"
	@echo "make test       install missing packages, build and run every test"
	@echo "make asan       the same tests under AddressSanitizer + UBSan (build/asan)"
	@echo "make tsan       the CPU backend's threaded tests under ThreadSanitizer (build/tsan)"
	@echo "make test-neon  the CPU kernel test cross-built for AArch64, run under qemu-aarch64 (build/neon)"
	@echo "make fuzz       build the libFuzzer GGUF harness and run it (FUZZ_SECONDS, default 60)"
	@echo "make deps       install missing Debian packages (apt-get; quiet when all are there)"
	@echo "make deps-neon  the same for test-neon's cross compiler and qemu"
	@echo "make install    install to \$$DESTDIR\$$PREFIX (default /usr/local)"
	@echo "make clean      remove build/"

# Quiet by default (one line per file); `make V=1` shows the commands.
Q := $(if $(V),,@)

$(BUILD)/sizeup: $(MAIN_OBJ) $(LIB_OBJ)
	@echo "  LINK    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c | $(BUILD)/gen/shaders.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# ---- shaders: glslc -> C initializer text -> one generated table ----
# glslc -MD writes a dependency file, so editing an included .glsl rebuilds what uses it. glslc
# has no -MP, so spv_dep copies it to a .dep file with an empty rule per prerequisite: a deleted
# or renamed shader source then does not break the next build (only .dep files are included).
spv_dep = { cat $(1).d; sed -e 's/^[^:]*://' -e 's/\\$$//' $(1).d | tr ' ' '\n' | \
            sed -e '/^$$/d' -e 's/$$/:/'; } > $(1).dep
$(BUILD)/gen/spv/%.inc: shaders/%.comp
	@mkdir -p $(dir $@)
	@echo "  GLSLC   $<"
	$(Q)glslc $(GLSLC_FLAGS) -Ishaders -mfmt=c -MD -MF $(BUILD)/gen/spv/$*.d -MT $@ -o $@ $<
	$(Q)$(call spv_dep,$(BUILD)/gen/spv/$*)

# A variant: its body compiled as a compute shader (GLSL 450) with its macros defined. It also
# depends on variants.txt, so changing a variant's macros rebuilds it.
define variant_rule
$(BUILD)/gen/spv/$(1).inc: shaders/$(2) $(VARIANT_TXT)
	@mkdir -p $$(dir $$@)
	@echo "  GLSLC   $(1) ($(2)$(if $(3), $(3)))"
	$$(Q)glslc $$(GLSLC_FLAGS) -fshader-stage=compute -std=450 $(3:%=-D%) -Ishaders -mfmt=c \
	  -MD -MF $(BUILD)/gen/spv/$(1).d -MT $$@ -o $$@ $$<
	$$(Q)$$(call spv_dep,$(BUILD)/gen/spv/$(1))
endef
$(foreach r,$(VARIANT_ROWS),$(eval $(call variant_rule,$(word 1,$(subst :, ,$(r))),$(word 2,$(subst :, ,$(r))),$(wordlist 3,99,$(subst :, ,$(r))))))

$(BUILD)/gen/shaders.c: $(SPV_INC) $(SHADER_LIST) Makefile
	@mkdir -p $(dir $@)
	@{ echo '/* generated by the Makefile from the shaders folder; do not edit */'; \
	   echo '#include "shaders.h"'; \
	   for s in $(SHADERS); do \
	     echo "static const uint32_t spv_$$s[] ="; echo "#include \"spv/$$s.inc\""; echo ";"; \
	   done; \
	   echo 'const vk_shader_blob vk_shader_table[] = {'; \
	   for s in $(SHADERS); do \
	     echo "    { \"$$s\", spv_$$s, sizeof spv_$$s },"; \
	   done; \
	   echo '    { 0, 0, 0 }'; echo '};'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/shaders.h: Makefile
	@mkdir -p $(dir $@)
	@{ echo '/* generated by the Makefile; do not edit */'; \
	   echo '#ifndef SIZEUP_SHADERS_GEN_H'; echo '#define SIZEUP_SHADERS_GEN_H'; \
	   echo '#include <stddef.h>'; echo '#include <stdint.h>'; \
	   echo 'typedef struct vk_shader_blob { const char *name; const uint32_t *code; size_t size; } vk_shader_blob;'; \
	   echo '/* Every compiled shader, ended by an entry whose name is NULL. */'; \
	   echo 'extern const vk_shader_blob vk_shader_table[];'; \
	   echo '#endif'; } > $@.tmp && mv $@.tmp $@

# No compiler dependency file here: shaders.c's dependencies are the .inc files listed above,
# and a recorded list would go stale (and break the build) when a shader is removed.
$(BUILD)/obj/gen/shaders.o: $(BUILD)/gen/shaders.c $(BUILD)/gen/shaders.h
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) -c -o $@ $<

# ---- tests ----
$(BUILD)/tests/%: tests/%.c $(LIB_OBJ) tests/testutil.h
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) $(CMOCKA_LIBS)

build-tests: $(BUILD)/sizeup $(TEST_BIN)

check-fixtures:
	@test -d "$(SIZEUP_FIXTURES)/models" || { echo "error: fixtures not found at SIZEUP_FIXTURES=$(SIZEUP_FIXTURES) (expected models/ inside it)" >&2; exit 1; }

# Every test binary and e2e script runs even when one fails; the summary line counts them.
# The Vulkan tests run a second time under the Khronos validation layer (docs/DESIGN.md section 5.1);
# that run fails on any validation message.
# Each one runs under a time limit (TEST_TIMEOUT seconds, multiplied by TEST_TIMEOUT_SCALE,
# which `make asan` raises because sanitized code is slower), so a hang fails with a message
# naming the test instead of stalling CI: TERM at the limit, KILL 10 s later.
VALIDATE_ENV := VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation SIZEUP_VK_VALIDATE=1
VALIDATE_TESTS := $(filter test_vk test_vk_ops test_vk_matmul test_model,$(TEST_SRC:tests/%.c=%))
TEST_TIMEOUT       ?= 300
TEST_TIMEOUT_SCALE ?= 1
run-tests: build-tests check-fixtures
	@pass=0; fail=0; failed=""; limit=$$(( $(TEST_TIMEOUT) * $(TEST_TIMEOUT_SCALE) )); \
	for t in $(TEST_BIN) $(E2E) $(VALIDATE_TESTS:%=validate:$(BUILD)/tests/%); do \
	  echo "=== $$t"; name=$$t; \
	  case $$t in validate:*) t=$${t#validate:}; env="$(VALIDATE_ENV)";; *) env="";; esac; \
	  start=$$(date +%s); \
	  env $$env SIZEUP_BIN=$(BUILD)/sizeup timeout -k 10 $$limit $$t; rc=$$?; \
	  if [ $$rc -eq 124 ] || [ $$rc -eq 137 ]; then \
	    echo "FAIL: $$name did not finish within its limit of $$limit s (TEST_TIMEOUT); stopped"; fi; \
	  echo "--- $$name: exit $$rc, $$(( $$(date +%s) - start )) s"; \
	  if [ $$rc -eq 0 ]; then pass=$$((pass+1)); else fail=$$((fail+1)); failed="$$failed $$name"; fi; \
	done; \
	echo; [ -z "$$failed" ] || echo "failed:$$failed"; \
	echo "tests: $$pass passed, $$fail failed"; \
	[ $$fail -eq 0 ]

test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) build-tests
	@$(MAKE) --no-print-directory run-tests

# Lavapipe and the Vulkan loader keep a few allocations for the process lifetime; LSan is told
# about those (and only those) in tests/lsan.supp.
ASAN_ENV := ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0

asan: deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build/asan CFLAGS="-O1 -g" \
	  SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" build-tests
	@$(ASAN_ENV) $(MAKE) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g" TEST_TIMEOUT_SCALE=2 \
	  SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" run-tests

# ThreadSanitizer over the tests of the CPU backend's threads: test_concurrency (sessions on
# threads, cancel from another thread, the shared pool), test_session, test_model. Their Vulkan
# cases skip (SIZEUP_TEST_CPU_ONLY=1): lavapipe's own threads are not what is checked here.
# tests/tsan.supp may name Mesa/loader frames only, never sizeup's code.
TSAN_TESTS := test_concurrency test_session test_model
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
TSAN_ENV   := TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
              SIZEUP_TEST_CPU_ONLY=1 SIZEUP_BIN=build/tsan/sizeup
tsan: deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build/tsan CFLAGS="-O1 -g" SAN_FLAGS="$(TSAN_FLAGS)" \
	  build/tsan/sizeup $(TSAN_TESTS:%=build/tsan/tests/%)
	@$(MAKE) --no-print-directory check-fixtures
	@fail=0; for t in $(TSAN_TESTS); do echo "=== build/tsan/tests/$$t"; \
	  env $(TSAN_ENV) build/tsan/tests/$$t || fail=$$((fail+1)); done; \
	echo "tsan: $$fail of $(words $(TSAN_TESTS)) test programs failed"; [ $$fail -eq 0 ]

# ---- the NEON kernels on an x86-64 host: cross-compiled, run under qemu-user ----
# tests/test_cpu_kernels.c with only the sources it needs, built by the AArch64 cross compiler
# and run twice under qemu-aarch64: on `-cpu max` (has the dot product instructions, so both
# the neon and neondot kernels run) and on `-cpu cortex-a53` (ARMv8.0: neon only).
# SIZEUP_TEST_EXPECT_ISA makes the test fail if the CPU model did not give the set it should.
# The arm64 cmocka comes as .debs from the Debian archive, fetched with a private package list
# (build/neon/apt-lists) and unpacked into build/neon/sysroot; the system's apt configuration
# and dpkg database are not touched.
NEON_DEB_PKGS := gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
NEON_CC     := aarch64-linux-gnu-gcc
NEON_DIR    := $(BUILD)/neon
NEON_ROOT   := $(NEON_DIR)/sysroot
NEON_LIB    := $(NEON_ROOT)/usr/lib/aarch64-linux-gnu
NEON_SRC    := tests/test_cpu_kernels.c engine/cpu_kernels.c engine/cpu_kernels_avx2.c \
               engine/cpu_kernels_avx512.c engine/cpu_kernels_neon.c engine/quant.c \
               engine/quant_k.c engine/gguf.c
NEON_APT    := -o APT::Architecture=arm64 -o APT::Architectures=arm64 \
               -o Dir::State::Lists=$(abspath $(NEON_DIR))/apt-lists \
               -o Dir::Cache=$(abspath $(NEON_DIR))/apt-cache -o Dir::State::status=/dev/null
NEON_QEMU   := timeout -k 10 120 qemu-aarch64 -L /usr/aarch64-linux-gnu

$(NEON_ROOT)/usr/include/cmocka.h:
	@mkdir -p $(NEON_DIR)/apt-lists/partial $(NEON_DIR)/apt-cache/archives/partial $(NEON_DIR)/debs
	@echo "  APT     arm64 libcmocka0 libcmocka-dev -> $(NEON_ROOT)"
	$(Q)apt-get -qq $(NEON_APT) -o APT::Sandbox::User=$$(id -un) update
	$(Q)cd $(NEON_DIR)/debs && rm -f *.deb && \
	  apt-get -qq $(NEON_APT) -o APT::Sandbox::User=$$(id -un) download libcmocka0 libcmocka-dev
	$(Q)for f in $(NEON_DIR)/debs/*.deb; do dpkg-deb -x $$f $(NEON_ROOT) || exit 1; done
	$(Q)test -f $@

$(NEON_DIR)/test_cpu_kernels: $(NEON_SRC) engine/cpu_kernels_neon.inc $(wildcard engine/*.h) \
                              tests/testutil.h $(NEON_ROOT)/usr/include/cmocka.h
	@echo "  CC      $@ (aarch64)"
	$(Q)$(NEON_CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -I. -I$(NEON_ROOT)/usr/include -o $@ \
	  $(NEON_SRC) -L$(NEON_LIB) -Wl,-rpath,$(abspath $(NEON_LIB)) -lcmocka -lm

test-neon: deps-neon
	@$(MAKE) --no-print-directory $(NEON_DIR)/test_cpu_kernels
	@fail=0; for run in max:neondot cortex-a53:neon; do cpu=$${run%%:*}; isa=$${run#*:}; \
	  echo "=== qemu-aarch64 -cpu $$cpu $(NEON_DIR)/test_cpu_kernels (expects $$isa)"; \
	  SIZEUP_TEST_EXPECT_ISA=$$isa $(NEON_QEMU) -cpu $$cpu $(NEON_DIR)/test_cpu_kernels || fail=$$((fail+1)); \
	done; echo "test-neon: $$fail of 2 runs failed"; [ $$fail -eq 0 ]

# ---- fuzzing (libFuzzer, clang) ----
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined
FUZZ_CORPUS  := $(BUILD)/fuzz/corpus
DL_FUZZ_CORPUS := $(BUILD)/fuzz/corpus-dl

$(BUILD)/fuzz/fuzz_gguf: tests/fuzz/fuzz_gguf.c engine/gguf.c engine/gguf_get.c engine/gguf_write.c engine/strbuf.c engine/gguf.h
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_gguf.c engine/gguf.c engine/gguf_get.c engine/gguf_write.c engine/strbuf.c

$(BUILD)/fuzz/mkseeds: tests/fuzz/mkseeds.c engine/gguf.c engine/gguf_get.c engine/gguf_write.c engine/strbuf.c engine/gguf.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -I. -o $@ tests/fuzz/mkseeds.c engine/gguf.c engine/gguf_get.c engine/gguf_write.c engine/strbuf.c

DL_FUZZ_SRC := tests/fuzz/fuzz_dl.c $(DL_SRC) engine/strbuf.c engine/utf8.c
$(BUILD)/fuzz/fuzz_dl: $(DL_FUZZ_SRC) $(wildcard downloads/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $(shell pkg-config --cflags libcurl jansson libcrypto) -o $@ \
	  $(DL_FUZZ_SRC) $(shell pkg-config --libs libcurl jansson libcrypto) -lpthread

fuzz: deps
	@$(MAKE) --no-print-directory $(BUILD)/fuzz/fuzz_gguf $(BUILD)/fuzz/mkseeds $(BUILD)/fuzz/fuzz_dl
	@$(MAKE) --no-print-directory fuzz-run

# Seeds: a small valid copy of every fixture GGUF (same keys, types and tensor names; arrays
# and tensors cut short) plus each fixture's first 64 KiB.
fuzz-run: check-fixtures
	@mkdir -p $(FUZZ_CORPUS)
	@files=$$(find "$(SIZEUP_FIXTURES)" -name '*.gguf'); \
	$(BUILD)/fuzz/mkseeds $(FUZZ_CORPUS) $$files && \
	for f in $$files; do head -c 65536 "$$f" > $(FUZZ_CORPUS)/head-$$(basename $$f); done
	timeout -k 10 $$(( $(FUZZ_SECONDS) + 120 )) $(BUILD)/fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) \
	  -timeout=30 -max_len=70000 -rss_limit_mb=2048 \
	  -print_final_stats=1 $(FUZZ_CORPUS)
	@# the download parsers: references and catalog files, seeded with the shipped catalog
	@mkdir -p $(DL_FUZZ_CORPUS)
	@{ printf '\001'; cat downloads/catalog.json; } > $(DL_FUZZ_CORPUS)/catalog
	@for r in qwen2.5:0.5b llama3.2:1b:Q8_0 hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0 \
	  hf.co/o/r/sub/m-Q4_K_M-00001-of-00003.gguf https://h.example/x/y.gguf ./m.gguf; do \
	  printf '\000%s' "$$r" > $(DL_FUZZ_CORPUS)/ref-$$(echo "$$r" | tr -c 'a-zA-Z0-9' _); done
	timeout -k 10 $$(( $(FUZZ_SECONDS) + 120 )) $(BUILD)/fuzz/fuzz_dl -max_total_time=$(FUZZ_SECONDS) \
	  -timeout=30 -max_len=65536 -rss_limit_mb=2048 \
	  -print_final_stats=1 $(DL_FUZZ_CORPUS)

# ---- packages ----
# $(call install_missing,PACKAGES): apt-get installs those not installed yet; quiet otherwise.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing missing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PKGS))

deps-neon:
	$(call install_missing,$(NEON_DEB_PKGS))

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	./$(BUILD)/sizeup $(ARGS)

# The built-in demo models go beside the catalog: the binary finds both as ../share/sizeup/...
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sizeup/builtin
	install -m 755 $(BUILD)/sizeup $(DESTDIR)$(PREFIX)/bin/sizeup
	install -m 644 downloads/catalog.json $(DESTDIR)$(PREFIX)/share/sizeup/catalog.json
	install -m 644 downloads/builtin/*.gguf downloads/builtin/README.md \
	  $(DESTDIR)$(PREFIX)/share/sizeup/builtin/

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null) $(wildcard $(BUILD)/gen/spv/*.dep)
