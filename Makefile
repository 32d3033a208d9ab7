# azrestore: `make demo` runs the main job on the local emulator, `make test` runs the tests.
# Both install what they need first (Python packages into .venv, Azurite from npm into
# .tools/, qemu-utils and disk tools from apt when missing).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(CURDIR)/.tools
AZURITE_VERSION := 3.35.0
AZCOPY_NPM := @azure-tools/azcopy-linux
APT_PACKAGES := qemu-utils nbdkit gdisk fdisk e2fsprogs ntfs-3g dosfstools xfsprogs libsecret-1-0 shellcheck lvm2 libhivex-bin sbsigntool mtools
export AZRESTORE_AZURITE := $(TOOLS)/node_modules/.bin/azurite-blob
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install test lint typecheck unit demo bench bench-bulk bench-gateway bench-sources bench-restore clean

install: $(VENV)/.installed $(TOOLS)/.azurite-$(AZURITE_VERSION) .apt-installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(TOOLS)/.azurite-$(AZURITE_VERSION):
	mkdir -p $(TOOLS)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) azurite@$(AZURITE_VERSION)
	touch $@

# qemu-img is the independent reader of every VHD we write, and qemu-nbd serves container images
# (qcow2, VMDK, VHDX, VHD, VDI) as sources; nbdkit serves NBD exports to the tests;
# sgdisk/sfdisk/mkfs build test images
# (mkfs.xfs: a file system with reflink, for convert's clone path); lvm2 and hivex
# (hivexsh, hivexget) prepare restored disks in the emulator's helpers and read them back.
.apt-installed:
	@missing=""; \
	command -v qemu-img >/dev/null || missing=1; command -v sgdisk >/dev/null || missing=1; \
	command -v sfdisk >/dev/null || missing=1; command -v mkntfs >/dev/null || missing=1; \
	command -v mkfs.ext4 >/dev/null || missing=1; command -v shellcheck >/dev/null || missing=1; \
	command -v mkfs.vfat >/dev/null || missing=1; command -v ntfscp >/dev/null || missing=1; \
	command -v mkfs.xfs >/dev/null || missing=1; command -v qemu-nbd >/dev/null || missing=1; \
	command -v nbdkit >/dev/null || missing=1; command -v lvm >/dev/null || missing=1; \
	command -v hivexsh >/dev/null || missing=1; command -v sbsign >/dev/null || missing=1; \
	command -v mcopy >/dev/null || missing=1; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@touch $@

lint: install
	$(BIN)/ruff check azrestore tests benchmarks
	$(BIN)/ruff format --check azrestore tests benchmarks

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest -q

demo: install
	$(BIN)/python -m azrestore.cli.demo

$(TOOLS)/.azcopy:
	mkdir -p $(TOOLS)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) $(AZCOPY_NPM)
	touch $@

bench: install $(TOOLS)/.azcopy
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-bulk: install
	$(BIN)/python -m benchmarks.bulk $(BENCH_ARGS)

bench-gateway: install
	$(BIN)/python -m benchmarks.gateway $(BENCH_ARGS)

bench-sources: install
	$(BIN)/python -m benchmarks.sources $(BENCH_ARGS)

# 1, 4 and 12 VMs restored on the emulator's clock (recorded scripts): the 12/1 ratio
bench-restore: install
	$(BIN)/python -m benchmarks.restore_scale $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .apt-installed .mypy_cache .ruff_cache .hypothesis
