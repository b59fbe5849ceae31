# Axon: thin wrapper over CMake for the README's commands.
#   make run    install missing packages, build, run the main example
#   make test   install missing packages, build, run every test suite
#   make bench  install peers, build, run the benchmark suite
#   make pubsub build and start the RESP pub/sub broker on 127.0.0.1:6380
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all deps build run test bench clean test-asan test-tsan pubsub

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/examples/hello

pubsub: build
	$(BUILD)/examples/pubsub/pubsub --listen $(or $(LISTEN),127.0.0.1:6380)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAX_SANITIZE=address >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

test-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAX_SANITIZE=thread >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS)

bench: build
	@sh scripts/deps.sh bench
	@bash bench/peers/build.sh $(BUILD)/bench/peers
	@bash bench/run.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan
