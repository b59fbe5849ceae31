# Axon: thin wrapper over CMake for the README's commands.
#   make run    install missing packages, build, run the chat demo (two nodes, ~10 s)
#   make chat   build and start one chat server on 127.0.0.1:6667 (LISTEN=addr)
#   make test   install missing packages, build, run every test suite
#   make bench  install peers, build, run the benchmark suite
#   make install PREFIX=/opt/axon   build, then cmake --install into PREFIX
#   make test-posix  the socket layer's plain-POSIX (BSD/macOS) calls, built
#               and run on this machine: the io suites and the echo example
#   make pubsub build and start the RESP pub/sub broker on 127.0.0.1:6380
#   make soak   a mixed load on two-node chat and pub/sub clusters plus actor
#               churn for SOAK_SECONDS (default 600), checking loss, RSS, fds
#   make test-faults  the multi-process fault tests (kill -9, SIGSTOP, network
#               cut between node processes; also part of make test)
#   make fuzz   build the libFuzzer targets (clang-14, build-fuzz) and run
#               each for FUZZ_SECONDS (default 60); one FUZZ line per target
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 60

.PHONY: all deps build run chat test bench clean test-asan test-tsan test-posix install pubsub \
	test-faults soak fuzz

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@python3 examples/chat/demo.py $(BUILD)/examples/chat

chat: build
	$(BUILD)/examples/chat --listen $(or $(LISTEN),127.0.0.1:6667)

pubsub: build
	$(BUILD)/examples/pubsub --listen $(or $(LISTEN),127.0.0.1:6380)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-faults: build
	cd $(BUILD) && ctest --output-on-failure -R '^faults\.'

SOAK_SECONDS ?= 600
soak: build
	@SOAK_SECONDS=$(SOAK_SECONDS) python3 bench/soak.py $(BUILD)

test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAX_SANITIZE=address >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

test-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAX_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS)

# AX_SOCKET_OS=posix: socket_os_posix.c and socket_zc_none.c, what a BSD or
# macOS build compiles, here on epoll. Only what the io suites, the echo
# example and the portability checks need is built.
POSIX_TARGETS = ax echo $(patsubst tests/%.c,%,$(wildcard tests/test_io_*.c))
test-posix: deps
	@cmake -S . -B build-posix -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAX_SOCKET_OS=posix \
	  -DAX_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-posix -j $(JOBS) --target $(POSIX_TARGETS)
	cd build-posix && ctest --output-on-failure -j $(JOBS) -R '^(io\.|example\.echo$$|portability\.)'

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	@sh scripts/deps.sh bench
	@bash bench/peers/build.sh $(BUILD)/bench/peers
	@bash bench/run.sh

# docs/hardening.md "Fuzzing"; CI runs it with FUZZ_SECONDS=10.
fuzz: deps
	@sh scripts/deps.sh fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) sh scripts/fuzz.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan build-posix build-fuzz
