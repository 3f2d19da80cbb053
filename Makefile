# Vigil — the front door. `make run` and `make test` install what they need.
SHELL := /bin/sh
NODE_BIN := $(shell sh scripts/node.sh)
export PATH := $(NODE_BIN):$(PATH)
export npm_config_update_notifier := false

.PHONY: setup deps build run test bench clean agent-bin image flash card-file

node_modules/.installed: package.json package-lock.json protocol/package.json cloud/package.json agent/package.json
	@# No install scripts: every native part we use ships prebuilt in its npm tarball
	@# (better-sqlite3 13, sharp's @img packages); a script would only try to compile or download.
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

setup: deps node_modules/.installed

deps:
	@sh scripts/deps.sh

build: node_modules/.installed
	@npm run -s build

## The main job: cloud + agent on the embedded default, against a local test camera.
run: setup build
	node --experimental-strip-types --no-warnings tools/dev-run.ts

## All tests: lint, type-check, unit, integration.
test: setup
	@sh scripts/test.sh

## Benchmarks: one line per figure, "bench <name> <value> <unit>".
bench: setup build agent-bin
	@for f in bench/*.bench.ts; do node --experimental-strip-types --no-warnings "$$f" || exit 1; done

## The agent as one executable per arch (linux-x64, linux-arm64) in build/agent-bin: docs/agent-bin.md.
agent-bin: setup build
	@sh scripts/agent-bin.sh

## Firmware: the Raspberry Pi 4 SD card image (pinned Buildroot; needs internet): docs/firmware.md.
image:
	@sh scripts/build-image.sh

## Write the image to a card: make flash DEVICE=/dev/sdX (refuses anything like a system disk).
## With card settings: make flash DEVICE=/dev/sdX CLOUD=URL CLAIM=CODE [SETUP_PIN=] [WIFI_SSID=
## WIFI_PASSWORD= WIFI_COUNTRY=] [ADDRESS= GATEWAY= DNS=] writes vigil.txt too (docs/firmware.md,
## "Card settings (vigil.txt)"). A $ in a value is written $$ on make's command line.
flash:
	@sh scripts/flash.sh "$(DEVICE)"

## Only vigil.txt, onto a card image file or an already flashed card (same settings as flash):
## make card-file IMAGE=build/br-rpi4/images/sdcard.img CLOUD=URL CLAIM=CODE ...
card-file:
	@sh scripts/card-settings.sh file "$(or $(IMAGE),build/br-rpi4/images/sdcard.img)"

clean:
	rm -rf protocol/dist cloud/dist agent/dist .tap .run build
