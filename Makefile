# durable-topic-operator: one entry point for the test bed, the tests and the demo.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
CACHE ?= $(or $(DURABLETOPIC_CACHE),$(HOME)/.cache/durabletopic)
VENV := .venv
BIN := $(VENV)/bin
export DURABLETOPIC_CACHE := $(CACHE)
export PIP_CACHE_DIR := $(CACHE)/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

PYTEST_ARGS ?=

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(BIN)/.installed ## virtualenv with the package and the dev tools

.PHONY: testbed-install
testbed-install: ## fetch and build Kafka, etcd, kube-apiserver, kubectl, the node's kubelet and kube-scheduler, and helm, and generate the Prometheus Operator CRDs, into the cache
	bash tests/testbed/install.sh all

.PHONY: image
image: venv ## the operator's image from the Dockerfile (buildah, local Debian base, no registry) as an OCI archive; prints its path and name
	$(BIN)/python -m tests.testbed.image

.PHONY: lint
lint: venv ## ruff, mypy and the layer contract (import-linter)
	$(BIN)/ruff check operator tests $(wildcard bench)
	$(BIN)/ruff format --check operator tests $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: unit
unit: venv ## the fast tests: no servers
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: test
test: venv testbed-install lint ## everything: install, lint, type checks, unit, integration and end-to-end tests
	$(BIN)/pytest -m 'not chaos' $(PYTEST_ARGS)

.PHONY: test-chaos
test-chaos: venv testbed-install ## the long fault-injection runs (full-size outage, crashes and probe)
	$(BIN)/pytest -m chaos $(PYTEST_ARGS)
	DURABLETOPIC_TEST_OUTAGE_SECONDS=60 DURABLETOPIC_TEST_CRASH_OBJECTS=500 \
	  $(BIN)/pytest tests/e2e/test_resilience.py $(PYTEST_ARGS)

.PHONY: durability-lab
durability-lab: venv testbed-install ## each way Kafka loses a message, weak setting beside safe, on the test bed (about 10 min); writes the table in docs/durability.md and docs/durability-lab.svg
	$(BIN)/python -m bench.durability $(LAB_ARGS)

.PHONY: testbed-up
testbed-up: venv testbed-install ## start the test bed (or reuse a running one)
	$(BIN)/python -m tests.testbed up

.PHONY: testbed-down
testbed-down: venv ## stop everything the test bed and the demo started
	$(BIN)/python -m tests.testbed.demo --stop
	$(BIN)/python -m tests.testbed down
	$(BIN)/python -m tests.testbed down-second

.PHONY: demo
demo: venv testbed-install ## run the operator on the local test bed with the examples: built into an image, installed by Helm, in Pods on the bed's node
	$(BIN)/python -m tests.testbed demo

.PHONY: generate
generate: venv ## write the files generated from the core: the CRDs and the admission policies (crds/, deploy/, the chart)
	$(BIN)/python -m durabletopic.tools.generate --root .

.PHONY: crds
crds: generate ## the same as generate
