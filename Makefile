# Two commands do everything: `make demo` and `make test`. Both set up dependencies first.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build demo test test-asan fuzz bench install clean

all: build

deps:
	./scripts/setup-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	./scripts/demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The same tests built with AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
# CUDA is left out here: the sanitizers do not cover device code, and `make test` compiles it.
test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMLXC_SANITIZE=ON -DMLXC_CUDA=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS)

# libFuzzer targets, each run for a short time (FUZZ_SECONDS) over its seed corpus.
FUZZ_SECONDS ?= 20
fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DMLXC_FUZZ=ON -DMLXC_CUDA=OFF $(CMAKE_FLAGS)
	cmake --build build-fuzz -j$(JOBS)
	./scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	./scripts/run-benchmarks.sh $(BUILD)

PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
