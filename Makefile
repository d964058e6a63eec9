# The README's commands. `make run` builds and starts a demo; `make test`
# runs every test. Both install what they need on a fresh Debian machine.
BUILD ?= build
ASAN ?= build-asan
FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 120
DATA ?= .data

.PHONY: all deps web-deps build run test fuzz bench clean deb

all: build

deps:
	./scripts/deps.sh $(DEPS_FLAGS)

web-deps:
	cd web && ([ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund)

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_FLAGS)

build: deps web-deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	./scripts/demo.sh $(BUILD)/bastion $(DATA)

$(ASAN)/build.ninja:
	CC=clang meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false

$(FUZZ)/build.ninja:
	CC=clang meson setup $(FUZZ) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

test: DEPS_FLAGS=--test
test: build $(ASAN)/build.ninja $(FUZZ)/build.ninja
	./scripts/test.sh $(BUILD) $(ASAN) $(FUZZ)

# Each libFuzzer target for FUZZ_SECONDS (default 2 minutes).
fuzz: DEPS_FLAGS=--test
fuzz: deps web-deps $(FUZZ)/build.ninja
	ninja -C $(FUZZ)
	./scripts/fuzz.sh $(FUZZ) $(FUZZ_SECONDS)

# The Debian package, from the build's binary: $(DEB_DIR)/bastion_VERSION_ARCH.deb
# (packaging/deb/build.sh; docs/operations.md says what it installs).
DEB_DIR ?= $(BUILD)/deb
deb: build
	./packaging/deb/build.sh $(BUILD)/bastion $(DEB_DIR)

# Performance against direct ssh and the peers (BENCHMARKS.md); never part of
# `make test`. Needs root (network namespaces); about 6–10 minutes.
bench: build
	./bench/setup.sh $(BUILD)/bench
	./bench/run.sh $(BUILD)/bastion $(BUILD)/bench/results

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
