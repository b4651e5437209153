# foot-traffic task runner. `make run` and `make test` work on a fresh machine
# with Python 3.11+, Java 17+ and Maven: they create the virtual environment,
# install the package and fetch the Kafka jars as needed.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
KAFKA := bash scripts/kafka.sh
KAFKA_CLUSTER := bash scripts/kafka-cluster.sh
LOCAL_BROKER := 127.0.0.1:9092
REGISTRY := bash scripts/registry.sh
LOCAL_REGISTRY := http://127.0.0.1:8081/apis/ccompat/v7
PYTEST_ARGS ?=

.PHONY: help setup run test unit integration lint format typecheck bench bench-registry kafka-fetch kafka-up kafka-down kafka-cluster-up kafka-cluster-down registry-fetch registry-up registry-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

setup: $(STAMP) kafka-fetch ## virtual environment, package and Kafka jars

kafka-fetch: ## fetch the Apache Kafka jars (once)
	$(KAFKA) fetch

kafka-up: kafka-fetch ## start the local broker on 127.0.0.1:9092 (no-op when up)
	$(KAFKA) up

kafka-down: ## stop the local broker
	$(KAFKA) down

registry-fetch: ## fetch the local schema registry (Apicurio Registry, once)
	$(REGISTRY) fetch

registry-up: registry-fetch ## start the local schema registry on 127.0.0.1:8081 (no-op when up)
	$(REGISTRY) up

registry-down: ## stop the local schema registry (its schemas are kept in memory only)
	$(REGISTRY) down

kafka-cluster-up: kafka-fetch ## start a local 3-node KRaft cluster on 127.0.0.1:39092,39192,39292
	$(KAFKA_CLUSTER) up

kafka-cluster-down: ## stop the local 3-node cluster
	$(KAFKA_CLUSTER) down

run: setup ## run the producer; starts the local broker unless KAFKA_BROKER is set
	@if [ -z "$${KAFKA_BROKER:-}" ]; then $(KAFKA) up && export KAFKA_BROKER=$(LOCAL_BROKER); fi; \
	exec $(BIN)/foot-traffic run $(ARGS)

lint: $(STAMP) ## ruff (lint, formatting) and import-linter (the layers, no cycles)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

format: $(STAMP) ## apply ruff's formatting and fixes
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

unit: $(STAMP) ## unit tests only (no Kafka)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test: setup registry-fetch lint typecheck ## the whole suite against a local broker and schema registry it starts and stops
	$(KAFKA) up
	$(REGISTRY) up || { rc=$$?; $(KAFKA) down; exit $$rc; }
	FOOT_TRAFFIC_TEST_BROKER=$(LOCAL_BROKER) FOOT_TRAFFIC_TEST_REGISTRY=$(LOCAL_REGISTRY) $(BIN)/python -m pytest $(PYTEST_ARGS); \
	rc=$$?; $(REGISTRY) down; $(KAFKA) down; exit $$rc

bench: setup ## benchmarks against the local broker; writes docs/benchmarks.md (BENCH_ROWS=chain,... a subset, BENCH_QUICK=1 a smoke run)
	$(KAFKA) up
	$(BIN)/python bench/run.py; rc=$$?; $(KAFKA) down; exit $$rc

bench-registry: setup registry-fetch ## registry framing (JSON Schema, Avro) against plain JSON, same run
	$(KAFKA) up
	$(REGISTRY) up || { rc=$$?; $(KAFKA) down; exit $$rc; }
	$(BIN)/python bench/registry.py; rc=$$?; $(REGISTRY) down; $(KAFKA) down; exit $$rc

clean: ## remove the virtual environment, caches and Kafka state
	-$(KAFKA) down
	-$(KAFKA_CLUSTER) down
	-$(REGISTRY) down
	rm -rf $(VENV) .kafka .registry build dist .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
