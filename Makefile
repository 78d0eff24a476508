# Thin wrapper around the CMake presets (CMakePresets.json). Every target that builds first
# runs scripts/deps.sh, which installs missing Debian packages (or says which are missing).
#
#   make / make build   release build (-O2, asserts on); programs in build/bin/
#   make demo ARGS=..   build, then run build/bin/sluice-gateway, else build/bin/sluice-demo
#   make check          release + asan (ASan+UBSan) builds with -Werror, full test suite each,
#                       then the unit tests again with SLUICE_NO_MEMBARRIER=1 in each (in asan
#                       also with detect_stack_use_after_return=1); then
#                       the full suite on the portable swapcontext switch (ucontext preset)
#   make check-tsan     tsan build, full test suite under ThreadSanitizer, unit tests again
#                       with SLUICE_NO_MEMBARRIER=1
#   make check-valgrind valgrind build, every test case under valgrind
#   make install        PREFIX=/usr/local (DESTDIR honoured)
#   make format | format-check | lint | bench | clean

SHELL      := /bin/bash
PREFIX     ?= /usr/local
DESTDIR    ?=
ARGS       ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_JOBS ?= 2
PEERS_COMPARE ?= ../shared/peers/compare

CTEST := ctest --output-on-failure -j$(CTEST_JOBS)

# scripts/lsan.supp: glibc's per-thread resolver state, which it frees itself (see the file).
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ASAN_ENV_UAR := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 \
            LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# ThreadSanitizer: compiler and ASLR.
# - Compiler: Debian's default cc, gcc 12. Its libtsan.so.2 exports __tsan_create_fiber,
#   __tsan_switch_to_fiber, __tsan_get_current_fiber and __tsan_destroy_fiber and it ships
#   <sanitizer/tsan_interface.h>, which the coroutine switch annotations need. clang 14 (with
#   libclang-rt-14-dev) has the same interface and works too; one compiler for all presets is
#   simpler, so the presets do not pick clang.
# - ASLR: TSan runtimes of this generation (gcc 12, LLVM <= 17) abort with "FATAL:
#   ThreadSanitizer: unexpected memory mapping" when the kernel randomises mmap with more bits
#   than their shadow layout expects (e.g. vm.mmap_rnd_bits=32 on recent Ubuntu kernels), and
#   unlike newer runtimes they do not re-exec themselves without ASLR. Measured on this
#   machine (kernel 6.18, vm.mmap_rnd_bits=28): a probe that starts a thread and switches to
#   a second stack with __tsan_create_fiber/__tsan_switch_to_fiber, built with gcc-12 and
#   with clang-14 -fsanitize=thread, passed 30 of 30 runs each, both with ASLR on and under
#   setarch -R. A CI kernel may randomise more, so the suite always runs under
#   `setarch <arch> -R` (ASLR off for ctest and, by inheritance, every test) when the
#   personality call is allowed; lowering vm.mmap_rnd_bits instead would need sysctl rights
#   and change the whole machine.
TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
TSAN_WRAP := $(shell setarch $$(uname -m) -R true >/dev/null 2>&1 && echo setarch $$(uname -m) -R)

FORMAT_DIRS := $(wildcard include src test examples gateway bench)

# $(call build,<preset>,<extra cmake -D args>)
define build
	cmake --preset $(1) $(2)
	cmake --build --preset $(1) -j$(JOBS)
endef

.NOTPARALLEL:
.PHONY: all build deps demo check check-release check-asan check-ucontext check-tsan check-valgrind \
        install format format-check lint bench clean check-aarch64

all: build

deps:
	@scripts/deps.sh

build: deps
	$(call build,release)

demo: build
	@if [ -x build/bin/sluice-gateway ]; then set -x; build/bin/sluice-gateway $(ARGS); \
	elif [ -x build/bin/sluice-demo ]; then set -x; build/bin/sluice-demo $(ARGS); \
	else echo "neither build/bin/sluice-gateway nor build/bin/sluice-demo was built" >&2; exit 1; fi

check: check-release check-asan check-ucontext

check-release: deps
	$(call build,release,-DSLUICE_WERROR=ON)
	cd build/release && $(CTEST)
	@# The unit tests again without membarrier: waits publish with an exchange and no lock is
	@# ever biased (the path old kernels and seccomp-filtered processes take).
	cd build/release && SLUICE_NO_MEMBARRIER=1 $(CTEST) -L unit

check-asan: deps
	$(call build,asan,-DSLUICE_WERROR=ON)
	cd build/asan && $(ASAN_ENV) $(CTEST)
	@# As in check-release: the exchange-at-wait, never-biased paths get the sanitizers too;
	@# this pass also puts every frame's locals on ASan's fake stacks (use after return), as a
	@# user's ASan run may, so state kept in a frame across a switch is checked there.
	cd build/asan && $(ASAN_ENV_UAR) SLUICE_NO_MEMBARRIER=1 $(CTEST) -L unit

# The portable context switch (what targets without a hand-written switch get): kept honest by
# the whole suite, since nothing else on x86-64 builds it.
check-ucontext: deps
	$(call build,ucontext,-DSLUICE_WERROR=ON)
	cd build/ucontext && $(CTEST)

# The aarch64 context switch, cross-built and run under qemu-user (not part of CI).
check-aarch64:
	scripts/check-aarch64.sh

check-tsan: deps
	$(call build,tsan,-DSLUICE_WERROR=ON)
	cd build/tsan && $(TSAN_ENV) SLUICE_TEST_SCALE=$${SLUICE_TEST_SCALE:-2} $(TSAN_WRAP) $(CTEST)
	cd build/tsan && $(TSAN_ENV) SLUICE_TEST_SCALE=$${SLUICE_TEST_SCALE:-2} SLUICE_NO_MEMBARRIER=1 \
	    $(TSAN_WRAP) $(CTEST) -L unit

check-valgrind: deps
	$(call build,valgrind,-DSLUICE_WERROR=ON)
	cd build/valgrind && SLUICE_TEST_SCALE=$${SLUICE_TEST_SCALE:-5} $(CTEST)

install: build
	DESTDIR=$(DESTDIR) cmake --install build/release --prefix $(PREFIX)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

format: deps
	find $(FORMAT_DIRS) -name '*.[ch]' -print0 | xargs -0 -r clang-format -i

format-check: deps
	find $(FORMAT_DIRS) -name '*.[ch]' -print0 | xargs -0 -r clang-format --dry-run -Werror

lint: build
	scripts/lint.sh build/release
	find src -name '*.c' -print0 | xargs -0 -r -n 8 -P $(JOBS) clang-tidy -p build/release --quiet --extra-arg=-Wno-ignored-optimization-argument

bench: deps
	@if [ ! -f bench/CMakeLists.txt ]; then echo "bench/CMakeLists.txt does not exist yet" >&2; exit 1; fi
	cmake --preset bench
	cmake --build --preset bench -j$(JOBS) --target sluice-bench
	@if [ -x $(PEERS_COMPARE) ]; then set -x; $(PEERS_COMPARE) $(ARGS); \
	else set -x; build/bench/sluice-bench $(ARGS); fi

clean:
	rm -rf build
