# Mooring: `make run` starts a local control plane with both controllers and a sample;
# `make test` runs everything. Both build what they need first.

SHELL := /usr/bin/env bash
CARGO ?= cargo
MOORING_TOOLS_DIR ?= $(HOME)/.cache/mooring/tools
export MOORING_TOOLS_DIR
# CI builds once from a clean clone: incremental compilation data would only take disk
# (gigabytes on this workspace), and the CI machine's disk is shared with its tests.
ifeq ($(CI),true)
export CARGO_INCREMENTAL := 0
endif
# Where cargo builds (CARGO_TARGET_DIR when set).
BENCH_TARGET_DIR := $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)

.PHONY: all tools deps crds docs check-crds build run test unit lint fmt clippy e2e bench hot-text faults clean

all: build

## tools: build the pinned kube-apiserver, etcd, kubectl, kube-controller-manager, kustomize, helm, sops, age
tools:
	@hack/tools.sh

## deps: system packages the tests use (git, sshd)
deps:
	@hack/system-deps.sh

## crds: regenerate crds/ from the API types
crds:
	$(CARGO) run --quiet -p mooring-api --bin crdgen -- crds charts/mooring/crds

## docs: regenerate docs/api.md from the CRDs' schemas (the API types' doc comments)
docs:
	$(CARGO) run --quiet -p mooring-api --bin apidocs -- docs/api.md

build:
	$(CARGO) build --workspace --bins

## run: local control plane, both controllers, a git server with the sample, the sample applied
run: tools deps
	$(CARGO) build --bins
	$(CARGO) run --quiet -p mooring-testkit --bin mooring-dev

## test: formatting, lints, CRD freshness, unit, integration and e2e tests, with the short form
## of the fault suite (its table is printed at the end)
FAULTS_REPORT := $(abspath $(BENCH_TARGET_DIR))/faults-report.jsonl
test: tools deps lint
	$(CARGO) build --workspace --bins
	rm -f $(FAULTS_REPORT)
	MOORING_FAULTS_REPORT=$(FAULTS_REPORT) $(CARGO) test --workspace --all-targets --no-fail-fast
	$(CARGO) run --quiet -p mooring-testkit --bin mooring-faults-table -- $(FAULTS_REPORT)

## faults: the long form of the fault-and-bad-input suite (test targets named faults_*), then its
## table. See docs/reliability.md.
faults: tools deps
	$(CARGO) build --workspace --bins
	rm -f $(FAULTS_REPORT)
	MOORING_FAULTS_LONG=1 MOORING_FAULTS_REPORT=$(FAULTS_REPORT) \
		$(CARGO) test --workspace --test 'faults_*' --no-fail-fast
	@# Property tests of crate-private code live in unit-test modules named *_props.
	MOORING_FAULTS_LONG=1 MOORING_FAULTS_REPORT=$(FAULTS_REPORT) \
		$(CARGO) test -p mooring-source-controller --lib --no-fail-fast -- _props::
	$(CARGO) run --quiet -p mooring-testkit --bin mooring-faults-table -- $(FAULTS_REPORT)

lint: fmt clippy

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## e2e: only the end-to-end tests (helm and kubectl against the controller binaries)
e2e: tools deps
	$(CARGO) build --workspace --bins
	$(CARGO) test -p mooring-e2e --no-fail-fast

## bench: release builds of both controllers and the harness, then every scenario but P6
## (P6, the 1 GiB repository, with BENCH_ARGS=--large). See docs/benchmarks.md.
BENCH_ARGS ?=
bench: tools deps
	CARGO_TARGET_DIR=$(BENCH_TARGET_DIR) $(CARGO) build --release \
		-p mooring-source-controller -p mooring-kustomize-controller -p mooring-bench
	$(BENCH_TARGET_DIR)/release/mooring-bench $(BENCH_ARGS)

## hot-text: rewrite crates/runtime/link/hot-text.txt, the functions the controllers run in the
## benchmark (under valgrind), which release builds lay out together; ~5 minutes after the build
hot-text: tools deps
	CARGO_TARGET_DIR=$(BENCH_TARGET_DIR) $(CARGO) build --release \
		-p mooring-source-controller -p mooring-kustomize-controller -p mooring-bench
	hack/hot-text.sh $(BENCH_TARGET_DIR)

clean:
	$(CARGO) clean
