# redisprep — `make help` lists the targets. CI runs `make test`.
.DEFAULT_GOAL := help
.PHONY: help setup demo test matrix bench fmt lint

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: ## venv + dependencies + release build of the native module
	script/setup

demo: ## set up, then run the demo on an embedded private Redis (ARGS=--once for one round)
	script/demo $(ARGS)

test: ## set up, then run every check: fmt, clippy, cargo test, ruff, mypy, stubtest, pytest, matrix
	script/test

matrix: ## set up, then build the abi3 wheel + sdist and run the test matrix (ENVS="wepppy py313" for some)
	script/setup && script/matrix $(ENVS)

bench: ## set up, then run the benchmark suite (prints ratios against the baseline)
	script/setup && .venv/bin/python bench/bench_prep.py

fmt: ## format Rust and Python sources
	cargo fmt --all && .venv/bin/ruff format python tests bench script && .venv/bin/ruff check --fix python tests bench script
