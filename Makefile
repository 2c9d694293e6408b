# newstag front door. `make train` and `make test` work from a fresh clone: they create .venv when it is
# missing or pyproject.toml changed, and `make train` prepares the data first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CONFIG  ?= configs/world.yaml
SHARED  ?= ../shared/data
ARGS    ?=

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION := false
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export HF_HOME ?= $(CURDIR)/.cache/huggingface
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db

.PHONY: help install link-data data train tune evaluate predict ui bench bench-quick test test-fast lint format clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: CONFIG=$(CONFIG) ARGS='--set key=value ...'"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dask,bench]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install newstag with its extras

link-data: ## link ../shared/data/<corpus> into data/raw/ when it exists
	@mkdir -p data/raw
	@for name in reuters21578 bbc_news wikipedia_current_events allsides; do \
	  if [ ! -e data/raw/$$name ] && [ -d $(SHARED)/$$name ]; then \
	    ln -s "$$(cd $(SHARED)/$$name && pwd)" data/raw/$$name && echo "linked data/raw/$$name -> $(SHARED)/$$name"; \
	  fi; \
	done

data: $(STAMP) link-data ## link the shared corpora into data/raw/ and prepare $(CONFIG)
	$(BIN)/newstag prepare --config $(CONFIG) $(ARGS)

train: data ## prepare, fit, evaluate, log to MLflow, register/promote, export
	$(BIN)/newstag train --config $(CONFIG) $(ARGS)

tune: data ## search the config's tune.space (nested MLflow runs)
	$(BIN)/newstag tune --config $(CONFIG) $(ARGS)

evaluate: $(STAMP) ## score the champion on the test split of $(CONFIG)
	$(BIN)/newstag evaluate --config $(CONFIG) --split test $(ARGS)

predict: $(STAMP) ## tag a file: make predict ARGS='--input in.jsonl --output out.jsonl'
	$(BIN)/newstag predict $(ARGS)

ui: $(STAMP) ## the MLflow UI on the project's store, http://127.0.0.1:5000
	$(BIN)/newstag ui $(ARGS)

bench: $(STAMP) link-data ## benchmarks side by side with the peers (bench/results.md)
	$(BIN)/python -m bench.run $(ARGS)

bench-quick: $(STAMP) link-data ## a reduced benchmark run (a few minutes)
	$(BIN)/python -m bench.run --quick $(ARGS)

test: $(STAMP) link-data ## the whole test suite (unit, data, model, e2e)
	$(BIN)/python -m pytest $(ARGS)

test-fast: $(STAMP) ## the tests not marked slow
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

lint: $(STAMP) ## ruff check, format check, and no import cycle or stray mlflow import in pipeline/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/archcheck.py pipeline --list-lazy

format: $(STAMP) ## ruff format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## remove caches and prepared data (keeps .venv, mlflow.db and models/)
	rm -rf data/processed .pytest_cache .ruff_cache .hypothesis bench/out .cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
